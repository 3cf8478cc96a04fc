//! Field values: the visitor that writes an event's fields into the line,
//! and the values kept for spans (written into every event inside them).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};

use crate::format::Syntax;
use crate::redact::Redaction;
use crate::write::{
    JsonEscaper, json_escape, json_f64, json_str, logfmt_value, push_i64, push_u64,
};

pub(crate) const REDACTED: &str = "[REDACTED]";

/// A span field's value, kept from span creation.
#[derive(Clone, Debug)]
pub(crate) enum Stored {
    Str(String),
    I64(i64),
    U64(u64),
    I128(i128),
    F64(f64),
    Bool(bool),
}

/// The fields of one span, in the span's extensions.
#[derive(Debug, Default)]
pub(crate) struct SpanFields {
    pub(crate) fields: Vec<(&'static str, Stored)>,
}

impl SpanFields {
    fn set(&mut self, key: &'static str, value: Stored) {
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }
}

/// Renders an error with its sources: `top: cause: root cause`, without
/// repeating a source its parent's message already ends with.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static), out: &mut dyn fmt::Write) {
    let mut last = error.to_string();
    let _ = out.write_str(&last);
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !last.ends_with(&text) {
            let _ = out.write_str(": ");
            let _ = out.write_str(&text);
        }
        last = text;
        source = cause.source();
    }
}

/// Records span fields into [`SpanFields`].
pub(crate) struct SpanRecorder<'a> {
    pub(crate) fields: &'a mut SpanFields,
    pub(crate) redaction: &'a Redaction,
}

impl SpanRecorder<'_> {
    fn put(&mut self, field: &Field, value: Stored) {
        let value = if self.redaction.matches(field.name()) {
            Stored::Str(REDACTED.to_owned())
        } else {
            value
        };
        self.fields.set(field.name(), value);
    }
}

impl Visit for SpanRecorder<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Stored::Str(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Stored::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Stored::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Stored::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.put(field, Stored::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.put(field, Stored::Str(value.to_string()));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Stored::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Stored::Bool(value));
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.put(
            field,
            Stored::Str(String::from_utf8_lossy(value).into_owned()),
        );
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = String::new();
        error_chain(value, &mut text);
        self.put(field, Stored::Str(text));
    }
}

/// Keys already written on this line: event fields win over span fields,
/// inner spans over outer ones.
pub(crate) struct Seen {
    keys: [&'static str; 32],
    len: usize,
}

impl Seen {
    pub(crate) fn new() -> Self {
        Self {
            keys: [""; 32],
            len: 0,
        }
    }

    /// Marks `key` seen; false if it was already.
    pub(crate) fn insert(&mut self, key: &'static str) -> bool {
        if self.keys[..self.len].contains(&key) {
            return false;
        }
        if self.len < self.keys.len() {
            self.keys[self.len] = key;
            self.len += 1;
        }
        true
    }
}

/// Writes one `key=value` (or `"key":value`) separator and key.
pub(crate) fn write_key(out: &mut String, syntax: Syntax, key: &str) {
    match syntax {
        Syntax::Json => {
            out.push(',');
            json_str(out, key);
            out.push(':');
        }
        Syntax::Logfmt => {
            out.push(' ');
            out.push_str(key);
            out.push('=');
        }
    }
}

pub(crate) fn write_str_value(out: &mut String, syntax: Syntax, value: &str) {
    match syntax {
        Syntax::Json => json_str(out, value),
        Syntax::Logfmt => logfmt_value(out, value),
    }
}

pub(crate) fn write_stored(out: &mut String, syntax: Syntax, value: &Stored) {
    match value {
        Stored::Str(s) => write_str_value(out, syntax, s),
        Stored::I64(v) => push_i64(out, *v),
        Stored::U64(v) => push_u64(out, *v),
        Stored::I128(v) => {
            let _ = write!(out, "{v}");
        }
        Stored::F64(v) => match syntax {
            Syntax::Logfmt => {
                let _ = write!(out, "{v}");
            }
            _ => json_f64(out, *v),
        },
        Stored::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
    }
}

/// Writes an event's fields; the message goes to `message`.
pub(crate) struct EventVisitor<'a> {
    pub(crate) out: &'a mut String,
    pub(crate) message: &'a mut String,
    pub(crate) syntax: Syntax,
    pub(crate) redaction: &'a Redaction,
    pub(crate) seen: &'a mut Seen,
}

impl EventVisitor<'_> {
    /// Writes the key; returns false when the value must not be written
    /// (a repeated key) and true otherwise. Redacted fields get their
    /// placeholder here and also return false.
    fn key(&mut self, field: &Field) -> bool {
        if !self.seen.insert(field.name()) {
            return false;
        }
        write_key(self.out, self.syntax, field.name());
        if self.redaction.matches(field.name()) {
            write_str_value(self.out, self.syntax, REDACTED);
            return false;
        }
        true
    }
}

impl Visit for EventVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
        if !self.key(field) {
            return;
        }
        match self.syntax {
            Syntax::Json => {
                self.out.push('"');
                let _ = write!(JsonEscaper(self.out), "{value:?}");
                self.out.push('"');
            }
            Syntax::Logfmt => {
                let text = format!("{value:?}");
                logfmt_value(self.out, &text);
            }
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
            return;
        }
        if self.key(field) {
            write_str_value(self.out, self.syntax, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            push_i64(self.out, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            push_u64(self.out, value);
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        if self.key(field) {
            let _ = write!(self.out, "{value}");
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if self.key(field) {
            let _ = write!(self.out, "{value}");
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.key(field) {
            write_stored(self.out, self.syntax, &Stored::F64(value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.out.push_str(if value { "true" } else { "false" });
        }
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        if self.key(field) {
            write_str_value(self.out, self.syntax, &String::from_utf8_lossy(value));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if !self.key(field) {
            return;
        }
        match self.syntax {
            Syntax::Json => {
                self.out.push('"');
                error_chain(value, &mut JsonEscaper(self.out));
                self.out.push('"');
            }
            Syntax::Logfmt => {
                let mut text = String::new();
                error_chain(value, &mut text);
                logfmt_value(self.out, &text);
            }
        }
    }
}

/// Writes `message` for the line's format (already collected raw).
pub(crate) fn write_message(out: &mut String, syntax: Syntax, message: &str) {
    match syntax {
        Syntax::Json => {
            out.push('"');
            json_escape(out, message);
            out.push('"');
        }
        Syntax::Logfmt => logfmt_value(out, message),
    }
}
