//! The `tracing` subscriber `init` installs: the OpenTelemetry layer,
//! filtered only by the trace level, and the log output, filtered only by
//! `RUST_LOG`. Log verbosity never decides what is traced.

use std::io::IsTerminal;

use tracing::subscriber::Interest;
use tracing::{Dispatch, Metadata};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::{EnvFilter, Layer};

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
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
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
    let filter = || EnvFilter::builder().parse_lossy(&settings.log_filter);
    let (text, lines) = match settings.log_format {
        LogFormat::Text => {
            let ansi = settings.log_writer_is_stdout && std::io::stdout().is_terminal();
            let text = tracing_subscriber::fmt::layer()
                .event_format(WithTraceId(
                    tracing_subscriber::fmt::format().with_ansi(ansi),
                ))
                .with_writer(writer)
                .with_ansi(ansi)
                .with_filter(filter());
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
            (
                None,
                Some(builder.writer(writer).build().with_filter(filter())),
            )
        }
    };
    let exported_logs = logger.map(|logger| {
        opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(logger)
            .with_filter(filter())
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                !in_export_thread()
                    && !NOT_EXPORTED_AS_LOGS.iter().any(|c| {
                        meta.target()
                            .strip_prefix(c)
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
                    })
            }))
    });
    Dispatch::new(
        tracing_subscriber::registry()
            .with(otel)
            .with(text)
            .with(lines)
            .with(exported_logs),
    )
}
