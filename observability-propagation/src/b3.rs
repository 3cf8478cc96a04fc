//! B3 (openzipkin/b3-propagation): what Zipkin-instrumented services, Envoy
//! and Istio send.
//!
//! - Single header: `b3: {TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}`,
//!   the last two optional; `TraceId` 16 or 32 lowercase hex digits,
//!   `SpanId` and `ParentSpanId` 16, `SamplingState` `1`, `0` or `d` (debug,
//!   which implies sampled). A header that is only a sampling state (`0`,
//!   `1`, `d`) carries no context to continue and is ignored.
//! - Multiple headers: `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-ParentSpanId`,
//!   `X-B3-Sampled` (`1`/`0`; `true`/`false` as older tracers wrote it is
//!   accepted, never written), `X-B3-Flags: 1` (debug).
//!
//! Extraction reads the single header first, then the multiple ones;
//! injection writes the encoding the propagator was made for, with a 32-digit
//! trace id and the sampled state as `1` or `0`.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};

use crate::ids;

const B3: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const PARENT_SPAN_ID: &str = "x-b3-parentspanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";

/// Which headers a [`B3Propagator`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum B3Encoding {
    /// `b3: {trace}-{span}-{sampled}` (`OTEL_PROPAGATORS=b3`).
    SingleHeader,
    /// `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled` (`b3multi`).
    MultipleHeaders,
}

/// The B3 propagator. It reads both encodings and writes one.
#[derive(Clone, Debug)]
pub struct B3Propagator {
    encoding: B3Encoding,
    fields: [String; 1],
    multi_fields: [String; 3],
}

impl B3Propagator {
    /// A propagator that writes `encoding`.
    pub fn new(encoding: B3Encoding) -> Self {
        Self {
            encoding,
            fields: [B3.to_owned()],
            multi_fields: [TRACE_ID.to_owned(), SPAN_ID.to_owned(), SAMPLED.to_owned()],
        }
    }
}

/// The sampling state of B3: `Some(sampled)`, or `None` when invalid.
fn sampling(state: &str) -> Option<bool> {
    match state {
        "1" | "d" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// The context of a single `b3` header.
fn single(value: &str) -> Option<SpanContext> {
    let value = value.trim();
    let mut parts = value.split('-');
    let trace = parts.next()?;
    if trace.len() != 16 && trace.len() != 32 {
        return None;
    }
    let trace_id = ids::trace_id(trace, 16..=32)?;
    let span_id = ids::span_id(parts.next()?, 16..=16)?;
    let sampled = match parts.next() {
        None => false, // deferred: this participant's sampler decides
        Some(state) => sampling(state)?,
    };
    if let Some(parent) = parts.next() {
        ids::span_id(parent, 16..=16)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(ids::remote(trace_id, span_id, sampled))
}

/// The context of the multiple `X-B3-*` headers.
fn multiple(extractor: &dyn Extractor) -> Option<SpanContext> {
    let trace = extractor.get(TRACE_ID)?.trim();
    if trace.len() != 16 && trace.len() != 32 {
        return None;
    }
    let trace_id = ids::trace_id(trace, 16..=32)?;
    let span_id = ids::span_id(extractor.get(SPAN_ID)?.trim(), 16..=16)?;
    if let Some(parent) = extractor.get(PARENT_SPAN_ID) {
        ids::span_id(parent.trim(), 16..=16)?;
    }
    let debug = extractor.get(FLAGS).map(str::trim) == Some("1");
    let sampled = match extractor.get(SAMPLED).map(str::trim) {
        None => false,
        Some("1" | "true") => true,
        Some("0" | "false") => false,
        Some(_) => return None,
    };
    Some(ids::remote(trace_id, span_id, sampled || debug))
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let sampled = if sc.is_sampled() { "1" } else { "0" };
        match self.encoding {
            B3Encoding::SingleHeader => injector.set(
                B3,
                format!(
                    "{}-{}-{sampled}",
                    ids::trace_hex(sc.trace_id()),
                    ids::span_hex(sc.span_id())
                ),
            ),
            B3Encoding::MultipleHeaders => {
                injector.set(TRACE_ID, ids::trace_hex(sc.trace_id()));
                injector.set(SPAN_ID, ids::span_hex(sc.span_id()));
                injector.set(SAMPLED, sampled.to_owned());
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let found = match extractor.get(B3) {
            Some(value) => single(value),
            None => multiple(extractor),
        };
        match found {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        match self.encoding {
            B3Encoding::SingleHeader => FieldIter::new(&self.fields),
            B3Encoding::MultipleHeaders => FieldIter::new(&self.multi_fields),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(headers: &[(&str, &str)]) -> Option<SpanContext> {
        let map: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let cx = B3Propagator::new(B3Encoding::SingleHeader).extract(&map);
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    const TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const SPAN: &str = "e457b5a2e4d86bd1";

    #[test]
    fn single_header_forms() {
        let sc = extract(&[("b3", &format!("{TRACE}-{SPAN}-1-05e3ac9a4f6e3b90"))]).unwrap();
        assert_eq!(sc.trace_id().to_string(), TRACE);
        assert_eq!(sc.span_id().to_string(), SPAN);
        assert!(sc.is_sampled() && sc.is_remote());
        assert!(
            extract(&[("b3", &format!("{TRACE}-{SPAN}-d"))])
                .unwrap()
                .is_sampled()
        );
        assert!(
            !extract(&[("b3", &format!("{TRACE}-{SPAN}-0"))])
                .unwrap()
                .is_sampled()
        );
        assert!(
            !extract(&[("b3", &format!("{TRACE}-{SPAN}"))])
                .unwrap()
                .is_sampled()
        );
        let short = extract(&[("b3", &format!("64fe8b2a57d3eff7-{SPAN}-1"))]).unwrap();
        assert_eq!(
            short.trace_id().to_string(),
            "000000000000000064fe8b2a57d3eff7"
        );
        for bad in [
            "0",
            "1",
            "d",
            "",
            &format!("{TRACE}-{SPAN}-2"),
            &format!("{TRACE}-{SPAN}-1-short"),
            &format!("{TRACE}-{SPAN}-1-05e3ac9a4f6e3b90-x"),
            &format!("{}-{SPAN}-1", TRACE.to_uppercase()),
            &format!("{}-{SPAN}-1", &TRACE[..31]),
            &format!("64fe8b2a57d3ef-{SPAN}-1"),
            &format!("{TRACE}-0000000000000000-1"),
            &format!("{}-{SPAN}-1", "0".repeat(32)),
            "€€€-€€-1",
        ] {
            assert!(extract(&[("b3", bad)]).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn multiple_header_forms() {
        let sc = extract(&[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", SPAN),
            ("x-b3-sampled", "1"),
        ])
        .unwrap();
        assert!(sc.is_sampled());
        assert!(
            extract(&[
                ("x-b3-traceid", TRACE),
                ("x-b3-spanid", SPAN),
                ("x-b3-sampled", "true")
            ])
            .unwrap()
            .is_sampled()
        );
        assert!(
            extract(&[
                ("x-b3-traceid", TRACE),
                ("x-b3-spanid", SPAN),
                ("x-b3-flags", "1")
            ])
            .unwrap()
            .is_sampled(),
            "debug implies sampled"
        );
        assert!(
            extract(&[
                ("x-b3-traceid", TRACE),
                ("x-b3-spanid", SPAN),
                ("x-b3-sampled", "yes")
            ])
            .is_none()
        );
        assert!(extract(&[("x-b3-traceid", TRACE)]).is_none());
    }

    #[test]
    fn injects_its_encoding() {
        let sc = extract(&[("b3", &format!("{TRACE}-{SPAN}-1"))]).unwrap();
        let cx = Context::new().with_remote_span_context(sc);
        let mut out: HashMap<String, String> = HashMap::new();
        B3Propagator::new(B3Encoding::SingleHeader).inject_context(&cx, &mut out);
        assert_eq!(out.get("b3"), Some(&format!("{TRACE}-{SPAN}-1")));
        let mut out: HashMap<String, String> = HashMap::new();
        B3Propagator::new(B3Encoding::MultipleHeaders).inject_context(&cx, &mut out);
        assert_eq!(out.get("x-b3-traceid").map(String::as_str), Some(TRACE));
        assert_eq!(out.get("x-b3-spanid").map(String::as_str), Some(SPAN));
        assert_eq!(out.get("x-b3-sampled").map(String::as_str), Some("1"));
    }
}
