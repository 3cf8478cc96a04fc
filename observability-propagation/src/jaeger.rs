//! Jaeger (`uber-trace-id`), what older Jaeger clients send:
//! `{trace-id}:{span-id}:{parent-span-id}:{flags}`.
//!
//! - `trace-id`: 1 to 32 lowercase hex digits, left-padded with zeros (a
//!   64-bit id is 16 digits or fewer); all zeros is invalid.
//! - `span-id`: 1 to 16 digits, padded the same way; all zeros is invalid.
//! - `parent-span-id`: deprecated; read as hex and otherwise ignored
//!   (written as `0`).
//! - `flags`: one byte in hex; bit 1 is sampled, bit 2 debug (which implies
//!   sampled).
//!
//! The colons may arrive URL-encoded (`%3A`). Baggage travels as one
//! `uberctx-{key}: {value}` header per entry, the value percent-encoded.

use std::fmt::Write as _;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};

use crate::{ids, percent_decode, prefixed_baggage};

const HEADER: &str = "uber-trace-id";
const BAGGAGE_PREFIX: &str = "uberctx-";

/// The Jaeger propagator (`OTEL_PROPAGATORS=jaeger`).
#[derive(Clone, Debug)]
pub struct JaegerPropagator {
    fields: [String; 1],
}

impl Default for JaegerPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl JaegerPropagator {
    /// A new propagator.
    pub fn new() -> Self {
        Self {
            fields: [HEADER.to_owned()],
        }
    }
}

/// The context of an `uber-trace-id` value.
fn parse(value: &str) -> Option<SpanContext> {
    if value.len() > 128 {
        return None;
    }
    let decoded;
    let value = if value.contains('%') {
        decoded = value.replace("%3A", ":").replace("%3a", ":");
        decoded.as_str()
    } else {
        value
    };
    let mut parts = value.trim().split(':');
    let trace_id = ids::trace_id(parts.next()?, 1..=32)?;
    let span_id = ids::span_id(parts.next()?, 1..=16)?;
    ids::hex(parts.next()?, 1..=16)?;
    let flags = ids::hex(parts.next()?, 1..=2)?;
    if parts.next().is_some() {
        return None;
    }
    Some(ids::remote(trace_id, span_id, flags & 0x03 != 0))
}

impl TextMapPropagator for JaegerPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            let flags = if sc.is_sampled() { "01" } else { "00" };
            injector.set(
                HEADER,
                format!(
                    "{}:{}:0:{flags}",
                    ids::trace_hex(sc.trace_id()),
                    ids::span_hex(sc.span_id())
                ),
            );
        }
        prefixed_baggage::inject(cx, injector, BAGGAGE_PREFIX, |value| {
            let mut encoded = String::with_capacity(value.len());
            for b in value.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    encoded.push(char::from(b));
                } else {
                    let _ = write!(encoded, "%{b:02X}");
                }
            }
            encoded
        });
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let cx = match extractor.get(HEADER).and_then(parse) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        };
        prefixed_baggage::extract(cx, extractor, BAGGAGE_PREFIX, percent_decode)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::baggage::BaggageExt;
    use std::collections::HashMap;

    fn extract(headers: &[(&str, &str)]) -> Context {
        let map: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        JaegerPropagator::new().extract(&map)
    }

    #[test]
    fn reads_the_header_as_jaeger_writes_it() {
        let cx = extract(&[(
            "uber-trace-id",
            "6e0c63257de34c92bf9efcd03927272e:2d0b5b4e1c4d9e0a:0:1",
        )]);
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "6e0c63257de34c92bf9efcd03927272e"
        );
        assert_eq!(sc.span_id().to_string(), "2d0b5b4e1c4d9e0a");
        assert!(sc.is_sampled());
        // Short ids are left-padded; debug implies sampled; encoded colons.
        let cx = extract(&[("uber-trace-id", "abc%3Adef%3A0%3A2")]);
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "00000000000000000000000000000abc"
        );
        assert_eq!(sc.span_id().to_string(), "0000000000000def");
        assert!(sc.is_sampled());
        for bad in [
            "",
            "1:2:3",
            "1:2:0:1:5",
            "0:2:0:1",
            "1:0:0:1",
            "g:2:0:1",
            "ABC:2:0:1",
            &format!("{}:2:0:1", "1".repeat(33)),
            &format!("1:{}:0:1", "1".repeat(17)),
            "1:2:0:100",
        ] {
            assert!(
                !extract(&[("uber-trace-id", bad)])
                    .span()
                    .span_context()
                    .is_valid(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn baggage_travels_in_uberctx_headers() {
        let cx = extract(&[("uberctx-user", "alice%20smith"), ("other", "x")]);
        assert_eq!(
            cx.baggage().get("user").map(|v| v.as_str()),
            Some("alice smith")
        );
        let mut out: HashMap<String, String> = HashMap::new();
        JaegerPropagator::new().inject_context(&cx, &mut out);
        assert_eq!(
            out.get("uberctx-user").map(String::as_str),
            Some("alice%20smith")
        );
    }
}
