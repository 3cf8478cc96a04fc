//! AWS X-Ray: `X-Amzn-Trace-Id` on HTTP (what AWS load balancers add), and
//! the same format in SQS's `AWSTraceHeader` system attribute:
//! `Root=1-{8 hex: epoch seconds}-{24 hex};Parent={16 hex};Sampled={0|1}`.
//!
//! Fields may come in any order and with others (`Self=`, `Lineage=`);
//! `Root` and `Parent` are required, `Sampled` missing or `?` means the
//! caller left the decision to this participant (not sampled here). The
//! trace id is the 32 digits of `Root` after the version; a trace id written
//! by this propagator keeps its first 8 digits as the epoch part, so X-Ray
//! accepts it only when the trace id was made that way.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};

use crate::ids;

/// The HTTP header, as AWS writes it (HTTP carriers compare names without
/// case; map carriers are read under both spellings).
pub const HEADER: &str = "X-Amzn-Trace-Id";
/// The header in lowercase, as HTTP/2 and most maps carry it.
const HEADER_LOWERCASE: &str = "x-amzn-trace-id";

/// The remote span context of an X-Ray trace header, or `None` when it is
/// malformed (a new trace then starts).
pub fn parse_header(header: &str) -> Option<SpanContext> {
    if header.len() > 256 {
        return None;
    }
    let (mut root, mut parent, mut sampled) = (None, None, false);
    for part in header.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, value) = part.split_once('=')?;
        match key.trim() {
            "Root" => root = Some(value.trim()),
            "Parent" => parent = Some(value.trim()),
            "Sampled" => {
                sampled = match value.trim() {
                    "1" => true,
                    "0" | "?" => false,
                    _ => return None,
                }
            }
            _ => {}
        }
    }
    let mut fields = root?.split('-');
    let (version, epoch, random) = (fields.next()?, fields.next()?, fields.next()?);
    if version != "1" || fields.next().is_some() || epoch.len() != 8 || random.len() != 24 {
        return None;
    }
    let trace_id = ids::trace_id(&format!("{epoch}{random}"), 32..=32)?;
    let span_id = ids::span_id(parent?, 16..=16)?;
    Some(ids::remote(trace_id, span_id, sampled))
}

/// The X-Ray header for a span context.
pub fn format_header(sc: &SpanContext) -> String {
    let trace = ids::trace_hex(sc.trace_id());
    format!(
        "Root=1-{}-{};Parent={};Sampled={}",
        &trace[..8],
        &trace[8..],
        ids::span_hex(sc.span_id()),
        if sc.is_sampled() { "1" } else { "0" }
    )
}

/// The X-Ray propagator (`OTEL_PROPAGATORS=xray`).
#[derive(Clone, Debug)]
pub struct XrayPropagator {
    fields: [String; 1],
}

impl Default for XrayPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl XrayPropagator {
    /// A new propagator.
    pub fn new() -> Self {
        Self {
            fields: [HEADER.to_owned()],
        }
    }
}

impl TextMapPropagator for XrayPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            injector.set(HEADER, format_header(sc));
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let header = extractor
            .get(HEADER_LOWERCASE)
            .or_else(|| extractor.get(HEADER));
        match header.and_then(parse_header) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_form() {
        let sc = parse_header(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(sc.span_id().to_string(), "53995c3f42cd8ad8");
        assert!(sc.is_sampled() && sc.is_remote());
        let sc = parse_header(
            "Sampled=0;Parent=53995c3f42cd8ad8;Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=a:1",
        )
        .unwrap();
        assert!(!sc.is_sampled());
        assert_eq!(
            format_header(&sc),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
        );
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            "",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e98-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a99427279z;Parent=53995c3f42cd8ad8",
            "Root=1-5759E988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=x",
            "nonsense",
        ] {
            assert!(parse_header(bad).is_none(), "{bad}");
        }
    }
}
