//! Turns the builder's settings and the environment into one resolved
//! configuration. Code wins over the environment; a bad value in the
//! environment warns once and falls back; a bad value in code is an error.
//!
//! One file per concern: `sampler`, `exporters`, `otlp` (protocol,
//! endpoint, headers, compression, timeout per signal), `batch` (the batch
//! processor, the span limits and every bound), `logging` (format and
//! filter), `propagators`; [`Settings::resolve`] puts them together.

mod batch;
mod exporters;
mod logging;
mod metrics;
mod otlp;
mod propagators;
mod sampler;
#[cfg(test)]
mod tests;

use std::time::Duration;

use opentelemetry_sdk::trace::SpanLimits;

pub(crate) use batch::BatchSettings;
use batch::{resolve_batch, resolve_limits};
pub use exporters::Exporter;
use exporters::{resolve_exporters, resolve_logs_exporter};
pub use logging::LogFormat;
use logging::{resolve_log_filter, resolve_log_format};
use metrics::resolve_metrics;
pub(crate) use metrics::{MetricsExporter, MetricsSettings};
pub use otlp::Protocol;
use otlp::resolve_otlp;
pub(crate) use otlp::{LOGS, OtlpSettings, TRACES, validate_endpoint};
pub(crate) use propagators::PropagatorKind;
use propagators::resolve_propagators;
pub(crate) use sampler::SamplerSetting;
use sampler::resolve_sampler;

use crate::env::{self, Env, Warnings, parse_bool};
use crate::error::Error;
use crate::resource::{self, ResourceSettings};

/// Settings given in code, gathered by the [`Builder`](crate::Builder).
#[derive(Clone, Debug, Default)]
pub(crate) struct CodeSettings {
    pub(crate) resource: ResourceSettings,
    pub(crate) sample_ratio: Option<f64>,
    pub(crate) exporter: Option<Vec<Exporter>>,
    pub(crate) default_exporter: Option<Vec<Exporter>>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) endpoint: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) log_filter: Option<String>,
    pub(crate) log_format: Option<LogFormat>,
    pub(crate) trace_level: Option<tracing::Level>,
    pub(crate) span_event_level: Option<tracing::Level>,
    pub(crate) export_logs: Option<bool>,
    pub(crate) scrub: crate::scrub::ScrubSettings,
    /// Whether the logs go to a writer given in code, not standard output.
    pub(crate) log_writer_given: bool,
    /// `Some(false)`: no metrics whatever the environment says.
    pub(crate) metrics: Option<bool>,
}

/// Everything `init` needs, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) disabled: bool,
    pub(crate) resource: opentelemetry_sdk::Resource,
    pub(crate) sampler: SamplerSetting,
    pub(crate) exporters: Vec<Exporter>,
    pub(crate) otlp: OtlpSettings,
    /// OTLP settings for logs, when `OTEL_LOGS_EXPORTER=otlp`.
    pub(crate) logs: Option<OtlpSettings>,
    /// Where metrics go.
    pub(crate) metrics: MetricsSettings,
    pub(crate) batch: BatchSettings,
    /// Whether `OTEL_BSP_SCHEDULE_DELAY` was given (the console exporter
    /// otherwise prints sooner than the OTLP default of 5 s).
    pub(crate) schedule_delay_set: bool,
    pub(crate) limits: SpanLimits,
    pub(crate) attribute_value_length_limit: Option<usize>,
    pub(crate) propagators: Vec<PropagatorKind>,
    pub(crate) log_filter: String,
    pub(crate) log_format: LogFormat,
    /// Whether logs go to standard output (colours only then).
    pub(crate) log_writer_is_stdout: bool,
    pub(crate) service_name: String,
    pub(crate) environment: Option<String>,
    pub(crate) trace_level: tracing::Level,
    pub(crate) span_event_level: tracing::Level,
    pub(crate) shutdown_timeout: Duration,
    /// Applied to every span before export.
    pub(crate) scrubber: crate::scrub::Scrubber,
    pub(crate) warnings: Vec<String>,
    /// Facts worth one info line at start (e.g. an inferred protocol).
    pub(crate) notes: Vec<String>,
}

/// The default time shutdown may take.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

impl Settings {
    pub(crate) fn resolve(code: CodeSettings, env: &Env) -> Result<Self, Error> {
        let mut w = Warnings::default();
        let mut notes = Vec::new();

        check_code(&code)?;

        let disabled = parse_bool(env, env::OTEL_SDK_DISABLED, &mut w);
        let resolved = resource::resolve(&code.resource, env, &mut w);
        let sampler = resolve_sampler(code.sample_ratio, resolved.is_production(), env, &mut w);
        let exporters = resolve_exporters(&code, env, &mut w);
        let otlp = resolve_otlp(&TRACES, &code, env, &mut w, &mut notes);
        let logs_exporter = resolve_logs_exporter(code.export_logs, env, &mut w);
        let logs = logs_exporter.then(|| {
            let mut ignored = Vec::new();
            resolve_otlp(&LOGS, &code, env, &mut w, &mut ignored)
        });
        let traces_otlp = exporters.contains(&Exporter::Otlp);
        let metrics = resolve_metrics(&code, traces_otlp, env, &mut w, &mut notes);
        let schedule_delay_set = env.get(env::OTEL_BSP_SCHEDULE_DELAY).is_some();
        let batch = resolve_batch(env, &mut w);
        let (limits, attribute_value_length_limit) = resolve_limits(env, &mut w);
        let propagators = resolve_propagators(env, &mut w);
        let log_filter = resolve_log_filter(code.log_filter, env, &mut w)?;
        let log_format = resolve_log_format(code.log_format, env, &mut w);

        let scrubber = crate::scrub::Scrubber::resolve(&code.scrub, env, &mut w)?;
        let service_name = resolved.service_name();
        let environment = resolved.environment().map(str::to_owned);
        Ok(Self {
            disabled,
            resource: resolved.resource,
            sampler,
            exporters,
            otlp,
            logs,
            metrics,
            batch,
            schedule_delay_set,
            limits,
            attribute_value_length_limit,
            propagators,
            log_filter,
            log_format,
            log_writer_is_stdout: !code.log_writer_given,
            service_name,
            environment,
            trace_level: code.trace_level.unwrap_or(tracing::Level::INFO),
            span_event_level: code.span_event_level.unwrap_or(tracing::Level::WARN),
            shutdown_timeout: code.shutdown_timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
            scrubber,
            warnings: w.into_vec(),
            notes,
        })
    }
}

/// Settings given in code are the program's own: a wrong one is an error,
/// where a wrong environment variable is a warning and its default.
fn check_code(code: &CodeSettings) -> Result<(), Error> {
    if let Some(ratio) = code.sample_ratio
        && !(0.0..=1.0).contains(&ratio)
    {
        return Err(Error::config(
            "sample_ratio",
            format!("{ratio} is outside [0, 1]"),
        ));
    }
    if let Some(endpoint) = &code.endpoint {
        validate_endpoint(endpoint)
            .map_err(|why| Error::config("otlp_endpoint", why.to_string()))?;
    }
    if code.shutdown_timeout == Some(Duration::ZERO) {
        return Err(Error::config(
            "shutdown_timeout",
            "a zero deadline cannot flush anything; give at least a few milliseconds",
        ));
    }
    Ok(())
}
