//! The X-Ray trace header (`AWSTraceHeader` system attribute of SQS):
//! `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

fn hex_only(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The remote span context in an X-Ray header, or `None` when it is
/// malformed (a new trace then starts).
pub(crate) fn parse(header: &str) -> Option<SpanContext> {
    if header.len() > 256 {
        return None;
    }
    let (mut root, mut parent, mut sampled) = (None, None, false);
    for part in header.split(';') {
        let (key, value) = part.trim().split_once('=')?;
        match key.trim() {
            "Root" => root = Some(value.trim()),
            "Parent" => parent = Some(value.trim()),
            "Sampled" => sampled = value.trim() == "1",
            _ => {}
        }
    }
    let mut fields = root?.split('-');
    let (version, epoch, random) = (fields.next()?, fields.next()?, fields.next()?);
    if version != "1" || fields.next().is_some() || epoch.len() != 8 || random.len() != 24 {
        return None;
    }
    let trace = format!("{epoch}{random}");
    let parent = parent?;
    if parent.len() != 16 || !hex_only(&trace) || !hex_only(parent) {
        return None;
    }
    let trace_id = TraceId::from_hex(&trace.to_ascii_lowercase()).ok()?;
    let span_id = SpanId::from_hex(&parent.to_ascii_lowercase()).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    Some(SpanContext::new(
        trace_id,
        span_id,
        flags,
        true,
        TraceState::NONE,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_form() {
        let sc =
            parse("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
                .unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(sc.span_id().to_string(), "53995c3f42cd8ad8");
        assert!(sc.is_sampled() && sc.is_remote());
        let sc = parse("Sampled=0;Parent=53995c3f42cd8ad8;Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=a:1").unwrap();
        assert!(!sc.is_sampled());
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            "",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e98-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a99427279z;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
            "nonsense",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
