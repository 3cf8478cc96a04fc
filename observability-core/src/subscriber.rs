//! The `tracing` subscriber `init` installs: the OpenTelemetry layer,
//! filtered only by the trace level, and the log output, filtered only by
//! `RUST_LOG`. Log verbosity never decides what is traced.

use std::io::IsTerminal;

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::{EnvFilter, Layer, Registry};

use observability_logging::{Format, LogLayer};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::bridge::SpanBridge;
use crate::config::{LogFormat, Settings};
use crate::export::runtime::in_export_thread;

/// The bridge, given the spans at or above the trace level and the events
/// (which become span events) at or above the span-event level, nothing
/// from the export thread (its own HTTP/2 machinery would trace itself).
///
/// It is the subscriber's outermost layer and filters for itself rather
/// than through a per-layer filter: `tracing-subscriber`'s `Filtered` looks
/// the span up in the registry on entering, leaving and closing it, whether
/// or not it wants the span (about 0.5 k instructions a span), and the
/// bridge looks it up anyway where it needs to. Its interest in a callsite
/// is `always` for what it wants and otherwise the log output's (the log
/// filter, built again from the same directives): an outer layer's `never`
/// would hide the callsite from the log output, and a `sometimes` makes
/// each span or event of the callsite ask every filter again (0.1–0.2 k
/// instructions each time).
struct Traced {
    bridge: SpanBridge,
    span_level: tracing::Level,
    event_level: tracing::Level,
    /// The log filter, built again from its directives and asked only for
    /// its interest; `None` without log output.
    logs: Option<Box<EnvFilter>>,
}

impl Traced {
    /// Whether `meta`'s level is traced: a span at or above the trace
    /// level, an event at or above the span-event level.
    fn traces_level(&self, meta: &Metadata<'_>) -> bool {
        let level = if meta.is_span() {
            &self.span_level
        } else {
            &self.event_level
        };
        meta.level() <= level
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        self.traces_level(meta) && !in_export_thread()
    }
}

impl<S> Layer<S> for Traced
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        Layer::<S>::on_register_dispatch(&self.bridge, subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.bridge.on_layer(subscriber);
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.traces_level(meta) {
            // The export thread is left out span by span.
            return Interest::always();
        }
        match &self.logs {
            Some(filter) => <EnvFilter as Filter<Registry>>::callsite_enabled(filter, meta),
            None => Interest::never(),
        }
    }

    // `enabled` is left to the default (`true`): the bridge leaves out for
    // itself what it does not want, and the log output's filter decides
    // for the log output.

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.span_level.max(self.event_level).into())
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if self.wants(attrs.metadata()) {
            self.bridge.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.bridge.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.bridge.on_follows_from(id, follows, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if self.wants(event.metadata()) {
            self.bridge.on_event(event, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.bridge.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.bridge.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.bridge.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.bridge.on_id_change(old, new, ctx);
    }
}

/// The text format of `tracing-subscriber`, each line inside a trace led by
/// its trace id (`4bf92f3577b34da6a3ce929d0e0e4736 2026-11-30T... INFO ...`),
/// so a line read on a terminal leads to its trace as a JSON line does.
struct WithTraceId<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithTraceId<F>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        use opentelemetry::trace::TraceContextExt as _;
        let trace_id = opentelemetry::Context::map_current(|cx| {
            let span = cx.span();
            let sc = span.span_context();
            sc.is_valid().then(|| sc.trace_id())
        });
        if let Some(trace_id) = trace_id {
            if writer.has_ansi_escapes() {
                write!(writer, "\x1b[2m{trace_id}\x1b[0m ")?;
            } else {
                write!(writer, "{trace_id} ")?;
            }
        }
        self.0.format_event(ctx, writer, event)
    }
}

/// Crates whose logs never go to the OTLP log exporter: the exporter's own
/// stack (exporting them would feed itself).
const NOT_EXPORTED_AS_LOGS: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "rustls",
    "opentelemetry",
    "observability_core",
];

/// Whether an event the log filter lets through also goes to the OTLP log
/// exporter: not from the export thread, nor from the exporter's own stack.
fn exported_as_log(meta: &Metadata<'_>) -> bool {
    !in_export_thread()
        && !NOT_EXPORTED_AS_LOGS.iter().any(|c| {
            meta.target()
                .strip_prefix(c)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// The OTLP log bridge, given the events [`exported_as_log`] keeps and
/// every other notification as it is. It shares the log output's filter
/// rather than having one of its own: each per-layer filter costs every
/// span a look-up in the registry on entering, leaving and closing.
struct ExportedLogs<L>(L);

impl<S, L> Layer<S> for ExportedLogs<L>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.0.on_follows_from(id, follows, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if exported_as_log(event.metadata()) {
            self.0.on_event(event, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.0.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.0.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.0.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.0.on_id_change(old, new, ctx);
    }
}

/// Where log lines go, shared by the dispatchers of every service of the
/// process.
#[derive(Clone)]
pub(crate) struct SharedWriter(std::sync::Arc<BoxMakeWriter>);

impl SharedWriter {
    pub(crate) fn new(writer: BoxMakeWriter) -> Self {
        Self(std::sync::Arc::new(writer))
    }
}

impl std::fmt::Debug for SharedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedWriter")
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SharedWriter {
    type Writer = <BoxMakeWriter as tracing_subscriber::fmt::MakeWriter<'a>>::Writer;

    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        self.0.make_writer_for(meta)
    }
}

/// The subscriber: the log output (lines, and with `logger` the OTLP log
/// records) under the log filter, one per-layer filter for all of it, and
/// the bridge outside it, filtering for itself (see [`Traced`]). With the
/// log filter `off` there is no log output at all, so spans pay for no
/// filter of it.
pub(crate) fn build(
    settings: &Settings,
    bridge: Option<SpanBridge>,
    logger: Option<&opentelemetry_sdk::logs::SdkLoggerProvider>,
    writer: SharedWriter,
) -> Dispatch {
    let log_filter = || EnvFilter::builder().parse_lossy(&settings.log_filter);
    let filter = log_filter();
    let logs_off = <EnvFilter as Filter<Registry>>::max_level_hint(&filter)
        == Some(tracing::level_filters::LevelFilter::OFF);
    let logs = (!logs_off).then(|| {
        let (text, lines) = match settings.log_format {
            LogFormat::Text => {
                let ansi = settings.log_writer_is_stdout && std::io::stdout().is_terminal();
                let text = tracing_subscriber::fmt::layer()
                    .event_format(WithTraceId(
                        tracing_subscriber::fmt::format().with_ansi(ansi),
                    ))
                    .with_writer(writer)
                    .with_ansi(ansi);
                (Some(text), None)
            }
            format => {
                let format = match format {
                    LogFormat::Ecs => Format::Ecs,
                    LogFormat::Logfmt => Format::Logfmt,
                    _ => Format::Json,
                };
                let mut builder = LogLayer::builder()
                    .format(format)
                    .service_name(settings.service_name.clone());
                if let Some(environment) = &settings.environment {
                    builder = builder.environment(environment.clone());
                }
                (None, Some(builder.writer(writer).build()))
            }
        };
        let exported = logger.map(|logger| {
            ExportedLogs(
                opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(logger),
            )
        });
        Layer::<Registry>::and_then(text, lines)
            .and_then(exported)
            .with_filter(filter)
    });
    let traced = bridge.map(|bridge| Traced {
        bridge,
        span_level: settings.trace_level,
        event_level: settings.span_event_level,
        logs: logs.is_some().then(|| Box::new(log_filter())),
    });
    // No `None` layers: `tracing-subscriber` reads a `None` layer's
    // interest as `always`, which would make callsites nothing wants ask
    // again on each call. The log output is inside the bridge, so that its
    // per-layer filter's interest is known when the bridge's is combined
    // with it.
    let registry = tracing_subscriber::registry();
    match (traced, logs) {
        (Some(traced), Some(logs)) => Dispatch::new(registry.with(logs).with(traced)),
        (Some(traced), None) => Dispatch::new(registry.with(traced)),
        (None, Some(logs)) => Dispatch::new(registry.with(logs)),
        (None, None) => Dispatch::new(registry),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TraceContextExt as _;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;

    use super::*;
    use crate::bridge::tests::bridge;
    use crate::config::{CodeSettings, SamplerSetting};
    use crate::direct::tests::Keep;
    use crate::env::Env;
    use crate::export::runtime::as_export_thread;

    /// Log lines, kept.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// `build`'s subscriber with JSON lines at `log_filter` into the lines
    /// returned, and a bridge (every span sampled) whose spans are kept.
    fn subscriber(log_filter: &str) -> (Dispatch, Arc<Keep>, Lines) {
        let code = CodeSettings {
            log_filter: Some(log_filter.to_owned()),
            log_format: Some(LogFormat::Json),
            ..CodeSettings::default()
        };
        let settings = Settings::resolve(code, &Env::custom(Arc::new(|_| None))).unwrap();
        assert_eq!(settings.trace_level, tracing::Level::INFO);
        assert_eq!(settings.span_event_level, tracing::Level::WARN);
        let (bridge, keep, _) = bridge(SamplerSetting::AlwaysOn, true);
        let lines = Lines::default();
        let writer = {
            let lines = lines.clone();
            SharedWriter::new(BoxMakeWriter::new(move || lines.clone()))
        };
        (build(&settings, Some(bridge), None, writer), keep, lines)
    }

    /// What runs on the export thread is not traced: its spans are not
    /// recorded, are not current, and its events are no span's, though they
    /// are still written as log lines.
    #[test]
    fn what_the_export_thread_makes_is_never_traced() {
        let (dispatch, keep, lines) = subscriber("info");
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info_span!("app").in_scope(|| tracing::warn!("from the app"));
            as_export_thread(|| {
                tracing::info_span!("exporting").in_scope(|| {
                    assert!(!opentelemetry::Context::current().has_active_span());
                    tracing::warn!("from the exporter");
                });
            });
            tracing::info_span!("outer").in_scope(|| {
                as_export_thread(|| tracing::warn!("from the exporter, inside"));
            });
        });
        let spans = keep.0.lock().unwrap();
        let names: Vec<_> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["app", "outer"]);
        assert_eq!(spans[0].events.len(), 1);
        assert_eq!(spans[0].events[0].name, "from the app");
        assert!(spans[1].events.is_empty(), "{:?}", spans[1].events);
        let lines = lines.text();
        for message in [
            "from the app",
            "from the exporter",
            "from the exporter, inside",
        ] {
            assert!(lines.contains(message), "{message}: {lines}");
        }
    }

    /// A span below the trace level that the log output keeps is logged
    /// and not traced: an event inside it is an event of the nearest traced
    /// span around it, and a span made inside it, or with it as the
    /// explicit parent, is a child of that span too.
    #[test]
    fn what_a_span_below_the_trace_level_holds_is_traced_under_the_nearest_traced_one() {
        let (dispatch, keep, lines) = subscriber("debug");
        tracing::dispatcher::with_default(&dispatch, || {
            let outer = tracing::info_span!("outer");
            let detail = outer.in_scope(|| {
                let detail = tracing::debug_span!("detail", step = 3);
                detail.in_scope(|| {
                    tracing::warn!("inside the detail");
                    tracing::info_span!("contextual").in_scope(|| {});
                });
                detail
            });
            // Outside the outer span: only the explicit parent leads to it.
            tracing::info_span!(parent: &detail, "explicit").in_scope(|| {});
        });
        let spans = keep.0.lock().unwrap();
        let by_name = |name: &str| spans.iter().find(|s| s.name == name).unwrap();
        let outer = by_name("outer");
        assert_eq!(spans.len(), 3, "{spans:?}");
        for child in ["contextual", "explicit"] {
            let child = by_name(child);
            assert_eq!(
                child.parent_span_id,
                outer.span_context.span_id(),
                "{child:?}"
            );
            assert_eq!(child.span_context.trace_id(), outer.span_context.trace_id());
        }
        let events: Vec<_> = outer.events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(events, ["inside the detail"]);
        let lines = lines.text();
        assert!(
            lines.contains("\"inside the detail\"") && lines.contains("\"step\":3"),
            "{lines}"
        );
    }

    /// An event less severe than the span-event level but not than the
    /// trace level reaches the bridge when the log output keeps it, and the
    /// bridge leaves it out of the span; under any log filter, an event at
    /// the span-event level is a span event and one below the trace level
    /// is not.
    #[test]
    fn events_are_span_events_at_the_span_event_level_whatever_the_log_filter() {
        for log_filter in [
            "info",
            "warn",
            "off",
            "debug",
            "info,observability_core=warn",
        ] {
            let (dispatch, keep, lines) = subscriber(log_filter);
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info_span!("work").in_scope(|| {
                    tracing::debug!("detail");
                    tracing::info!("progress");
                    tracing::warn!("slow");
                    tracing::error!("failed");
                });
            });
            let spans = keep.0.lock().unwrap();
            assert_eq!(spans.len(), 1, "{log_filter}");
            let events: Vec<_> = spans[0].events.iter().map(|e| e.name.as_ref()).collect();
            assert_eq!(events, ["slow", "failed"], "{log_filter}");
            let lines = lines.text();
            let logged = |message: &str| lines.contains(&format!("\"{message}\""));
            let (debug, info, warn) = match log_filter {
                "debug" => (true, true, true),
                "info" => (false, true, true),
                "warn" | "info,observability_core=warn" => (false, false, true),
                _ => (false, false, false),
            };
            assert_eq!(
                [
                    logged("detail"),
                    logged("progress"),
                    logged("slow"),
                    logged("failed")
                ],
                [debug, info, warn, warn],
                "{log_filter}: {lines}"
            );
        }
    }
}
