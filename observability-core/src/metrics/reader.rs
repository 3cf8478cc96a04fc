//! The periodic reader: every `OTEL_METRIC_EXPORT_INTERVAL`, and on flush
//! and shutdown, collects the metrics and sends them over OTLP within
//! `OTEL_METRIC_EXPORT_TIMEOUT`, or prints them (console). Failures are
//! warned at the first, then at most every 30 s.

use std::time::{Duration, Instant};

use observability_metrics::MeterProvider;
use observability_metrics::prometheus::{self, Format};
use opentelemetry::KeyValue;
use tokio::sync::mpsc;

use crate::config::{MetricsExporter, MetricsSettings};
use crate::export::queue::Reply;
use crate::export::runtime::{DispatchCell, ExportRuntime};

/// At most one warning about failed metric exports this often.
const WARNING_INTERVAL: Duration = Duration::from_secs(30);

/// What the reader is asked to do besides its schedule.
#[derive(Debug)]
pub(crate) enum Control {
    Flush(Reply),
    Shutdown { deadline: Instant, reply: Reply },
}

/// Where collected metrics go.
enum Destination {
    #[cfg(feature = "otlp-http")]
    Otlp(Box<crate::export::MetricsSender>),
    Console,
}

struct Reader {
    provider: MeterProvider,
    #[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
    resource: Vec<KeyValue>,
    #[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
    schema_url: String,
    destinations: Vec<Destination>,
    timeout: Duration,
    dispatch: DispatchCell,
    last_warning: Option<Instant>,
    failing: bool,
}

/// Starts the reader on `runtime` when OTLP or the console reads metrics.
pub(super) fn start(
    settings: &MetricsSettings,
    provider: &MeterProvider,
    resource: &[KeyValue],
    schema_url: &str,
    runtime: &ExportRuntime,
    dispatch: &DispatchCell,
    warnings: &mut Vec<String>,
) -> Option<mpsc::UnboundedSender<Control>> {
    let mut destinations = Vec::new();
    for exporter in &settings.exporters {
        match exporter {
            MetricsExporter::Otlp => {
                if let Some(destination) = otlp(settings, runtime, warnings) {
                    destinations.push(destination);
                }
            }
            MetricsExporter::Console => destinations.push(Destination::Console),
            MetricsExporter::Prometheus => {}
        }
    }
    if destinations.is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let reader = Reader {
        provider: provider.clone(),
        resource: resource.to_vec(),
        schema_url: schema_url.to_owned(),
        destinations,
        timeout: settings.timeout,
        dispatch: std::sync::Arc::clone(dispatch),
        last_warning: None,
        failing: false,
    };
    runtime.handle().spawn(reader.run(settings.interval, rx));
    Some(tx)
}

#[cfg(feature = "otlp-http")]
fn otlp(
    settings: &MetricsSettings,
    runtime: &ExportRuntime,
    warnings: &mut Vec<String>,
) -> Option<Destination> {
    let otlp = settings.otlp.as_ref()?;
    match crate::export::MetricsSender::new(otlp, runtime.handle()) {
        Ok(sender) => Some(Destination::Otlp(Box::new(sender))),
        Err(why) => {
            warnings.push(format!(
                "the OTLP metric exporter for {} could not be built: {why}; metrics will not be exported there",
                otlp.endpoint
            ));
            None
        }
    }
}

#[cfg(not(feature = "otlp-http"))]
fn otlp(_: &MetricsSettings, _: &ExportRuntime, warnings: &mut Vec<String>) -> Option<Destination> {
    warnings.push(
        "OTLP metrics need the `otlp-http` or `otlp-grpc` feature of observability-core".to_owned(),
    );
    None
}

impl Reader {
    async fn run(mut self, interval: Duration, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let deadline = Instant::now() + self.timeout;
                    self.export(deadline, false).await;
                }
                message = control.recv() => match message {
                    Some(Control::Flush(reply)) => {
                        let deadline = Instant::now() + self.timeout;
                        self.export(deadline, false).await;
                        reply.send();
                    }
                    Some(Control::Shutdown { deadline, reply }) => {
                        let deadline = deadline.min(Instant::now() + self.timeout);
                        self.export(deadline, true).await;
                        reply.send();
                        return;
                    }
                    None => return,
                },
            }
        }
    }

    /// Collects once and sends to every destination by `deadline`.
    #[cfg_attr(not(feature = "otlp-http"), allow(unused_variables, unused_mut))]
    async fn export(&mut self, deadline: Instant, last: bool) {
        let collection = self.provider.collect();
        if collection.is_empty() {
            return;
        }
        let mut failure = None;
        for destination in &self.destinations {
            match destination {
                #[cfg(feature = "otlp-http")]
                Destination::Otlp(sender) => {
                    let message = observability_metrics::otlp::encode_request(
                        &collection,
                        &self.resource,
                        &self.schema_url,
                    );
                    if let Err(error) = sender.send(&message, deadline, last).await {
                        failure = Some(error.to_string());
                    }
                }
                Destination::Console => {
                    eprint!("{}", prometheus::encode(&collection, &[], Format::Text));
                }
            }
        }
        self.report(failure);
    }

    fn report(&mut self, failure: Option<String>) {
        let dispatch = self
            .dispatch
            .get()
            .and_then(tracing::dispatcher::WeakDispatch::upgrade);
        let emit = |f: &dyn Fn()| match &dispatch {
            Some(dispatch) => tracing::dispatcher::with_default(dispatch, f),
            None => f(),
        };
        match failure {
            Some(error) => {
                let due = self
                    .last_warning
                    .is_none_or(|at| at.elapsed() >= WARNING_INTERVAL);
                if due {
                    self.last_warning = Some(Instant::now());
                    emit(&|| {
                        tracing::warn!(
                            target: "observability_core",
                            "metric export failed: {error}; these data points are lost (the next export sends cumulative values again)"
                        );
                    });
                }
                self.failing = true;
            }
            None if self.failing => {
                self.failing = false;
                emit(&|| tracing::info!(target: "observability_core", "metric export recovered"));
            }
            None => {}
        }
    }
}
