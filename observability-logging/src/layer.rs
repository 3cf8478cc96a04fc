use std::cell::{Cell, RefCell};
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
use crate::format::{Format, Keys, Syntax};
use crate::redact::Redaction;
use crate::write::timestamp;

/// A `tracing-subscriber` layer that writes one line per event, carrying the
/// ids of the current OpenTelemetry span. See the [crate docs](crate).
#[derive(Debug)]
pub struct LogLayer<W = fn() -> io::Stdout> {
    /// How keys and values are written (chosen once, from the format).
    syntax: Syntax,
    /// The names of the fixed keys (chosen once, from the format).
    keys: &'static Keys,
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
            syntax: self.format.syntax(),
            keys: self.format.keys(),
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

thread_local! {
    /// Whether this thread has read OpenTelemetry's current context before
    /// first using its buffers (see `on_event`).
    static CONTEXT_FIRST: Cell<bool> = const { Cell::new(false) };
}

/// The ids of a line.
type Ids = (
    opentelemetry::trace::TraceId,
    opentelemetry::trace::SpanId,
    u8,
);

/// The current OpenTelemetry span's ids, when it has valid ones.
fn current_ids() -> Option<Ids> {
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
    })
}

impl<W> LogLayer<W> {
    /// One event as one line: the fixed keys (timestamp, level, message,
    /// target, ids, resource), then the event's fields, then its spans'.
    fn render<S>(
        &self,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
        ids: Option<Ids>,
        buffers: &mut Buffers,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Buffers {
            line,
            message,
            fields,
        } = buffers;
        line.clear();
        message.clear();
        fields.clear();
        let (syntax, keys) = (self.syntax, self.keys);
        let meta = event.metadata();
        let now = SystemTime::now();

        // The fixed keys: the timestamp opens the line.
        match syntax {
            Syntax::Json => {
                line.push_str("{\"");
                line.push_str(keys.timestamp);
                line.push_str("\":\"");
                timestamp(line, now);
                line.push('"');
            }
            Syntax::Logfmt => {
                line.push_str(keys.timestamp);
                line.push('=');
                timestamp(line, now);
            }
        }
        write_key(line, syntax, keys.level);
        write_str_value(line, syntax, level_str(meta.level(), keys.lowercase_level));
        // Fields go after the fixed keys; the message is lifted out first.
        self.record_fields(event, ctx, message, fields);
        write_key(line, syntax, keys.message);
        write_message(line, syntax, message);
        write_key(line, syntax, keys.target);
        write_str_value(line, syntax, meta.target());
        if let Some(ids) = ids {
            write_ids(line, syntax, keys, ids);
        }
        self.write_resource(line);
        line.push_str(fields);
        if syntax == Syntax::Json {
            line.push('}');
        }
        line.push('\n');
    }

    /// The event's fields into `fields` (its message into `message`), then
    /// the stored fields of its spans, innermost first, each key once.
    fn record_fields<S>(
        &self,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
        message: &mut String,
        fields: &mut String,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut seen = Seen::new();
        event.record(&mut EventVisitor {
            out: fields,
            message,
            syntax: self.syntax,
            redaction: &self.redaction,
            seen: &mut seen,
        });
        if !self.span_fields {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            let extensions = span.extensions();
            if let Some(stored) = extensions.get::<SpanFields>() {
                for (key, value) in &stored.fields {
                    if seen.insert(key) {
                        write_key(fields, self.syntax, key);
                        write_stored(fields, self.syntax, value);
                    }
                }
            }
        }
    }

    /// `service.name`, the environment and the schema version, as the layer
    /// was configured.
    fn write_resource(&self, line: &mut String) {
        let (syntax, keys) = (self.syntax, self.keys);
        if let Some(name) = &self.service_name {
            write_key(line, syntax, "service.name");
            write_str_value(line, syntax, name);
        }
        if let Some(env) = &self.environment {
            write_key(line, syntax, keys.environment);
            write_str_value(line, syntax, env);
        }
        if let Some((key, version)) = keys.schema_version {
            write_key(line, syntax, key);
            write_str_value(line, syntax, version);
        }
    }
}

/// The trace id, span id and (when the keys name them) trace flags.
fn write_ids(
    line: &mut String,
    syntax: Syntax,
    keys: &Keys,
    (trace_id, span_id, flags): (
        opentelemetry::trace::TraceId,
        opentelemetry::trace::SpanId,
        u8,
    ),
) {
    use std::fmt::Write as _;
    // Hex ids never need escaping: written straight, quoted in JSON.
    let quote = if syntax == Syntax::Json { "\"" } else { "" };
    write_key(line, syntax, keys.trace_id);
    let _ = write!(line, "{quote}{trace_id}{quote}");
    write_key(line, syntax, keys.span_id);
    let _ = write!(line, "{quote}{span_id}{quote}");
    if let Some(key) = keys.trace_flags {
        write_key(line, syntax, key);
        let _ = write!(line, "{quote}{flags:02x}{quote}");
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
        let write = |ids, buffers: &mut Buffers| {
            self.render(event, &ctx, ids, buffers);
            let mut writer = self.writer.make_writer_for(event.metadata());
            let _ = writer.write_all(buffers.line.as_bytes());
        };
        // An event logged from a thread-local's destructor, while the
        // thread is torn down, may find thread-locals gone, and a panic
        // there aborts the process. Thread-locals go in the reverse order
        // of their first use, and OpenTelemetry's current context is read
        // before this layer's buffers are first used: while the buffers
        // are there, so is the context; once they are gone, the line goes
        // out without ids rather than reading it.
        if !CONTEXT_FIRST.get() {
            CONTEXT_FIRST.set(true);
            let _ = current_ids();
        }
        // Re-entrant events (a writer that logs) get fresh buffers, and so
        // do events logged once the buffers are gone (without ids).
        let fresh = BUFFERS.try_with(|cell| {
            let ids = current_ids();
            match cell.try_borrow_mut() {
                Ok(mut buffers) => {
                    write(ids, &mut buffers);
                    None
                }
                Err(_) => Some(ids),
            }
        });
        let ids = match fresh {
            Ok(None) => return,
            Ok(Some(ids)) => ids,
            Err(_) => None,
        };
        write(
            ids,
            &mut Buffers {
                line: String::new(),
                message: String::new(),
                fields: String::new(),
            },
        );
    }
}
