//! OT (the OpenTracing basic tracer's headers): `ot-tracer-traceid` (16 hex
//! digits, or 32 on extraction), `ot-tracer-spanid` (16), `ot-tracer-sampled`
//! (`true`/`false`; `1`/`0` as some SDKs write it, accepted), and baggage as
//! `ot-baggage-{key}: {value}`.
//!
//! The format carries 64-bit trace ids: what is injected is the lower 64 bits
//! of the trace id, as the OpenTelemetry OT propagators of other languages
//! do.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};

use crate::{ids, prefixed_baggage};

const TRACE_ID: &str = "ot-tracer-traceid";
const SPAN_ID: &str = "ot-tracer-spanid";
const SAMPLED: &str = "ot-tracer-sampled";
const BAGGAGE_PREFIX: &str = "ot-baggage-";

/// The OT propagator (`OTEL_PROPAGATORS=ottrace`).
#[derive(Clone, Debug)]
pub struct OtTracePropagator {
    fields: [String; 3],
}

impl Default for OtTracePropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl OtTracePropagator {
    /// A new propagator.
    pub fn new() -> Self {
        Self {
            fields: [TRACE_ID.to_owned(), SPAN_ID.to_owned(), SAMPLED.to_owned()],
        }
    }
}

fn parse(extractor: &dyn Extractor) -> Option<SpanContext> {
    let trace = extractor.get(TRACE_ID)?.trim();
    if trace.len() != 16 && trace.len() != 32 {
        return None;
    }
    let trace_id = ids::trace_id(trace, 16..=32)?;
    let span_id = ids::span_id(extractor.get(SPAN_ID)?.trim(), 16..=16)?;
    let sampled = match extractor.get(SAMPLED).map(str::trim) {
        None => false,
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(_) => return None,
    };
    Some(ids::remote(trace_id, span_id, sampled))
}

impl TextMapPropagator for OtTracePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            let trace = ids::trace_hex(sc.trace_id());
            injector.set(TRACE_ID, trace[16..].to_owned());
            injector.set(SPAN_ID, ids::span_hex(sc.span_id()));
            injector.set(SAMPLED, sc.is_sampled().to_string());
        }
        prefixed_baggage::inject(cx, injector, BAGGAGE_PREFIX, str::to_owned);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let cx = match parse(extractor) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        };
        prefixed_baggage::extract(cx, extractor, BAGGAGE_PREFIX, |value| {
            Some(value.to_owned())
        })
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
        OtTracePropagator::new().extract(&map)
    }

    #[test]
    fn reads_and_writes_the_ot_headers() {
        let cx = extract(&[
            ("ot-tracer-traceid", "64fe8b2a57d3eff7"),
            ("ot-tracer-spanid", "e457b5a2e4d86bd1"),
            ("ot-tracer-sampled", "true"),
            ("ot-baggage-user", "alice"),
        ]);
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "000000000000000064fe8b2a57d3eff7"
        );
        assert!(sc.is_sampled());
        assert_eq!(cx.baggage().get("user").map(|v| v.as_str()), Some("alice"));
        let mut out: HashMap<String, String> = HashMap::new();
        OtTracePropagator::new().inject_context(&cx, &mut out);
        assert_eq!(
            out.get("ot-tracer-traceid").map(String::as_str),
            Some("64fe8b2a57d3eff7")
        );
        assert_eq!(
            out.get("ot-tracer-spanid").map(String::as_str),
            Some("e457b5a2e4d86bd1")
        );
        assert_eq!(
            out.get("ot-tracer-sampled").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            out.get("ot-baggage-user").map(String::as_str),
            Some("alice")
        );
        assert!(
            extract(&[
                ("ot-tracer-traceid", "64fe8b2a57d3eff7"),
                ("ot-tracer-spanid", "e457b5a2e4d86bd1"),
                ("ot-tracer-sampled", "1")
            ])
            .span()
            .span_context()
            .is_sampled()
        );
        for (trace, span, sampled) in [
            ("64fe8b2a57d3ef", "e457b5a2e4d86bd1", "true"),
            ("64fe8b2a57d3eff7", "e457b5a2e4d86bd", "true"),
            ("64fe8b2a57d3eff7", "e457b5a2e4d86bd1", "maybe"),
            ("0000000000000000", "e457b5a2e4d86bd1", "true"),
            ("64FE8B2A57D3EFF7", "e457b5a2e4d86bd1", "true"),
        ] {
            let cx = extract(&[
                ("ot-tracer-traceid", trace),
                ("ot-tracer-spanid", span),
                ("ot-tracer-sampled", sampled),
            ]);
            assert!(
                !cx.span().span_context().is_valid(),
                "{trace} {span} {sampled}"
            );
        }
    }
}
