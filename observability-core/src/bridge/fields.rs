//! `tracing` fields as OpenTelemetry attributes: the span's (with the
//! `otel.*` fields that set its name, kind and status) and an event's.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use opentelemetry::trace::{Event, SpanKind, Status};
use opentelemetry::{Key, KeyValue, Value};
use tracing::Metadata;
use tracing::field::{Field, Visit};

/// A span's fields.
pub(super) struct SpanFields {
    pub(super) attributes: Vec<KeyValue>,
    pub(super) name: Option<Cow<'static, str>>,
    pub(super) kind: Option<SpanKind>,
    pub(super) status: Status,
    /// `otel.status_description`, applied to an error status.
    description: Option<String>,
}

impl SpanFields {
    /// Room for `fields` fields and `extra` attributes more.
    pub(super) fn new(fields: usize, extra: usize) -> Self {
        Self {
            attributes: Vec::with_capacity(fields + extra),
            name: None,
            kind: None,
            status: Status::Unset,
            description: None,
        }
    }

    /// The `otel.*` fields; `false` for any other.
    fn special(&mut self, name: &str, value: &str) -> bool {
        match name {
            "otel.name" => self.name = Some(Cow::Owned(value.to_owned())),
            "otel.kind" => self.kind = kind(value),
            "otel.status_code" => {
                self.status = match value.to_ascii_lowercase().as_str() {
                    "ok" => Status::Ok,
                    "error" => Status::error(self.description.clone().unwrap_or_default()),
                    _ => Status::Unset,
                }
            }
            "otel.status_description" | "otel.status_message" => {
                if let Status::Error { description } = &mut self.status {
                    *description = Cow::Owned(value.to_owned());
                }
                self.description = Some(value.to_owned());
            }
            _ => return false,
        }
        true
    }
}

fn kind(value: &str) -> Option<SpanKind> {
    Some(match value.to_ascii_lowercase().as_str() {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        "internal" => SpanKind::Internal,
        _ => return None,
    })
}

/// A field's key: its name, which is `'static`.
fn key(field: &Field) -> Key {
    Key::from_static_str(field.name())
}

/// An unsigned value as an integer attribute, or as text past `i64`.
fn unsigned(value: u64) -> Value {
    i64::try_from(value).map_or_else(|_| Value::from(value.to_string()), Value::from)
}

/// The typed values, the same for spans and events: attributes of their
/// type (an unsigned value past `i64` as text).
macro_rules! typed_fields {
    () => {
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.attributes.push(KeyValue::new(key(field), value));
        }

        fn record_u64(&mut self, field: &Field, value: u64) {
            self.attributes
                .push(KeyValue::new(key(field), unsigned(value)));
        }

        fn record_f64(&mut self, field: &Field, value: f64) {
            self.attributes.push(KeyValue::new(key(field), value));
        }

        fn record_bool(&mut self, field: &Field, value: bool) {
            self.attributes.push(KeyValue::new(key(field), value));
        }
    };
}

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.special(field.name(), value) {
            self.attributes
                .push(KeyValue::new(key(field), value.to_owned()));
        }
    }

    typed_fields!();

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let text = value.to_string();
        // Semantic conventions (exceptions): the error's message.
        self.attributes
            .push(KeyValue::new("exception.message", text.clone()));
        self.attributes.push(KeyValue::new(key(field), text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if !self.special(field.name(), &text) {
            self.attributes.push(KeyValue::new(key(field), text));
        }
    }
}

/// An event's fields: `message` names it, the rest are attributes, after
/// its level and target. An `error` field before any message (what
/// `#[instrument(err)]` and `error!(error = %e)` write) makes it an
/// `exception` event (semantic conventions for exceptions) whose message is
/// also the span's error status.
pub(super) struct EventFields {
    name: Option<Cow<'static, str>>,
    attributes: Vec<KeyValue>,
    error: Option<String>,
}

impl EventFields {
    pub(super) fn new(meta: &'static Metadata<'static>) -> Self {
        let mut attributes = Vec::with_capacity(meta.fields().len() + 2);
        attributes.push(KeyValue::new("level", meta.level().as_str()));
        attributes.push(KeyValue::new("target", meta.target()));
        Self {
            name: None,
            attributes,
            error: None,
        }
    }

    /// The event, and the error it reports (the span's status).
    pub(super) fn into_event(self, meta: &'static Metadata<'static>) -> (Event, Option<String>) {
        let name = match (&self.error, self.name) {
            (Some(_), None) => Cow::Borrowed("exception"),
            (_, Some(name)) => name,
            (None, None) => Cow::Borrowed(meta.name()),
        };
        let event = Event::new(name, SystemTime::now(), self.attributes, 0);
        (event, self.error)
    }

    /// An `error` field: the exception, when no message came first.
    fn error(&mut self, field: &Field, text: String) -> bool {
        if field.name() != "error" || self.name.is_some() || self.error.is_some() {
            return false;
        }
        self.attributes
            .push(KeyValue::new("exception.message", text.clone()));
        self.error = Some(text);
        true
    }
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.name = Some(Cow::Owned(value.to_owned()));
        } else if !self.error(field, value.to_owned()) {
            self.attributes
                .push(KeyValue::new(key(field), value.to_owned()));
        }
    }

    typed_fields!();

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let text = value.to_string();
        if !self.error(field, text.clone()) {
            self.attributes.push(KeyValue::new(key(field), text));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.name = Some(Cow::Owned(text));
        } else if !self.error(field, text.clone()) {
            self.attributes.push(KeyValue::new(key(field), text));
        }
    }
}
