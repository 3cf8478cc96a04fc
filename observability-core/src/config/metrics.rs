//! Where metrics go and how: `OTEL_METRICS_EXPORTER`, the periodic
//! reader's interval and timeout, temporality, exemplars, the Prometheus
//! endpoint (specification "Environment Variable Specification",
//! "Metrics SDK Configuration" and "Prometheus Exporter").

use std::time::Duration;

use observability_metrics::{DEFAULT_CARDINALITY_LIMIT, ExemplarFilter, TemporalityPreference};

use super::CodeSettings;
use super::batch::{bounded_millis, bounded_u64, bounds};
use super::otlp::{METRICS, OtlpSettings, resolve_otlp};
use crate::env::{self, Env, Warnings};

/// Where metrics go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetricsExporter {
    Otlp,
    Prometheus,
    Console,
}

/// The resolved metrics settings.
#[derive(Clone, Debug)]
pub(crate) struct MetricsSettings {
    pub(crate) exporters: Vec<MetricsExporter>,
    /// OTLP settings when `otlp` is among the exporters.
    #[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
    pub(crate) otlp: Option<OtlpSettings>,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) temporality: TemporalityPreference,
    pub(crate) exemplar_filter: ExemplarFilter,
    pub(crate) cardinality_limit: usize,
    pub(crate) prometheus_host: String,
    pub(crate) prometheus_port: u16,
    /// Metrics asked for in code: a meter provider even when no exporter
    /// reads it (read with `TelemetryGuard::prometheus_service`).
    pub(crate) in_process: bool,
}

impl MetricsSettings {
    /// Whether there is a meter provider.
    pub(crate) fn enabled(&self) -> bool {
        self.in_process || !self.exporters.is_empty()
    }
}

/// `traces_otlp`: whether spans go over OTLP. With `OTEL_METRICS_EXPORTER`
/// unset, metrics follow them there (the specification's default, `otlp`),
/// and stay off when spans go only to the console or nowhere, so that a
/// set-up without a collector does not warn every minute.
pub(super) fn resolve_metrics(
    code: &CodeSettings,
    traces_otlp: bool,
    env: &Env,
    w: &mut Warnings,
    notes: &mut Vec<String>,
) -> MetricsSettings {
    let exporters = exporters(code, traces_otlp, env, w);
    let otlp = exporters.contains(&MetricsExporter::Otlp).then(|| {
        // The generic variables were read for traces: their notes once.
        let mut own = Vec::new();
        let otlp = resolve_otlp(&METRICS, code, env, w, &mut own);
        for note in own {
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        otlp
    });
    let mut temporality = temporality(env, w);
    if exporters.contains(&MetricsExporter::Prometheus)
        && temporality != TemporalityPreference::Cumulative
    {
        w.push(format!(
            "{} asks for deltas, but Prometheus needs cumulative values; using cumulative",
            env::OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE
        ));
        temporality = TemporalityPreference::Cumulative;
    }
    let prometheus_port = match env.get(env::OTEL_EXPORTER_PROMETHEUS_PORT) {
        None => 9464,
        Some(v) => v.trim().parse().unwrap_or_else(|_| {
            w.push(format!(
                "{}={v} is not a port; using 9464",
                env::OTEL_EXPORTER_PROMETHEUS_PORT
            ));
            9464
        }),
    };
    MetricsSettings {
        exporters,
        otlp,
        interval: bounded_millis(env, env::OTEL_METRIC_EXPORT_INTERVAL, w)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(60)),
        timeout: bounded_millis(env, env::OTEL_METRIC_EXPORT_TIMEOUT, w)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(30)),
        temporality,
        exemplar_filter: exemplar_filter(env, w),
        cardinality_limit: bounded_u64(
            env,
            env::OBSERVABILITY_METRICS_CARDINALITY_LIMIT,
            DEFAULT_CARDINALITY_LIMIT as u64,
            bounds::COUNT,
            true,
            w,
        ) as usize,
        prometheus_host: env
            .get(env::OTEL_EXPORTER_PROMETHEUS_HOST)
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned()),
        prometheus_port,
        in_process: code.metrics == Some(true),
    }
}

fn exporters(
    code: &CodeSettings,
    traces_otlp: bool,
    env: &Env,
    w: &mut Warnings,
) -> Vec<MetricsExporter> {
    if code.metrics == Some(false) {
        return Vec::new();
    }
    let Some(value) = env.get(env::OTEL_METRICS_EXPORTER) else {
        return if traces_otlp {
            vec![MetricsExporter::Otlp]
        } else {
            Vec::new()
        };
    };
    let mut chosen = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let exporter = match item.to_ascii_lowercase().as_str() {
            "otlp" => MetricsExporter::Otlp,
            "prometheus" => MetricsExporter::Prometheus,
            "console" | "logging" => MetricsExporter::Console,
            "none" => return Vec::new(),
            _ => {
                w.push(format!(
                    "{}: `{item}` is not a known exporter (otlp, prometheus, console, none); ignoring it",
                    env::OTEL_METRICS_EXPORTER
                ));
                continue;
            }
        };
        if !chosen.contains(&exporter) {
            chosen.push(exporter);
        }
    }
    chosen
}

fn temporality(env: &Env, w: &mut Warnings) -> TemporalityPreference {
    let name = env::OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE;
    match env.get(name) {
        None => TemporalityPreference::Cumulative,
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "cumulative" => TemporalityPreference::Cumulative,
            "delta" => TemporalityPreference::Delta,
            "lowmemory" => TemporalityPreference::LowMemory,
            _ => {
                w.push(format!(
                    "{name}={v} is not cumulative, delta or lowmemory; using cumulative"
                ));
                TemporalityPreference::Cumulative
            }
        },
    }
}

fn exemplar_filter(env: &Env, w: &mut Warnings) -> ExemplarFilter {
    let name = env::OTEL_METRICS_EXEMPLAR_FILTER;
    match env.get(name) {
        None => ExemplarFilter::TraceBased,
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "trace_based" => ExemplarFilter::TraceBased,
            "always_on" => ExemplarFilter::AlwaysOn,
            "always_off" => ExemplarFilter::AlwaysOff,
            _ => {
                w.push(format!(
                    "{name}={v} is not trace_based, always_on or always_off; using trace_based"
                ));
                ExemplarFilter::TraceBased
            }
        },
    }
}
