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

/// Decides which `tracing` spans and events reach OpenTelemetry: spans at
/// or above the trace level, events (which become span events) at or above
/// the span-event level, nothing from the export thread.
struct TraceFilter {
    span_level: tracing::Level,
    event_level: tracing::Level,
}

impl TraceFilter {
    fn wants(&self, meta: &Metadata<'_>) -> bool {
        let level = if meta.is_span() {
            &self.span_level
        } else {
            &self.event_level
        };
        meta.level() <= level
    }
}

impl<S> Filter<S> for TraceFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        self.wants(meta) && !in_export_thread()
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.wants(meta) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.span_level.max(self.event_level).into())
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

/// The registry with the bridge, under which the log output sits.
type WithBridge = tracing_subscriber::layer::Layered<
    Option<tracing_subscriber::filter::Filtered<SpanBridge, TraceFilter, Registry>>,
    Registry,
>;

/// The subscriber: the bridge under the trace filter, and the log output
/// (lines, and with `logger` the OTLP log records) under the log filter, one
/// per-layer filter for all of it. With the log filter `off` there is no log
/// output at all, so spans pay for no filter of it.
pub(crate) fn build(
    settings: &Settings,
    bridge: Option<SpanBridge>,
    logger: Option<&opentelemetry_sdk::logs::SdkLoggerProvider>,
    writer: SharedWriter,
) -> Dispatch {
    let otel = bridge.map(|bridge| {
        bridge.with_filter(TraceFilter {
            span_level: settings.trace_level,
            event_level: settings.span_event_level,
        })
    });
    let filter = EnvFilter::builder().parse_lossy(&settings.log_filter);
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
        Layer::<WithBridge>::and_then(text, lines)
            .and_then(exported)
            .with_filter(filter)
    });
    Dispatch::new(tracing_subscriber::registry().with(otel).with(logs))
}
