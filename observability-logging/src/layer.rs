use std::cell::RefCell;
use std::io::{self, Write as _};
use std::time::SystemTime;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::fields::{
    EventVisitor, Seen, SpanFields, SpanRecorder, write_key, write_message, write_stored,
    write_str_value,
};
use crate::redact::Redaction;
use crate::write::timestamp;

/// The shape of each line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// One JSON object per line with `timestamp`, `level`, `message`,
    /// `target`, `trace_id`, `span_id`, `trace_flags`, `service.name` and the
    /// fields as top-level keys.
    #[default]
    Json,
    /// Elastic Common Schema names: `@timestamp`, `log.level`, `message`,
    /// `log.logger`, `trace.id`, `span.id`, `service.name`,
    /// `service.environment`, `ecs.version`.
    Ecs,
    /// `key=value` pairs (`trace_id=...`), values quoted when needed.
    Logfmt,
}

impl Format {
    /// Parses `json`, `ecs` or `logfmt` (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "ecs" => Some(Self::Ecs),
            "logfmt" => Some(Self::Logfmt),
            _ => None,
        }
    }
}

/// A `tracing-subscriber` layer that writes one line per event, carrying the
/// ids of the current OpenTelemetry span. See the [crate docs](crate).
#[derive(Debug)]
pub struct LogLayer<W = fn() -> io::Stdout> {
    format: Format,
    writer: W,
    service_name: Option<String>,
    environment: Option<String>,
    redaction: Redaction,
    span_fields: bool,
}

impl LogLayer {
    /// A JSON layer writing to standard output.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for the options.
    pub fn builder() -> LogLayerBuilder {
        LogLayerBuilder {
            format: Format::Json,
            writer: io::stdout,
            service_name: None,
            environment: None,
            redaction: Redaction::default(),
            span_fields: true,
        }
    }
}

impl Default for LogLayer {
    fn default() -> Self {
        Self::new()
    }
}

/// Options of a [`LogLayer`].
#[derive(Debug)]
#[must_use = "call build() to get the layer"]
pub struct LogLayerBuilder<W = fn() -> io::Stdout> {
    format: Format,
    writer: W,
    service_name: Option<String>,
    environment: Option<String>,
    redaction: Redaction,
    span_fields: bool,
}

impl<W> LogLayerBuilder<W> {
    /// The line format (default [`Format::Json`]).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Where lines go: any [`MakeWriter`] (`std::io::stderr`, a file behind a
    /// mutex, a [`NonBlocking`](crate::NonBlocking) writer, a test buffer).
    /// Each line is written with one `write_all`.
    pub fn writer<W2>(self, writer: W2) -> LogLayerBuilder<W2>
    where
        W2: for<'a> MakeWriter<'a> + 'static,
    {
        LogLayerBuilder {
            format: self.format,
            writer,
            service_name: self.service_name,
            environment: self.environment,
            redaction: self.redaction,
            span_fields: self.span_fields,
        }
    }

    /// `service.name` on every line.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// `deployment.environment.name` on every line.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Field names whose values become `"[REDACTED]"`: a field is redacted
    /// when its name contains one of these, case-insensitively. Replaces
    /// [`DEFAULT_REDACTED_FIELDS`](crate::DEFAULT_REDACTED_FIELDS); an empty
    /// list redacts nothing.
    pub fn redact_fields<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.redaction = Redaction::new(names);
        self
    }

    /// Whether the fields of the current span and its parents are written
    /// (default true).
    pub fn span_fields(mut self, on: bool) -> Self {
        self.span_fields = on;
        self
    }

    /// The layer.
    pub fn build(self) -> LogLayer<W> {
        LogLayer {
            format: self.format,
            writer: self.writer,
            service_name: self.service_name,
            environment: self.environment,
            redaction: self.redaction,
            span_fields: self.span_fields,
        }
    }
}

/// Per-thread buffers: the line, and the message while fields are visited.
struct Buffers {
    line: String,
    message: String,
    fields: String,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers {
        line: String::with_capacity(512),
        message: String::with_capacity(128),
        fields: String::with_capacity(256),
    });
}

fn level_str(level: &Level, lower: bool) -> &'static str {
    match (*level, lower) {
        (Level::ERROR, false) => "ERROR",
        (Level::WARN, false) => "WARN",
        (Level::INFO, false) => "INFO",
        (Level::DEBUG, false) => "DEBUG",
        (Level::TRACE, false) => "TRACE",
        (Level::ERROR, true) => "error",
        (Level::WARN, true) => "warn",
        (Level::INFO, true) => "info",
        (Level::DEBUG, true) => "debug",
        (Level::TRACE, true) => "trace",
    }
}

/// The current OpenTelemetry span's ids, when it has valid ones.
fn current_ids() -> Option<(
    opentelemetry::trace::TraceId,
    opentelemetry::trace::SpanId,
    u8,
)> {
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
    })
}

impl<W> LogLayer<W> {
    fn render<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, buffers: &mut Buffers)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        use std::fmt::Write as _;
        let Buffers {
            line,
            message,
            fields,
        } = buffers;
        line.clear();
        message.clear();
        fields.clear();
        let format = self.format;
        let meta = event.metadata();
        let now = SystemTime::now();
        let ids = current_ids();

        // The fixed keys.
        match format {
            Format::Json => {
                line.push_str("{\"timestamp\":\"");
                timestamp(line, now);
                line.push_str("\",\"level\":\"");
                line.push_str(level_str(meta.level(), false));
                line.push('"');
            }
            Format::Ecs => {
                line.push_str("{\"@timestamp\":\"");
                timestamp(line, now);
                line.push_str("\",\"log.level\":\"");
                line.push_str(level_str(meta.level(), true));
                line.push('"');
            }
            Format::Logfmt => {
                line.push_str("timestamp=");
                timestamp(line, now);
                line.push_str(" level=");
                line.push_str(level_str(meta.level(), true));
            }
        }
        // Fields go after the fixed keys; the message is lifted out first.
        let mut seen = Seen::new();
        event.record(&mut EventVisitor {
            out: fields,
            message,
            format,
            redaction: &self.redaction,
            seen: &mut seen,
        });
        if self.span_fields
            && let Some(scope) = ctx.event_scope(event)
        {
            for span in scope {
                let extensions = span.extensions();
                if let Some(stored) = extensions.get::<SpanFields>() {
                    for (key, value) in &stored.fields {
                        if seen.insert(key) {
                            write_key(fields, format, key);
                            write_stored(fields, format, value);
                        }
                    }
                }
            }
        }

        let (message_key, target_key) = match format {
            Format::Json => ("message", "target"),
            Format::Ecs => ("message", "log.logger"),
            Format::Logfmt => ("msg", "target"),
        };
        write_key(line, format, message_key);
        write_message(line, format, message);
        write_key(line, format, target_key);
        write_str_value(line, format, meta.target());
        if let Some((trace_id, span_id, flags)) = ids {
            let (t, s) = match format {
                Format::Ecs => ("trace.id", "span.id"),
                _ => ("trace_id", "span_id"),
            };
            write_key(line, format, t);
            let quote = format != Format::Logfmt;
            if quote {
                line.push('"');
            }
            let _ = write!(line, "{trace_id}");
            if quote {
                line.push('"');
            }
            write_key(line, format, s);
            if quote {
                line.push('"');
            }
            let _ = write!(line, "{span_id}");
            if quote {
                line.push('"');
            }
            if format != Format::Ecs {
                write_key(line, format, "trace_flags");
                let _ = if quote {
                    write!(line, "\"{flags:02x}\"")
                } else {
                    write!(line, "{flags:02x}")
                };
            }
        }
        if let Some(name) = &self.service_name {
            write_key(line, format, "service.name");
            write_str_value(line, format, name);
        }
        if let Some(env) = &self.environment {
            let key = match format {
                Format::Ecs => "service.environment",
                _ => "deployment.environment.name",
            };
            write_key(line, format, key);
            write_str_value(line, format, env);
        }
        if format == Format::Ecs {
            line.push_str(",\"ecs.version\":\"8.11.0\"");
        }
        line.push_str(fields);
        if format != Format::Logfmt {
            line.push('}');
        }
        line.push('\n');
    }
}

impl<S, W> tracing_subscriber::Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        if !self.span_fields {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut SpanRecorder {
            fields: &mut fields,
            redaction: &self.redaction,
        });
        span.extensions_mut().insert(fields);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if !self.span_fields {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(&mut SpanRecorder {
                fields,
                redaction: &self.redaction,
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let write = |buffers: &mut Buffers| {
            self.render(event, &ctx, buffers);
            let mut writer = self.writer.make_writer_for(event.metadata());
            let _ = writer.write_all(buffers.line.as_bytes());
        };
        // Re-entrant events (a writer that logs) get fresh buffers.
        let reused = BUFFERS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffers) => {
                write(&mut buffers);
                true
            }
            Err(_) => false,
        });
        if !reused {
            write(&mut Buffers {
                line: String::new(),
                message: String::new(),
                fields: String::new(),
            });
        }
    }
}
