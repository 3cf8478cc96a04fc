use std::fmt;
use std::time::Duration;

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Dispatch;

use crate::ServiceTelemetry;
use crate::config::{PropagatorKind, Settings};
use crate::error::Error;
use crate::export::ExportStats;
use crate::pipeline::Pipeline;
use crate::subscriber::SharedWriter;

/// Keeps telemetry running; dropping it flushes what was recorded and shuts
/// down within the shutdown deadline (5 s unless
/// [`Builder::shutdown_timeout`](crate::Builder::shutdown_timeout) says
/// otherwise).
///
/// Shutdown never hangs: not with a dead collector, not on a current-thread
/// tokio runtime, not inside async code, not without a runtime. Spans still
/// queued when the deadline passes are dropped, counted in
/// [`stats`](Self::stats), and reported in one warning.
#[must_use = "telemetry shuts down when the guard is dropped: keep it alive for the life of the program"]
pub struct TelemetryGuard {
    pipeline: Option<Pipeline>,
    dispatch: Dispatch,
    propagator: TextMapCompositePropagator,
    propagator_kinds: Vec<PropagatorKind>,
    shutdown_timeout: Duration,
    final_stats: ExportStats,
    /// What [`service`](Self::service) builds a dispatcher from.
    settings: Settings,
    writer: SharedWriter,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("running", &self.pipeline.is_some())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl TelemetryGuard {
    pub(crate) fn new(
        pipeline: Option<Pipeline>,
        dispatch: Dispatch,
        mut settings: Settings,
        writer: SharedWriter,
    ) -> Self {
        let propagator_kinds = std::mem::take(&mut settings.propagators);
        settings.warnings.clear();
        settings.notes.clear();
        Self {
            pipeline,
            dispatch,
            propagator: crate::propagation::build(&propagator_kinds),
            propagator_kinds,
            shutdown_timeout: settings.shutdown_timeout,
            final_stats: ExportStats::default(),
            settings,
            writer,
        }
    }

    /// Telemetry for another service running in this process — the parts of
    /// a demo or of a modular monolith that should appear as the services
    /// they are: a tracer provider whose resource says
    /// `service.name = name` (the rest of the resource, the sampler, the
    /// limits and the exporters as configured), and a `tracing` dispatcher
    /// whose spans go to it and whose log lines carry that name.
    ///
    /// Give the provider to the layers and wrappers of that part
    /// (`ServerLayer::builder().tracer_provider(..)` and the like) and run
    /// its futures with the dispatcher (`tracing::Instrument::with_subscriber`
    /// or [`tracing::dispatcher::with_default`]). Its spans are exported
    /// with the rest (the console prints a trace that crosses services as one
    /// tree, each span with its service), counted in [`stats`](Self::stats),
    /// and flushed and shut down with this guard. Logs exported over OTLP
    /// (`OTEL_LOGS_EXPORTER=otlp`) keep the main service's resource. With
    /// `OTEL_SDK_DISABLED=true` there is no provider and the dispatcher only
    /// logs.
    pub fn service(&self, name: impl Into<String>) -> ServiceTelemetry {
        let name = name.into();
        let mut warnings = Vec::new();
        let provider = self
            .pipeline
            .as_ref()
            .map(|p| p.add_service(&name, &mut warnings));
        let settings = Settings {
            service_name: name,
            ..self.settings.clone()
        };
        let dispatch = crate::subscriber::build(
            &settings,
            self.pipeline
                .as_ref()
                .zip(provider.as_ref())
                .map(|(pipeline, provider)| pipeline.service_bridge(provider)),
            self.pipeline.as_ref().and_then(|p| p.logs.as_ref()),
            self.writer.clone(),
        );
        if !warnings.is_empty() {
            tracing::dispatcher::with_default(&self.dispatch, || {
                for warning in warnings {
                    tracing::warn!(target: "observability_core", "{warning}");
                }
            });
        }
        ServiceTelemetry::new(provider, dispatch)
    }

    /// How many spans were exported and dropped so far, and why.
    pub fn stats(&self) -> ExportStats {
        self.pipeline
            .as_ref()
            .map_or(self.final_stats, Pipeline::stats)
    }

    /// Spans dropped so far (queue full, export failed, or lost at shutdown).
    pub fn dropped_spans(&self) -> u64 {
        self.stats().dropped()
    }

    /// The tracer provider, absent when `OTEL_SDK_DISABLED=true`.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.pipeline.as_ref().map(|p| &p.provider)
    }

    /// The meter provider, when an exporter reads metrics
    /// (`OTEL_METRICS_EXPORTER`) or [`Builder::metrics`](crate::Builder::metrics)
    /// asked for them. [`init`](crate::init) installs it
    /// globally; with [`Builder::build`](crate::Builder::build) give it to
    /// the layers' `meter_provider`.
    pub fn meter_provider(&self) -> Option<&observability_metrics::MeterProvider> {
        self.pipeline
            .as_ref()
            .and_then(|p| p.metrics.as_ref())
            .map(|m| &m.provider)
    }

    /// A tower service answering Prometheus scrapes with these metrics
    /// (OpenMetrics with exemplars when asked), to mount on your own
    /// router, e.g. `Router::route_service("/metrics", service)`. Absent
    /// when there are no metrics (see [`meter_provider`](Self::meter_provider)).
    pub fn prometheus_service(&self) -> Option<observability_metrics::PrometheusService> {
        self.pipeline
            .as_ref()
            .and_then(|p| p.metrics.as_ref())
            .map(|m| m.prometheus_service())
    }

    /// The address the Prometheus endpoint listens on, when
    /// `OTEL_METRICS_EXPORTER` includes `prometheus`.
    pub fn prometheus_address(&self) -> Option<std::net::SocketAddr> {
        self.pipeline
            .as_ref()
            .and_then(|p| p.metrics.as_ref())
            .and_then(|m| m.prometheus)
    }

    /// The `tracing` dispatcher this telemetry built. [`init`](crate::init)
    /// installs it globally; with [`Builder::build`](crate::Builder::build)
    /// use it with [`tracing::dispatcher::with_default`] or
    /// [`tracing::dispatcher::set_default`].
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// The propagators chosen by `OTEL_PROPAGATORS`; `init` also installs
    /// them as the global propagator.
    pub fn propagator(&self) -> &TextMapCompositePropagator {
        &self.propagator
    }

    /// Installs the propagators globally, what the sampler drops unseen,
    /// and how the provider's spans start without its tracer (for the HTTP
    /// layers' shortcuts).
    pub(crate) fn install_globally(&self) {
        crate::propagation::install_global(&self.propagator_kinds);
        observability_propagation::sampling::set_global_drop_rule(
            self.pipeline.as_ref().and_then(Pipeline::drop_rule),
        );
        observability_propagation::starter::set_global_span_starter(
            self.pipeline.as_ref().map(Pipeline::span_starter),
        );
    }

    /// Exports everything finished so far, waiting at most the shutdown
    /// deadline. Blocks the calling thread.
    pub fn force_flush(&self) -> Result<(), Error> {
        match &self.pipeline {
            Some(p) => p.flush(self.shutdown_timeout),
            None => Ok(()),
        }
    }

    /// Flushes and shuts down within the deadline, without blocking the
    /// executor (works on any async runtime). Returns the final counts, or
    /// [`Error::Timeout`] when the deadline passed first. With
    /// `OTEL_SDK_DISABLED=true` there is nothing to shut down: the counts
    /// are zero and the result is `Ok`.
    pub async fn shutdown(mut self) -> Result<ExportStats, Error> {
        let Some(pipeline) = self.pipeline.take() else {
            return Ok(self.final_stats);
        };
        let (stats, in_time) = pipeline.shutdown_async(self.shutdown_timeout).await;
        self.conclude(stats, in_time)
    }

    /// Flushes and shuts down within the deadline, blocking the calling
    /// thread; what dropping the guard does, with the result (`Ok` with zero
    /// counts when `OTEL_SDK_DISABLED=true`).
    pub fn shutdown_blocking(mut self) -> Result<ExportStats, Error> {
        self.shutdown_now()
    }

    fn shutdown_now(&mut self) -> Result<ExportStats, Error> {
        // No pipeline: the SDK is disabled (both shutdowns take the guard,
        // so it cannot have been shut down before).
        let Some(pipeline) = self.pipeline.take() else {
            return Ok(self.final_stats);
        };
        let (stats, in_time) = pipeline.shutdown_blocking(self.shutdown_timeout);
        self.conclude(stats, in_time)
    }

    fn conclude(&mut self, stats: ExportStats, in_time: bool) -> Result<ExportStats, Error> {
        self.final_stats = stats;
        if stats.dropped() > 0 {
            tracing::dispatcher::with_default(&self.dispatch, || {
                tracing::warn!(
                    target: "observability_core",
                    exported = stats.exported,
                    dropped = stats.dropped(),
                    dropped_queue_full = stats.dropped_queue_full,
                    dropped_export_failed = stats.dropped_export_failed,
                    failed_timeout = stats.failures.timeout,
                    failed_unreachable = stats.failures.unreachable,
                    failed_rejected = stats.failures.rejected,
                    dropped_too_large = stats.dropped_too_large,
                    dropped_at_shutdown = stats.dropped_at_shutdown,
                    "{} span(s) were not exported", stats.dropped()
                );
            });
        }
        if in_time {
            Ok(stats)
        } else {
            Err(Error::Timeout {
                deadline: self.shutdown_timeout,
                stats,
            })
        }
    }
}

// The guard can live in a static or an `Arc` shared across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<TelemetryGuard>();
};

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.shutdown_now();
    }
}
