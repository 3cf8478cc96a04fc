//! Builds the tracer provider and its export pipeline from resolved settings,
//! and takes it down again within a deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::config::{Exporter, Settings};
use crate::export::processor::{QueueProcessor, Reply, Shared};
use crate::export::runtime::{DispatchCell, ExportRuntime, Reporter};
use crate::export::{ConsoleSink, ExportStats, Sink};

/// The console prints sooner than OTLP batches unless told otherwise.
const CONSOLE_SCHEDULE_DELAY: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) provider: SdkTracerProvider,
    /// Log records exported over OTLP, when `OTEL_LOGS_EXPORTER=otlp`.
    pub(crate) logs: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    runtime: Option<ExportRuntime>,
    processors: Vec<Arc<Shared>>,
}

impl Pipeline {
    /// The provider and, when anything is exported, the export thread.
    /// Problems building an exporter are warnings: that exporter is left out.
    pub(crate) fn build(
        settings: &Settings,
        dispatch: &DispatchCell,
        extra: Vec<Box<dyn opentelemetry_sdk::trace::SpanProcessor>>,
        warnings: &mut Vec<String>,
    ) -> Result<Self, crate::Error> {
        let exported: Vec<Exporter> = settings
            .exporters
            .iter()
            .copied()
            .filter(|e| *e != Exporter::None)
            .collect();
        let runtime = if exported.is_empty() && settings.logs.is_none() {
            None
        } else {
            Some(ExportRuntime::start()?)
        };

        let mut builder = SdkTracerProvider::builder()
            .with_resource(settings.resource.clone())
            .with_sampler(settings.sampler.to_sdk())
            .with_span_limits(settings.limits);
        let mut processors = Vec::new();
        let scrubber = (!settings.scrubber.is_empty()).then(|| Arc::new(settings.scrubber.clone()));
        if let Some(runtime) = &runtime {
            for exporter in exported {
                let mut batch = settings.batch.clone();
                let sink: Box<dyn Sink> = match exporter {
                    Exporter::Console => {
                        if !settings.schedule_delay_set {
                            batch.schedule_delay = CONSOLE_SCHEDULE_DELAY;
                        }
                        Box::new(ConsoleSink::new(&settings.resource))
                    }
                    Exporter::Otlp => match otlp(settings, runtime) {
                        Ok(sink) => sink,
                        Err(why) => {
                            warnings.push(format!(
                                "the OTLP exporter for {} could not be built: {why}; spans will not be exported there",
                                settings.otlp.endpoint
                            ));
                            continue;
                        }
                    },
                    Exporter::None => continue,
                };
                let (processor, shared, worker) = QueueProcessor::new(
                    sink,
                    &batch,
                    settings.attribute_value_length_limit,
                    scrubber.clone(),
                    Reporter::new(Arc::clone(dispatch)),
                );
                runtime.handle().spawn(worker);
                builder = builder.with_span_processor(processor);
                processors.push(shared);
            }
        }
        for processor in extra {
            builder = builder.with_span_processor(BoxedProcessor(processor));
        }
        let logs = match (&settings.logs, &runtime) {
            (Some(logs), Some(runtime)) => match otlp_logs(logs, settings, runtime) {
                Ok(provider) => Some(provider),
                Err(why) => {
                    warnings.push(format!(
                        "the OTLP log exporter for {} could not be built: {why}; logs are not exported",
                        logs.endpoint
                    ));
                    None
                }
            },
            _ => None,
        };
        Ok(Self {
            provider: builder.build(),
            logs,
            runtime,
            processors,
        })
    }

    pub(crate) fn stats(&self) -> ExportStats {
        let mut total = ExportStats::default();
        for p in &self.processors {
            total.add(p.stats());
        }
        total
    }

    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), crate::Error> {
        let deadline = Instant::now() + timeout;
        let mut waiting = Vec::new();
        for p in &self.processors {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            if p.request_flush(Reply::Blocking(tx)) {
                waiting.push(rx);
            } else {
                return Err(crate::Error::AlreadyShutdown);
            }
        }
        for rx in waiting {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(left) {
                return Err(crate::Error::Timeout {
                    deadline: timeout,
                    stats: self.stats(),
                });
            }
        }
        Ok(())
    }

    /// Begins shutdown of every processor; the replies come when each has
    /// exported what it held (or the deadline passed).
    fn begin_shutdown(&self, deadline: Instant, reply: impl Fn() -> Reply) {
        for p in &self.processors {
            p.begin_shutdown(deadline, reply());
        }
    }

    /// Shuts down, blocking the caller until done or `timeout` has passed.
    pub(crate) fn shutdown_blocking(self, timeout: Duration) -> (ExportStats, bool) {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = std::sync::mpsc::sync_channel(self.processors.len().max(1));
        self.begin_shutdown(deadline, || Reply::Blocking(tx.clone()));
        drop(tx);
        let mut in_time = true;
        for _ in 0..self.processors.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(()) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    in_time = false;
                    break;
                }
            }
        }
        self.finish(in_time)
    }

    /// Shuts down without blocking an executor thread: the waiting and the
    /// deadline run on the export thread.
    pub(crate) async fn shutdown_async(self, timeout: Duration) -> (ExportStats, bool) {
        let deadline = Instant::now() + timeout;
        let Some(runtime) = &self.runtime else {
            return self.finish(true);
        };
        let mut replies = Vec::new();
        for p in &self.processors {
            let (tx, rx) = tokio::sync::oneshot::channel();
            p.begin_shutdown(deadline, Reply::Async(tx));
            replies.push(rx);
        }
        let waited = runtime.handle().spawn(async move {
            tokio::time::timeout_at(deadline.into(), async {
                for rx in replies {
                    let _ = rx.await;
                }
            })
            .await
            .is_ok()
        });
        let in_time = waited.await.unwrap_or(false);
        self.finish(in_time)
    }

    fn finish(mut self, in_time: bool) -> (ExportStats, bool) {
        if let Some(logs) = self.logs.take() {
            let _ = logs.shutdown_with_timeout(Duration::from_secs(1));
        }
        let stopped = match &mut self.runtime {
            Some(runtime) => runtime.stop(if in_time {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(100)
            }),
            None => true,
        };
        // Whatever is still queued or was being exported when the deadline
        // passed is lost: count it, so delivered + dropped = created.
        for p in &self.processors {
            p.abandon(stopped);
        }
        let _ = self
            .provider
            .shutdown_with_timeout(Duration::from_millis(100));
        (self.stats(), in_time)
    }
}

fn otlp_logs(
    logs: &crate::config::OtlpSettings,
    settings: &Settings,
    runtime: &ExportRuntime,
) -> Result<opentelemetry_sdk::logs::SdkLoggerProvider, String> {
    #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
    {
        let exporter =
            crate::export::otlp_log_exporter(logs, &settings.resource, runtime.handle())?;
        Ok(opentelemetry_sdk::logs::SdkLoggerProvider::builder()
            .with_resource(settings.resource.clone())
            .with_batch_exporter(exporter)
            .build())
    }
    #[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
    {
        let _ = (logs, settings, runtime);
        Err(
            "observability-core was built without the `otlp-grpc` and `otlp-http` features"
                .to_owned(),
        )
    }
}

fn otlp(settings: &Settings, runtime: &ExportRuntime) -> Result<Box<dyn Sink>, String> {
    #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
    {
        crate::export::otlp_sink(&settings.otlp, &settings.resource, runtime.handle())
    }
    #[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
    {
        let _ = (settings, runtime);
        Err(
            "observability-core was built without the `otlp-grpc` and `otlp-http` features"
                .to_owned(),
        )
    }
}

/// Lets boxed processors (the testing capture) join the provider.
#[derive(Debug)]
struct BoxedProcessor(Box<dyn opentelemetry_sdk::trace::SpanProcessor>);

impl opentelemetry_sdk::trace::SpanProcessor for BoxedProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }
    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        self.0.on_end(span);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
}
