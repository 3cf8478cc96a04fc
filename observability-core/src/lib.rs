#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bridge;
mod config;
mod direct;
pub mod env;
mod error;
mod export;
mod guard;
mod metrics;
mod pipeline;
pub mod propagation;
mod resource;
mod scrub;
mod service;
mod subscriber;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use config::{Exporter, LogFormat, Protocol};
pub use error::Error;
pub use export::{ExportFailures, ExportStats, FailureCause};
pub use guard::TelemetryGuard;
pub use scrub::{DEFAULT_DELETED_KEYS, ScrubAction, ScrubPattern};
pub use service::ServiceTelemetry;

// What a user needs next to `init`, so that they never add a second copy of
// the OpenTelemetry crates by accident.
pub use bridge::{OpenTelemetrySpanExt, SetParentError};
pub use observability_logging;
pub use observability_metrics;
pub use opentelemetry;
pub use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, UpDownCounter};
pub use opentelemetry::trace::{SpanId, Status, TraceId};
pub use opentelemetry::{Context, KeyValue};
pub use opentelemetry_sdk;
pub use tracing;
pub use tracing_opentelemetry;

use config::{CodeSettings, Settings};
use env::Env;

/// Sets up tracing from the environment and installs it globally: the
/// `tracing` subscriber (OpenTelemetry layer and log output), the tracer
/// provider, and the propagators.
///
/// # Panics
///
/// When a global `tracing` subscriber is already installed (a programming
/// error). [`try_init`] returns an error instead.
pub fn init() -> TelemetryGuard {
    builder().init()
}

/// A meter from the global meter provider, which [`init`] sets: its
/// counters and histograms go through the same pipeline as the layers'
/// (OTLP, Prometheus), and a histogram recorded inside a sampled span keeps
/// that span as an exemplar.
///
/// ```
/// let orders = observability_core::meter("shop")
///     .u64_counter("shop.orders")
///     .with_unit("{order}")
///     .build();
/// orders.add(1, &[observability_core::KeyValue::new("shop.channel", "web")]);
/// ```
pub fn meter(name: &'static str) -> Meter {
    opentelemetry::global::meter(name)
}

/// Like [`init`], but returns an error instead of panicking.
pub fn try_init() -> Result<TelemetryGuard, Error> {
    builder().try_init()
}

/// A builder for settings given in code. Each wins over the matching
/// environment variable; the environment decides the rest.
pub fn builder() -> Builder {
    Builder::default()
}

/// Settings given in code. See [`builder`].
///
/// A setting given here that is invalid makes [`Builder::try_init`] fail with
/// [`Error::InvalidConfig`]; a bad environment variable only warns.
#[derive(Default)]
#[must_use = "a builder does nothing until init(), try_init() or build() is called"]
pub struct Builder {
    code: CodeSettings,
    env: Option<Env>,
    extra_processors: Vec<Box<dyn opentelemetry_sdk::trace::SpanProcessor>>,
    log_writer: Option<tracing_subscriber::fmt::writer::BoxMakeWriter>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("code", &self.code)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// `service.name` (wins over `OTEL_SERVICE_NAME` and the rest).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.code.resource.service_name = Some(name.into());
        self
    }

    /// `service.version` (wins over `SERVICE_VERSION` / `VERSION`).
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.code.resource.service_version = Some(version.into());
        self
    }

    /// `deployment.environment.name` (wins over `ENV` / `ENVIRONMENT`).
    /// `production` or `prod` lowers the default sample ratio to 0.1.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.code.resource.environment = Some(environment.into());
        self
    }

    /// An extra resource attribute; wins over `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn resource_attribute(mut self, attribute: KeyValue) -> Self {
        self.code.resource.attributes.push(attribute);
        self
    }

    /// Samples this fraction of new traces, in `[0, 1]`, honouring the
    /// caller's decision when a sampled or unsampled parent arrives
    /// (parent-based trace-id ratio). Wins over `OTEL_TRACES_SAMPLER` and
    /// `OTEL_TRACES_SAMPLER_ARG`.
    pub fn sample_ratio(mut self, ratio: f64) -> Self {
        self.code.sample_ratio = Some(ratio);
        self
    }

    /// Where spans go, whatever `OTEL_TRACES_EXPORTER` says. Call it again
    /// to add a second exporter.
    pub fn exporter(mut self, exporter: Exporter) -> Self {
        self.code
            .exporter
            .get_or_insert_with(Vec::new)
            .push(exporter);
        self
    }

    /// Where spans go when neither `OTEL_TRACES_EXPORTER` nor an OTLP
    /// endpoint variable (`OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; otherwise `otlp`. A
    /// program that must work with no collector running uses
    /// `default_exporter(Exporter::Console)` and still exports once pointed at
    /// a collector.
    pub fn default_exporter(mut self, exporter: Exporter) -> Self {
        self.code
            .default_exporter
            .get_or_insert_with(Vec::new)
            .push(exporter);
        self
    }

    /// The OTLP transport; wins over `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`.
    pub fn otlp_protocol(mut self, protocol: Protocol) -> Self {
        self.code.protocol = Some(protocol);
        self
    }

    /// The OTLP endpoint, used exactly as given: for HTTP include the path
    /// (`http://collector:4318/v1/traces`). Wins over the environment.
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.code.endpoint = Some(endpoint.into());
        self
    }

    /// A header sent with every OTLP export (for example a tenant header such
    /// as `X-Scope-OrgID`); added to those of `OTEL_EXPORTER_OTLP_HEADERS`,
    /// replacing one of the same name.
    pub fn otlp_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.code.headers.push((name.into(), value.into()));
        self
    }

    /// The most shutdown may take (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.code.shutdown_timeout = Some(timeout);
        self
    }

    /// Log filter directives (`tracing-subscriber` `EnvFilter` syntax); wins
    /// over `RUST_LOG`. It filters the log output only, never what is traced.
    pub fn log_filter(mut self, directives: impl Into<String>) -> Self {
        self.code.log_filter = Some(directives.into());
        self
    }

    /// The log line format; wins over `OTEL_LOG_FORMAT`. Without either, JSON
    /// unless standard output is a terminal (then human-readable text).
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.code.log_format = Some(format);
        self
    }

    /// Where log lines go (default standard output): any
    /// `tracing_subscriber` `MakeWriter`, such as `std::io::stderr` or an
    /// [`observability_logging::NonBlocking`] writer.
    pub fn log_writer<W>(mut self, writer: W) -> Self
    where
        W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
    {
        self.log_writer = Some(tracing_subscriber::fmt::writer::BoxMakeWriter::new(writer));
        self.code.log_writer_given = true;
        self
    }

    /// The most verbose level of events also recorded as events of the
    /// current span (default `WARN`: warnings and errors appear in the trace,
    /// routine logs only in the log output).
    pub fn span_event_level(mut self, level: tracing::Level) -> Self {
        self.code.span_event_level = Some(level);
        self
    }

    /// `false`: no metrics, whatever `OTEL_METRICS_EXPORTER` says. `true`:
    /// a meter provider even when no exporter reads it, so that
    /// [`TelemetryGuard::prometheus_service`] and
    /// [`TelemetryGuard::meter_provider`] are there (exporters still come
    /// from `OTEL_METRICS_EXPORTER`). Unset: metrics exist when an exporter
    /// reads them (with the variable unset, OTLP when spans go over OTLP).
    pub fn metrics(mut self, on: bool) -> Self {
        self.code.metrics = Some(on);
        self
    }

    /// Also exports log records over OTLP (with their trace context), whatever
    /// `OTEL_LOGS_EXPORTER` says; they use the trace exporter's endpoint,
    /// protocol and headers unless `OTEL_EXPORTER_OTLP_LOGS_*` says otherwise.
    pub fn export_logs(mut self, on: bool) -> Self {
        self.code.export_logs = Some(on);
        self
    }

    /// The most verbose level of `tracing` spans turned into OpenTelemetry
    /// spans (default `INFO`, the level of `#[instrument]`).
    pub fn trace_level(mut self, level: tracing::Level) -> Self {
        self.code.trace_level = Some(level);
        self
    }

    /// Scrubs the attribute `key` on every span before export: delete it,
    /// replace its value by its SHA-256, or by `[REDACTED]`.
    /// `http.request.header.authorization` and `http.request.header.cookie`
    /// (and `proxy-authorization`, `set-cookie`) are deleted by default.
    pub fn scrub_attribute(mut self, key: impl Into<String>, action: ScrubAction) -> Self {
        self.code.scrub.keys.push((key.into(), action));
        self
    }

    /// Replaces a built-in pattern (e-mail addresses, card numbers) in every
    /// string attribute value before export.
    pub fn scrub_pattern(mut self, pattern: ScrubPattern) -> Self {
        self.code.scrub.patterns.push(pattern);
        self
    }

    /// Replaces matches of `regex` by `replacement` in every string attribute
    /// value before export. An invalid regex makes `try_init` fail.
    pub fn scrub_regex(mut self, regex: impl Into<String>, replacement: impl Into<String>) -> Self {
        self.code
            .scrub
            .custom
            .push((regex.into(), replacement.into()));
        self
    }

    /// Whether the default deletions (credential headers) apply (default
    /// true).
    pub fn scrub_defaults(mut self, on: bool) -> Self {
        self.code.scrub.defaults = on;
        self
    }

    /// Reads settings from `lookup` instead of the process environment:
    /// configuration from a file, or a test that must not touch global
    /// state.
    pub fn env_lookup<F>(mut self, lookup: F) -> Self
    where
        F: Fn(&str) -> Option<String> + Send + Sync + 'static,
    {
        self.env = Some(Env::custom(Arc::new(lookup)));
        self
    }

    /// Also records every finished span into `capture`, for tests.
    #[cfg(feature = "testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
    pub fn span_capture(mut self, capture: &testing::SpanCapture) -> Self {
        self.extra_processors.push(Box::new(capture.processor()));
        self
    }

    /// Builds telemetry without installing anything globally: use
    /// [`TelemetryGuard::dispatch`] and [`TelemetryGuard::propagator`].
    pub fn build(self) -> Result<TelemetryGuard, Error> {
        let (guard, messages) = self.assemble()?;
        messages.emit(guard.dispatch());
        Ok(guard)
    }

    /// Builds telemetry and installs it globally, or returns an error.
    pub fn try_init(self) -> Result<TelemetryGuard, Error> {
        let (guard, messages) = self.assemble()?;
        tracing::dispatcher::set_global_default(guard.dispatch().clone())
            .map_err(|_| Error::AlreadyInitialized)?;
        let _ = tracing_log::LogTracer::init();
        guard.install_globally();
        if let Some(provider) = guard.tracer_provider() {
            opentelemetry::global::set_tracer_provider(provider.clone());
        }
        if let Some(provider) = guard.meter_provider() {
            opentelemetry::global::set_meter_provider(provider.clone());
            observability_metrics::set_global(provider.clone());
        }
        messages.emit(guard.dispatch());
        Ok(guard)
    }

    /// Builds telemetry and installs it globally.
    ///
    /// # Panics
    ///
    /// When [`try_init`](Self::try_init) would return an error.
    pub fn init(self) -> TelemetryGuard {
        match self.try_init() {
            Ok(guard) => guard,
            Err(error) => panic!("observability_core::init failed: {error}"),
        }
    }

    fn assemble(self) -> Result<(TelemetryGuard, Messages), Error> {
        let env = self.env.unwrap_or_else(Env::process);
        let mut settings = Settings::resolve(self.code, &env)?;
        let mut warnings = std::mem::take(&mut settings.warnings);
        let dispatch_cell: export::runtime::DispatchCell = Arc::new(OnceLock::new());
        let pipeline = if settings.disabled {
            None
        } else {
            Some(pipeline::Pipeline::build(
                &settings,
                &dispatch_cell,
                self.extra_processors,
                &mut warnings,
            )?)
        };
        let writer = subscriber::SharedWriter::new(self.log_writer.unwrap_or_else(|| {
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stdout)
        }));
        let dispatch = subscriber::build(
            &settings,
            pipeline.as_ref().map(pipeline::Pipeline::bridge),
            pipeline.as_ref().and_then(|p| p.logs.as_ref()),
            writer.clone(),
        );
        let _ = dispatch_cell.set(dispatch.downgrade());
        let messages = Messages {
            warnings,
            notes: std::mem::take(&mut settings.notes),
        };
        let guard = TelemetryGuard::new(pipeline, dispatch, settings, writer);
        Ok((guard, messages))
    }
}

/// Warnings and notes from resolving settings, emitted once the log output
/// exists.
struct Messages {
    warnings: Vec<String>,
    notes: Vec<String>,
}

impl Messages {
    fn emit(self, dispatch: &tracing::Dispatch) {
        tracing::dispatcher::with_default(dispatch, || {
            for note in self.notes {
                tracing::info!(target: "observability_core", "{note}");
            }
            for warning in self.warnings {
                tracing::warn!(target: "observability_core", "{warning}");
            }
        });
    }
}
