//! Metrics from the same `init()`: the meter provider (with exemplars,
//! `observability-metrics`), a periodic reader on the export thread that
//! sends them over OTLP or prints them, the Prometheus scrape endpoint, and
//! the SDK's own health as `otel.sdk.*` metrics.

mod health;
mod prometheus;
mod reader;
mod started;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use observability_metrics::{MeterProvider, MetricsConfig, PrometheusService};
use opentelemetry::KeyValue;
use tokio::sync::mpsc;

use crate::config::{MetricsExporter, MetricsSettings};
use crate::export::queue::{Reply, Shared};
use crate::export::runtime::{DispatchCell, ExportRuntime};

pub(crate) use reader::Control;
pub(crate) use started::{CountingSampler, SpanCounts};

/// The metrics part of a pipeline.
#[derive(Debug)]
pub(crate) struct MetricsPipeline {
    pub(crate) provider: MeterProvider,
    /// The periodic reader, when OTLP or the console reads the metrics.
    reader: Option<mpsc::UnboundedSender<Control>>,
    /// The Prometheus endpoint's address, once it listens.
    pub(crate) prometheus: Option<std::net::SocketAddr>,
    stop_server: Option<tokio::sync::oneshot::Sender<()>>,
    resource: Vec<KeyValue>,
}

impl MetricsPipeline {
    /// Starts what `settings` asks for on the export `runtime`. Problems
    /// (an OTLP exporter that cannot be built, a port in use) are warnings.
    pub(crate) fn start(
        settings: &MetricsSettings,
        resource: &opentelemetry_sdk::Resource,
        runtime: &ExportRuntime,
        processors: Arc<Mutex<Vec<Arc<Shared>>>>,
        span_counts: Arc<SpanCounts>,
        dispatch: &DispatchCell,
        warnings: &mut Vec<String>,
    ) -> Self {
        let provider = MeterProvider::new(
            MetricsConfig::default()
                .with_exemplar_filter(settings.exemplar_filter)
                .with_temporality(settings.temporality)
                .with_cardinality_limit(settings.cardinality_limit),
        );
        health::register(&provider, processors, span_counts);
        let attributes: Vec<KeyValue> = resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        let reader = reader::start(
            settings,
            &provider,
            &attributes,
            resource.schema_url().unwrap_or_default(),
            runtime,
            dispatch,
            warnings,
        );
        let (prometheus, stop_server) = if settings.exporters.contains(&MetricsExporter::Prometheus)
        {
            let service = PrometheusService::new(provider.clone(), attributes.clone());
            match prometheus::serve(settings, service, runtime) {
                Ok((addr, stop)) => (Some(addr), Some(stop)),
                Err(why) => {
                    warnings.push(why);
                    (None, None)
                }
            }
        } else {
            (None, None)
        };
        Self {
            provider,
            reader,
            prometheus,
            stop_server,
            resource: attributes,
        }
    }

    /// Gives `shared` the histogram of export durations.
    pub(crate) fn watch_exports(&self, shared: &Shared) {
        health::watch_exports(&self.provider, shared);
    }

    /// A tower service answering scrapes with these metrics, to mount on
    /// the application's own router.
    pub(crate) fn prometheus_service(&self) -> PrometheusService {
        PrometheusService::new(self.provider.clone(), self.resource.clone())
    }

    /// Asks the reader to export now; `reply` is sent when done.
    pub(crate) fn flush(&self, reply: Reply) -> bool {
        match &self.reader {
            Some(reader) => reader.send(Control::Flush(reply)).is_ok(),
            None => {
                reply.send();
                true
            }
        }
    }

    /// Begins shutdown: the Prometheus endpoint closes; a reader exports
    /// one last time by `deadline`, then sends `reply()`. Returns whether a
    /// reply will come (not without a reader: nothing to wait for).
    pub(crate) fn begin_shutdown(
        &mut self,
        deadline: Instant,
        reply: impl FnOnce() -> Reply,
    ) -> bool {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        let Some(reader) = self.reader.take() else {
            return false;
        };
        if let Err(mpsc::error::SendError(Control::Shutdown { reply, .. })) =
            reader.send(Control::Shutdown {
                deadline,
                reply: reply(),
            })
        {
            reply.send();
        }
        true
    }
}
