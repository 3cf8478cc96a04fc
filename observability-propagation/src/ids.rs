//! Ids as the non-W3C formats write them: lowercase hex of a bounded
//! length, left-padded with zeros where the format allows shorter ids.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// The value of `text` read as lowercase hex, when it has `lengths` digits
/// (one of them) and no other character.
pub(crate) fn hex(text: &str, lengths: std::ops::RangeInclusive<usize>) -> Option<u128> {
    if !lengths.contains(&text.len()) || text.len() > 32 {
        return None;
    }
    let mut value: u128 = 0;
    for b in text.bytes() {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

/// A trace id of `lengths` lowercase hex digits; all zeros is invalid.
pub(crate) fn trace_id(text: &str, lengths: std::ops::RangeInclusive<usize>) -> Option<TraceId> {
    let value = hex(text, lengths)?;
    (value != 0).then(|| TraceId::from(value))
}

/// A span id of `lengths` lowercase hex digits; all zeros is invalid.
pub(crate) fn span_id(text: &str, lengths: std::ops::RangeInclusive<usize>) -> Option<SpanId> {
    let value = hex(text, lengths)?;
    let value = u64::try_from(value).ok()?;
    (value != 0).then(|| SpanId::from(value))
}

/// A remote span context.
pub(crate) fn remote(trace_id: TraceId, span_id: SpanId, sampled: bool) -> SpanContext {
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(trace_id, span_id, flags, true, TraceState::NONE)
}

/// The lowercase hex of a trace id, 32 digits.
pub(crate) fn trace_hex(trace_id: TraceId) -> String {
    format!("{trace_id}")
}

/// The lowercase hex of a span id, 16 digits.
pub(crate) fn span_hex(span_id: SpanId) -> String {
    format!("{span_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_strict() {
        assert_eq!(hex("ff", 1..=32), Some(255));
        assert_eq!(hex("FF", 1..=32), None, "lowercase only");
        assert_eq!(hex("", 1..=32), None);
        assert_eq!(hex("0g", 1..=32), None);
        assert_eq!(hex("+1", 1..=32), None);
        assert_eq!(hex(&"f".repeat(33), 1..=40), None);
        assert_eq!(trace_id(&"0".repeat(32), 32..=32), None);
        assert_eq!(span_id("0000000000000000", 16..=16), None);
        assert_eq!(span_id(&"f".repeat(17), 1..=17), None, "over 64 bits");
    }
}
