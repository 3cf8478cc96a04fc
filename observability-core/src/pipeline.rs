//! Builds the tracer provider and its export pipeline from resolved settings,
//! and takes it down again within a deadline.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::bridge::{HandoffIds, SpanBridge};
use crate::config::SamplerSetting;
use crate::config::{Exporter, Settings};
use crate::direct::{DirectStarter, End, Ends};
use crate::export::error::BuildError;
use crate::export::processor::QueueProcessor;
use crate::export::queue::{Reply, Shared};
use crate::export::report::Reporter;
use crate::export::runtime::{DispatchCell, ExportRuntime};
use crate::export::{ConsoleShared, ExportStats, Sink};
use crate::metrics::{CountingSampler, MetricsPipeline, SpanCounts};
use crate::scrub::Scrubber;
use observability_propagation::sampling::DropRule;
use observability_propagation::starter::SpanStarter;

/// The console prints sooner than OTLP batches unless told otherwise.
const CONSOLE_SCHEDULE_DELAY: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) provider: SdkTracerProvider,
    /// Log records exported over OTLP, when `OTEL_LOGS_EXPORTER=otlp`.
    pub(crate) logs: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    runtime: Option<ExportRuntime>,
    /// Every processor feeding an exporter: the main provider's and those
    /// of the services added since (see [`Pipeline::add_service`]). The
    /// SDK's own metrics read them too.
    processors: Arc<Mutex<Vec<Arc<Shared>>>>,
    /// Metrics, when an exporter reads them.
    pub(crate) metrics: Option<MetricsPipeline>,
    /// What another service of this process needs to export like the main
    /// one.
    recipe: Recipe,
    /// How the main provider's spans start without its tracer.
    direct: Arc<DirectStarter>,
}

#[derive(Debug)]
struct Recipe {
    settings: Settings,
    dispatch: DispatchCell,
    scrubber: Option<Arc<Scrubber>>,
    /// The console every service prints to, so traces crossing services
    /// print as one tree.
    console: Arc<ConsoleShared>,
    /// Spans started by every provider, by sampling result.
    span_counts: Arc<SpanCounts>,
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
        let exported = settings.exporters.iter().any(|e| *e != Exporter::None);
        let runtime = if !exported && settings.logs.is_none() && !settings.metrics.enabled() {
            None
        } else {
            Some(ExportRuntime::start()?)
        };
        let recipe = Recipe {
            settings: Settings {
                warnings: Vec::new(),
                notes: Vec::new(),
                ..settings.clone()
            },
            dispatch: Arc::clone(dispatch),
            scrubber: (!settings.scrubber.is_empty()).then(|| Arc::new(settings.scrubber.clone())),
            console: ConsoleShared::stderr(),
            span_counts: Arc::default(),
        };
        let mut builder = recipe.provider_builder(&settings.resource);
        let mut processors = Vec::new();
        let mut ends = Vec::new();
        if let Some(runtime) = &runtime {
            for (processor, shared) in recipe.processors(&settings.resource, runtime, warnings) {
                ends.push(End::Queue(Arc::new(processor)));
                processors.push(shared);
            }
        }
        ends.extend(extra.into_iter().map(|p| End::Other(Arc::from(p))));
        let (ends, installed) = Ends::new(ends);
        for processor in installed {
            builder = builder.with_span_processor(processor);
        }
        let direct = Arc::new(DirectStarter::new(
            settings.sampler.clone(),
            Arc::clone(&recipe.span_counts),
            settings.limits,
            ends,
        ));
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
        let processors = Arc::new(Mutex::new(processors));
        let metrics = match &runtime {
            Some(runtime) if settings.metrics.enabled() => Some(MetricsPipeline::start(
                &settings.metrics,
                &settings.resource,
                runtime,
                Arc::clone(&processors),
                Arc::clone(&recipe.span_counts),
                dispatch,
                warnings,
            )),
            _ => None,
        };
        Ok(Self {
            provider: builder.build(),
            logs,
            runtime,
            processors,
            metrics,
            recipe,
            direct,
        })
    }

    /// The `tracing` bridge for spans of this pipeline's provider, started
    /// without its tracer when it allows.
    pub(crate) fn bridge(&self) -> SpanBridge {
        self.bridge_of(&self.provider, Some(Arc::clone(&self.direct)))
    }

    /// The `tracing` bridge for spans of another service's `provider`.
    pub(crate) fn service_bridge(&self, provider: &SdkTracerProvider) -> SpanBridge {
        self.bridge_of(provider, None)
    }

    fn bridge_of(
        &self,
        provider: &SdkTracerProvider,
        direct: Option<Arc<DirectStarter>>,
    ) -> SpanBridge {
        let scope = opentelemetry::InstrumentationScope::builder("observability")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        SpanBridge::new(
            provider.tracer_with_scope(scope.clone()),
            direct.map(|direct| (direct, scope)),
            self.recipe.settings.sampler.clone(),
            Arc::clone(&self.recipe.span_counts),
        )
    }

    /// What this pipeline's sampler drops without looking at a span (see
    /// [`observability_propagation::sampling`]), each such drop counted
    /// in `otel.sdk.span.started` as the sampler would have.
    pub(crate) fn drop_rule(&self) -> Option<DropRule> {
        let counts = Arc::clone(&self.recipe.span_counts);
        let on_drop: Arc<dyn Fn() + Send + Sync> = Arc::new(move || counts.count_drop());
        match &self.recipe.settings.sampler {
            SamplerSetting::AlwaysOff => Some(DropRule::everything(on_drop)),
            // The SDK's parent-based sampler drops under a parent that was
            // not sampled, remote or local (`*_parent_not_sampled` are
            // `AlwaysOff` unless set, and the variables cannot set them).
            SamplerSetting::ParentBased(_) => Some(DropRule::parent_based(on_drop)),
            SamplerSetting::AlwaysOn | SamplerSetting::Ratio(_) => None,
        }
    }

    /// How the layers start this pipeline's spans without its tracer (see
    /// [`observability_propagation::starter`]).
    pub(crate) fn span_starter(&self) -> Arc<dyn SpanStarter> {
        Arc::clone(&self.direct) as Arc<dyn SpanStarter>
    }

    /// A tracer provider for another service of this process: the same
    /// sampler, limits and exporters, a resource whose `service.name` is
    /// `service`, queues of its own. Its spans are counted, flushed and
    /// shut down with the rest. Problems building an exporter are warnings,
    /// as at start.
    pub(crate) fn add_service(
        &self,
        service: &str,
        warnings: &mut Vec<String>,
    ) -> SdkTracerProvider {
        let resource = with_service_name(&self.recipe.settings.resource, service);
        let mut builder = self.recipe.provider_builder(&resource);
        if let Some(runtime) = &self.runtime {
            let mut processors = self.lock();
            for (processor, shared) in self.recipe.processors(&resource, runtime, warnings) {
                // After shutdown began, the new queue is closed at once: its
                // spans are counted as dropped at shutdown, like the others'.
                if processors.first().is_some_and(|p| p.is_closed()) {
                    shared.begin_shutdown(Instant::now(), Reply::Ignored);
                }
                if let Some(metrics) = &self.metrics {
                    metrics.watch_exports(&shared);
                }
                builder = builder.with_span_processor(processor);
                processors.push(shared);
            }
        }
        builder.build()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Shared>>> {
        self.processors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The processors at this moment.
    fn processors(&self) -> Vec<Arc<Shared>> {
        self.lock().clone()
    }

    pub(crate) fn stats(&self) -> ExportStats {
        let mut total = ExportStats::default();
        for p in self.lock().iter() {
            total.add(p.stats());
        }
        total
    }

    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), crate::Error> {
        let deadline = Instant::now() + timeout;
        let mut waiting = Vec::new();
        if let Some(metrics) = &self.metrics {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            if metrics.flush(Reply::Blocking(tx)) {
                waiting.push(rx);
            }
        }
        for p in &self.processors() {
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

    /// Begins shutdown of every processor and of the metrics reader; the
    /// replies come when each has exported what it held (or the deadline
    /// passed). Returns how many replies will come.
    fn begin_shutdown(&mut self, deadline: Instant, reply: impl Fn() -> Reply) -> usize {
        let processors = self.processors();
        for p in &processors {
            p.begin_shutdown(deadline, reply());
        }
        let mut count = processors.len();
        if let Some(metrics) = &mut self.metrics
            && metrics.begin_shutdown(deadline, &reply)
        {
            count += 1;
        }
        count
    }

    /// Shuts down, blocking the caller until done or `timeout` has passed.
    pub(crate) fn shutdown_blocking(mut self, timeout: Duration) -> (ExportStats, bool) {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = std::sync::mpsc::sync_channel(self.lock().len() + 2);
        let count = self.begin_shutdown(deadline, || Reply::Blocking(tx.clone()));
        drop(tx);
        let mut in_time = true;
        for _ in 0..count {
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
    pub(crate) async fn shutdown_async(mut self, timeout: Duration) -> (ExportStats, bool) {
        let deadline = Instant::now() + timeout;
        if self.runtime.is_none() {
            return self.finish(true);
        }
        let replies = Mutex::new(Vec::new());
        self.begin_shutdown(deadline, || {
            let (tx, rx) = tokio::sync::oneshot::channel();
            replies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(rx);
            Reply::Async(tx)
        });
        let replies = replies
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(runtime) = &self.runtime else {
            return self.finish(true);
        };
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
        for p in &self.processors() {
            p.abandon(stopped);
        }
        // Said here too: a provider without processors has nothing that
        // would hear of its shutdown.
        self.direct.close();
        let _ = self
            .provider
            .shutdown_with_timeout(Duration::from_millis(100));
        (self.stats(), in_time)
    }
}

impl Recipe {
    fn provider_builder(
        &self,
        resource: &Resource,
    ) -> opentelemetry_sdk::trace::TracerProviderBuilder {
        SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_id_generator(HandoffIds::default())
            .with_sampler(CountingSampler {
                inner: self.settings.sampler.to_sdk(),
                counts: Arc::clone(&self.span_counts),
            })
            .with_span_limits(self.settings.limits)
    }

    /// A processor per exporter for spans of `resource`, each with its
    /// worker spawned on the export thread.
    fn processors(
        &self,
        resource: &Resource,
        runtime: &ExportRuntime,
        warnings: &mut Vec<String>,
    ) -> Vec<(QueueProcessor, Arc<Shared>)> {
        let settings = &self.settings;
        let mut out = Vec::new();
        for exporter in &settings.exporters {
            let mut batch = settings.batch.clone();
            let sink: Box<dyn Sink> = match exporter {
                Exporter::Console => {
                    if !settings.schedule_delay_set {
                        batch.schedule_delay = CONSOLE_SCHEDULE_DELAY;
                    }
                    Box::new(self.console.sink(resource))
                }
                Exporter::Otlp => match otlp(settings, resource, runtime) {
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
            let (processor, shared, worker, watch) = QueueProcessor::new(
                sink,
                &batch,
                settings.attribute_value_length_limit,
                self.scrubber.clone(),
                Reporter::new(Arc::clone(&self.dispatch)),
            );
            runtime.handle().spawn(worker);
            runtime.handle().spawn(watch);
            out.push((processor, shared));
        }
        out
    }
}

/// `resource` with its `service.name` replaced.
fn with_service_name(resource: &Resource, service: &str) -> Resource {
    Resource::builder_empty()
        .with_attributes(
            resource
                .iter()
                .filter(|(key, _)| key.as_str() != "service.name")
                .map(|(key, value)| opentelemetry::KeyValue::new(key.clone(), value.clone())),
        )
        .with_service_name(service.to_owned())
        .build()
}

/// Without the OTLP features, an OTLP exporter cannot be built.
#[cfg(not(feature = "otlp-http"))]
const NO_OTLP: BuildError = BuildError::MissingFeature {
    what: "OTLP export",
    feature: "otlp-http` or `otlp-grpc",
    advice: "",
};

fn otlp_logs(
    logs: &crate::config::OtlpSettings,
    settings: &Settings,
    runtime: &ExportRuntime,
) -> Result<opentelemetry_sdk::logs::SdkLoggerProvider, BuildError> {
    #[cfg(feature = "otlp-http")]
    {
        let exporter =
            crate::export::otlp_log_exporter(logs, &settings.resource, runtime.handle())?;
        Ok(opentelemetry_sdk::logs::SdkLoggerProvider::builder()
            .with_resource(settings.resource.clone())
            .with_batch_exporter(exporter)
            .build())
    }
    #[cfg(not(feature = "otlp-http"))]
    {
        let _ = (logs, settings, runtime);
        Err(NO_OTLP)
    }
}

fn otlp(
    settings: &Settings,
    resource: &Resource,
    runtime: &ExportRuntime,
) -> Result<Box<dyn Sink>, BuildError> {
    #[cfg(feature = "otlp-http")]
    {
        crate::export::otlp_sink(
            &settings.otlp,
            settings.batch.max_request_bytes,
            resource,
            runtime.handle(),
        )
    }
    #[cfg(not(feature = "otlp-http"))]
    {
        let _ = (settings, resource, runtime);
        Err(NO_OTLP)
    }
}
