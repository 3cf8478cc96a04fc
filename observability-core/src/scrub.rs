//! Scrubbing: before export, attributes are deleted, hashed or redacted by
//! key, and sensitive patterns in string values are replaced, so secrets
//! never leave the process. It runs on the export thread: the request path
//! pays nothing for it.

use std::fmt::Write as _;

use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use regex::Regex;
use sha2::{Digest, Sha256};

use crate::env::{self, Env, Warnings};

/// What happens to an attribute with a given key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScrubAction {
    /// The attribute is removed.
    Delete,
    /// String values become their SHA-256, in lowercase hex (joins still
    /// work, the value is not readable).
    Hash,
    /// The value becomes `"[REDACTED]"`.
    Redact,
}

/// Keys deleted unless [`Builder::scrub_defaults`](crate::Builder::scrub_defaults)
/// turns the defaults off.
pub const DEFAULT_DELETED_KEYS: &[&str] = &[
    "http.request.header.authorization",
    "http.request.header.cookie",
    "http.request.header.proxy-authorization",
    "http.response.header.set-cookie",
];

/// A built-in pattern for [`Builder::scrub_pattern`](crate::Builder::scrub_pattern)
/// and `OBSERVABILITY_SCRUB_PATTERNS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScrubPattern {
    /// E-mail addresses become `[EMAIL]`.
    Email,
    /// Payment card numbers (13 to 19 digits, spaces or dashes allowed,
    /// passing the Luhn check) become `[CARD]`.
    CardNumber,
}

#[derive(Debug, Clone)]
struct Replacement {
    regex: Regex,
    with: String,
    luhn: bool,
}

/// The resolved scrubbing rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrubber {
    keys: Vec<(String, ScrubAction)>,
    /// The lengths of `keys` as a mask of [`length_bit`]s: most attributes
    /// are let through on their key's length alone.
    key_lengths: u64,
    replacements: Vec<Replacement>,
}

const REDACTED: &str = "[REDACTED]";

/// A key length's bit in a mask of lengths (bit 63 for any of 63 bytes or
/// more).
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

impl ScrubPattern {
    fn replacement(self) -> Option<Replacement> {
        let (pattern, with, luhn) = match self {
            Self::Email => (
                r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
                "[EMAIL]",
                false,
            ),
            Self::CardNumber => (r"\b\d(?:[ -]?\d){12,18}\b", "[CARD]", true),
        };
        Some(Replacement {
            regex: Regex::new(pattern).ok()?,
            with: with.to_owned(),
            luhn,
        })
    }
}

/// The Luhn check over the digits of `s`.
fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d = d * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Scrubbing settings given in code.
#[derive(Clone, Debug)]
pub(crate) struct ScrubSettings {
    pub(crate) keys: Vec<(String, ScrubAction)>,
    pub(crate) patterns: Vec<ScrubPattern>,
    pub(crate) custom: Vec<(String, String)>,
    pub(crate) defaults: bool,
}

impl Default for ScrubSettings {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            patterns: Vec::new(),
            custom: Vec::new(),
            defaults: true,
        }
    }
}

impl Scrubber {
    /// Code settings, then `OBSERVABILITY_SCRUB_*` (added to them). A bad
    /// pattern given in code is an error; in the environment, a warning.
    pub(crate) fn resolve(
        code: &ScrubSettings,
        env: &Env,
        w: &mut Warnings,
    ) -> Result<Self, crate::Error> {
        let mut scrubber = Self::default();
        if code.defaults {
            for key in DEFAULT_DELETED_KEYS {
                scrubber.keys.push(((*key).to_owned(), ScrubAction::Delete));
            }
        }
        for (name, action) in [
            (env::OBSERVABILITY_SCRUB_DELETE, ScrubAction::Delete),
            (env::OBSERVABILITY_SCRUB_HASH, ScrubAction::Hash),
            (env::OBSERVABILITY_SCRUB_REDACT, ScrubAction::Redact),
        ] {
            if let Some(list) = env.get(name) {
                for key in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                    scrubber.set(key, action);
                }
            }
        }
        for (key, action) in &code.keys {
            scrubber.set(key, *action);
        }
        scrubber.key_lengths = scrubber
            .keys
            .iter()
            .fold(0, |mask, (k, _)| mask | length_bit(k.len()));
        let mut patterns = code.patterns.clone();
        if let Some(list) = env.get(env::OBSERVABILITY_SCRUB_PATTERNS) {
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match name.to_ascii_lowercase().as_str() {
                    "email" => patterns.push(ScrubPattern::Email),
                    "card" | "card_number" => patterns.push(ScrubPattern::CardNumber),
                    _ => w.push(format!(
                        "{}: `{name}` is not a known pattern (email, card); ignoring it",
                        env::OBSERVABILITY_SCRUB_PATTERNS
                    )),
                }
            }
        }
        patterns.dedup();
        scrubber
            .replacements
            .extend(patterns.into_iter().filter_map(ScrubPattern::replacement));
        for (pattern, with) in &code.custom {
            let regex = Regex::new(pattern)
                .map_err(|e| crate::Error::config("scrub_regex", format!("`{pattern}`: {e}")))?;
            scrubber.replacements.push(Replacement {
                regex,
                with: with.clone(),
                luhn: false,
            });
        }
        Ok(scrubber)
    }

    fn set(&mut self, key: &str, action: ScrubAction) {
        self.keys.retain(|(k, _)| k != key);
        self.keys.push((key.to_owned(), action));
    }

    /// Whether it may change an attribute an HTTP server span's request
    /// gives ([`HttpServerRequest`](observability_propagation::starter::HttpServerRequest)):
    /// then those must be in the span's list before it scrubs.
    pub(crate) fn reads_request_attributes(&self) -> bool {
        !self.replacements.is_empty()
            || self.keys.iter().any(|(key, _)| {
                observability_propagation::starter::HttpServerRequest::KEYS.contains(&key.as_str())
            })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.replacements.is_empty()
    }

    /// Scrubs a span's attributes, and its events' and links'.
    pub(crate) fn scrub(&self, span: &mut SpanData) {
        // A server span's list is often empty: its request's attributes and
        // status code are kept apart (see `Exported`).
        if !span.attributes.is_empty() {
            self.scrub_attributes(&mut span.attributes);
        }
        for event in span.events.events.iter_mut() {
            self.scrub_attributes(&mut event.attributes);
        }
        for link in span.links.links.iter_mut() {
            self.scrub_attributes(&mut link.attributes);
        }
    }

    fn scrub_attributes(&self, attributes: &mut Vec<KeyValue>) {
        let lengths = self.key_lengths;
        // Most spans carry no configured key: one tight pass over the key
        // lengths settles that before anything is rewritten.
        if lengths != 0
            && attributes
                .iter()
                .any(|kv| lengths & length_bit(kv.key.as_str().len()) != 0)
        {
            attributes.retain_mut(|kv| {
                if lengths & length_bit(kv.key.as_str().len()) == 0 {
                    return true;
                }
                match self
                    .keys
                    .iter()
                    .find(|(k, _)| k == kv.key.as_str())
                    .map(|(_, a)| *a)
                {
                    Some(ScrubAction::Delete) => return false,
                    Some(ScrubAction::Hash) => kv.value = hash_value(&kv.value),
                    Some(ScrubAction::Redact) => kv.value = Value::from(REDACTED),
                    None => {}
                }
                true
            });
        }
        if !self.replacements.is_empty() {
            for kv in attributes.iter_mut() {
                self.replace_in(&mut kv.value);
            }
        }
    }

    fn replace_text(&self, text: &str) -> Option<String> {
        let mut current: Option<String> = None;
        for r in &self.replacements {
            let source = current.as_deref().unwrap_or(text);
            if !r.regex.is_match(source) {
                continue;
            }
            let replaced = r.regex.replace_all(source, |caps: &regex::Captures<'_>| {
                let found = caps.get(0).map_or("", |m| m.as_str());
                if r.luhn && !luhn(found) {
                    found.to_owned()
                } else {
                    r.with.clone()
                }
            });
            current = Some(replaced.into_owned());
        }
        current.filter(|c| c != text)
    }

    fn replace_in(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Some(new) = self.replace_text(s.as_str()) {
                    *value = Value::from(new);
                }
            }
            Value::Array(Array::String(items)) => {
                for item in items.iter_mut() {
                    if let Some(new) = self.replace_text(item.as_str()) {
                        *item = StringValue::from(new);
                    }
                }
            }
            _ => {}
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn hash_value(value: &Value) -> Value {
    match value {
        Value::Array(Array::String(items)) => Value::Array(Array::String(
            items
                .iter()
                .map(|s| StringValue::from(sha256_hex(s.as_str().as_bytes())))
                .collect(),
        )),
        other => Value::from(sha256_hex(other.as_str().as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::env_of;

    fn scrubber(code: ScrubSettings, vars: &[(&str, &str)]) -> Scrubber {
        let mut w = Warnings::default();
        Scrubber::resolve(&code, &env_of(vars), &mut w).unwrap()
    }

    #[test]
    fn reads_the_request_attributes_when_it_names_one_or_has_patterns() {
        let defaults = scrubber(ScrubSettings::default(), &[]);
        assert!(
            !defaults.reads_request_attributes(),
            "the defaults name headers only"
        );
        let client = scrubber(
            ScrubSettings::default(),
            &[(env::OBSERVABILITY_SCRUB_HASH, "client.address")],
        );
        assert!(client.reads_request_attributes());
        let patterns = scrubber(
            ScrubSettings::default(),
            &[(env::OBSERVABILITY_SCRUB_PATTERNS, "email")],
        );
        assert!(patterns.reads_request_attributes());
    }

    fn run(s: &Scrubber, attrs: Vec<KeyValue>) -> Vec<(String, String)> {
        let mut attrs = attrs;
        s.scrub_attributes(&mut attrs);
        attrs
            .into_iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect()
    }

    #[test]
    fn long_keys_are_matched_whole() {
        let long = "app.".repeat(20);
        let longer = "app.".repeat(25);
        let s = scrubber(
            ScrubSettings::default(),
            &[("OBSERVABILITY_SCRUB_REDACT", long.as_str())],
        );
        let out = run(
            &s,
            vec![
                KeyValue::new(long.clone(), "secret"),
                KeyValue::new(longer.clone(), "kept"),
                KeyValue::new("app.", "kept"),
            ],
        );
        assert_eq!(
            out,
            [
                (long, REDACTED.to_owned()),
                (longer, "kept".to_owned()),
                ("app.".to_owned(), "kept".to_owned()),
            ]
        );
    }

    #[test]
    fn defaults_drop_credentials_headers() {
        let s = scrubber(ScrubSettings::default(), &[]);
        let out = run(
            &s,
            vec![
                KeyValue::new("http.request.header.authorization", "Bearer x"),
                KeyValue::new("http.request.header.cookie", "sid=1"),
                KeyValue::new("db.statement", "SELECT 1"),
            ],
        );
        assert_eq!(out, [("db.statement".to_owned(), "SELECT 1".to_owned())]);
        let off = scrubber(
            ScrubSettings {
                defaults: false,
                ..Default::default()
            },
            &[],
        );
        assert!(off.is_empty());
    }

    #[test]
    fn delete_hash_redact_by_key() {
        let s = scrubber(
            ScrubSettings {
                keys: vec![("user.id".into(), ScrubAction::Redact)],
                ..Default::default()
            },
            &[
                ("OBSERVABILITY_SCRUB_HASH", "db.statement"),
                ("OBSERVABILITY_SCRUB_DELETE", "session.id"),
            ],
        );
        let out = run(
            &s,
            vec![
                KeyValue::new("db.statement", "SELECT * FROM users"),
                KeyValue::new("session.id", "abc"),
                KeyValue::new("user.id", 42),
            ],
        );
        assert_eq!(out[0].0, "db.statement");
        assert_eq!(out[0].1, sha256_hex(b"SELECT * FROM users"));
        assert_eq!(out[0].1.len(), 64);
        assert_eq!(out[1], ("user.id".to_owned(), "[REDACTED]".to_owned()));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn patterns_replace_emails_and_card_numbers() {
        let s = scrubber(
            ScrubSettings::default(),
            &[("OBSERVABILITY_SCRUB_PATTERNS", "email,card")],
        );
        let out = run(
            &s,
            vec![
                KeyValue::new(
                    "note",
                    "mail ann.lee+x@example.co.uk about card 4111 1111 1111 1111 now",
                ),
                KeyValue::new("order.id", "1234567890123"),
                KeyValue::new(
                    "ids",
                    Value::Array(Array::String(vec!["bob@example.com".into()])),
                ),
            ],
        );
        assert_eq!(out[0].1, "mail [EMAIL] about card [CARD] now");
        assert_eq!(
            out[1].1, "1234567890123",
            "a number failing the Luhn check is kept"
        );
        assert_eq!(out[2].1, r#"["[EMAIL]"]"#);
    }

    #[test]
    fn custom_regex_and_errors() {
        let s = scrubber(
            ScrubSettings {
                custom: vec![(r"tok_[a-z0-9]+".into(), "tok_***".into())],
                ..Default::default()
            },
            &[],
        );
        assert_eq!(
            run(&s, vec![KeyValue::new("x", "key tok_abc123")])[0].1,
            "key tok_***"
        );
        let mut w = Warnings::default();
        let err = Scrubber::resolve(
            &ScrubSettings {
                custom: vec![("(".into(), "x".into())],
                ..Default::default()
            },
            &env_of(&[]),
            &mut w,
        );
        assert!(err.is_err());
        Scrubber::resolve(
            &ScrubSettings::default(),
            &env_of(&[("OBSERVABILITY_SCRUB_PATTERNS", "ssn")]),
            &mut w,
        )
        .unwrap();
        assert_eq!(w.as_slice().len(), 1);
    }

    #[test]
    fn luhn_check() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("5500-0000-0000-0004"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn("123"));
    }
}
