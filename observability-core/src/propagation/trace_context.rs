use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The W3C `random` trace flag (Trace Context Level 2).
pub const RANDOM_FLAG: TraceFlags = TraceFlags::new(0x02);
/// The flags this implementation knows; others are cleared when propagating.
const KNOWN_FLAGS: u8 = 0x03;
/// At most this many `tracestate` list-members.
const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Past this many bytes a `tracestate` cannot be valid (32 members of at most
/// 256 + 1 + 256 bytes, with generous whitespace); it is dropped unread.
const MAX_TRACESTATE_BYTES: usize = 32 * 1024;

/// A W3C Trace Context (Level 2) propagator that enforces the whole
/// specification.
///
/// Compared with the stock `opentelemetry_sdk` propagator it:
///
/// - accepts only exact field lengths and lowercase hex, and rejects
///   all-zero trace and parent ids and version `ff`;
/// - parses higher versions as the specification says (the first four fields,
///   then `-` or the end);
/// - rejects a request with two `traceparent` values, and joins several
///   `tracestate` headers in order (it reads every value through
///   [`Extractor::get_all`], so the carrier must implement it);
/// - drops an invalid `tracestate` (bad keys or values, duplicate keys, more
///   than 32 members) while keeping the `traceparent`;
/// - passes the `sampled` and `random` flags on.
///
/// Anything invalid yields the context it was given: the caller starts a new
/// trace, the request never fails.
#[derive(Clone, Debug, Default)]
pub struct TraceContextPropagator {
    _private: (),
}

impl TraceContextPropagator {
    /// A new propagator.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TextMapPropagator for TraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        injector.set(TRACEPARENT, format_traceparent(sc));
        let state = sc.trace_state().header();
        if !state.is_empty() {
            injector.set(TRACESTATE, state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extract_span_context(extractor) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(fields())
    }
}

fn fields() -> &'static [String] {
    use std::sync::OnceLock;
    static NAMES: OnceLock<[String; 2]> = OnceLock::new();
    NAMES.get_or_init(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()])
}

/// `00-{trace id}-{span id}-{flags}` for a valid span context, in a string
/// of exactly its 55 bytes (a carrier can take it over without a copy).
pub(crate) fn format_traceparent(sc: &SpanContext) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    fn write_hex(out: &mut [u8], bytes: &[u8]) {
        for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
    }
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    write_hex(&mut out[3..35], &sc.trace_id().to_bytes());
    write_hex(&mut out[36..52], &sc.span_id().to_bytes());
    write_hex(&mut out[53..55], &[sc.trace_flags().to_u8() & KNOWN_FLAGS]);
    // Only ASCII digits and dashes were written.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// The remote span context the carrier holds, or `None` when it holds no
/// valid one.
pub(crate) fn extract_span_context(extractor: &dyn Extractor) -> Option<SpanContext> {
    let values = extractor.get_all(TRACEPARENT)?;
    let [traceparent] = values.as_slice() else {
        return None; // absent, or more than one value: restart the trace
    };
    let (trace_id, span_id, flags) = parse_traceparent(traceparent)?;
    let state = extractor
        .get_all(TRACESTATE)
        .and_then(|values| parse_tracestate(&values))
        .unwrap_or_default();
    Some(SpanContext::new(trace_id, span_id, flags, true, state))
}

/// Lowercase hex digits to their values; `0xff` marks everything else.
const HEX: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Decodes exactly `2 * N` lowercase hex digits.
#[inline]
fn decode_hex<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    if N.is_multiple_of(4) {
        // Trace and span ids: eight digits at a time.
        for (bytes, digits) in out.chunks_exact_mut(4).zip(hex.chunks_exact(8)) {
            bytes.copy_from_slice(&decode_hex8(digits)?);
        }
        return Some(out);
    }
    // Any invalid digit sets the high bits of `bad`: one test at the end.
    let mut bad = 0u8;
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        bad |= hi | lo;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(out)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` (all below 0x80) that is at least `c`.
#[inline]
const fn at_least(x: u64, c: u8) -> u64 {
    x.wrapping_add(ONES * (0x80 - c as u64)) & HIGH_BITS
}

/// Eight lowercase hex digits to four bytes, all eight tested and converted
/// at once as the lanes of one `u64`.
#[inline]
fn decode_hex8(digits: &[u8]) -> Option<[u8; 4]> {
    let x = u64::from_le_bytes(digits.try_into().ok()?);
    if x & HIGH_BITS != 0 {
        return None;
    }
    let digit = at_least(x, b'0') & !at_least(x, b'9' + 1);
    let letter = at_least(x, b'a') & !at_least(x, b'f' + 1);
    if digit | letter != HIGH_BITS {
        return None;
    }
    // Lane i holds the value of digit i ('a' & 0x0f is 1, plus 9 is 10).
    let nibbles = (x & (ONES * 0x0f)) + (letter >> 7) * 9;
    // Even lanes take (digit i << 4) | digit i+1, then close up.
    let pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let packed = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    let packed = (packed | (packed >> 16)) as u32;
    Some(packed.to_le_bytes())
}

/// Parses a `traceparent` value per Trace Context Level 2.
pub(crate) fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let value = value.trim_matches([' ', '\t']);
    // version(2) - trace-id(32) - parent-id(16) - flags(2) = 55 bytes.
    let bytes = value.as_bytes();
    if bytes.len() < 55 {
        return None;
    }
    let [version] = decode_hex::<1>(&bytes[0..2])?;
    if version == 0xff {
        return None;
    }
    let rest = &bytes[55..];
    // Version 00 is exactly 55 bytes; a higher version may go on after a `-`.
    if !rest.is_empty() && (version == 0 || rest[0] != b'-') {
        return None;
    }
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let trace_id = TraceId::from_bytes(decode_hex::<16>(&bytes[3..35])?);
    let span_id = SpanId::from_bytes(decode_hex::<8>(&bytes[36..52])?);
    let [flags] = decode_hex::<1>(&bytes[53..55])?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    Some((trace_id, span_id, TraceFlags::new(flags & KNOWN_FLAGS)))
}

fn key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

/// A `tracestate` key: `simple-key` or `tenant-id@system-id`.
pub(crate) fn valid_tracestate_key(key: &str) -> bool {
    let b = key.as_bytes();
    match key.split_once('@') {
        None => {
            (1..=256).contains(&b.len())
                && b[0].is_ascii_lowercase()
                && b.iter().all(|&c| key_char(c))
        }
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&t.len())
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && t.iter().all(|&c| key_char(c))
                && (1..=14).contains(&s.len())
                && s[0].is_ascii_lowercase()
                && s.iter().all(|&c| key_char(c))
        }
    }
}

/// Whether the OpenTelemetry API's `TraceState` accepts a key this parser
/// accepted: it allows system ids of at most 13 characters.
fn representable(key: &str) -> bool {
    key.split_once('@')
        .is_none_or(|(_, system)| system.len() <= 13)
}

/// A `tracestate` value: 1 to 256 printable characters other than `,` and
/// `=`, not ending in a space.
pub(crate) fn valid_tracestate_value(value: &str) -> bool {
    let b = value.as_bytes();
    (1..=256).contains(&b.len())
        && b.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && b[b.len() - 1] != b' '
}

/// Parses every `tracestate` value, joined in order. `None` when the whole
/// header is invalid (it is then dropped, per the specification).
pub(crate) fn parse_tracestate(values: &[&str]) -> Option<TraceState> {
    let total: usize = values.iter().map(|v| v.len() + 1).sum();
    if total > MAX_TRACESTATE_BYTES {
        return None;
    }
    let mut members: Vec<(&str, &str)> = Vec::new();
    for value in values {
        for member in value.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, val) = member.split_once('=')?;
            if !valid_tracestate_key(key) || !valid_tracestate_value(val) {
                return None;
            }
            if members.iter().any(|(k, _)| *k == key) {
                return None; // duplicate keys
            }
            members.push((key, val));
            if members.len() > MAX_TRACESTATE_MEMBERS {
                return None;
            }
        }
    }
    // The API's `TraceState` refuses one kind of key the specification
    // allows (a system id of exactly 14 characters); such members are left
    // out rather than losing the whole header.
    members.retain(|(key, _)| representable(key));
    TraceState::from_key_value(members).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    proptest::proptest! {
        #[test]
        fn traceparent_is_formatted_as_the_specification_writes_it(
            trace in 1u128..,
            span in 1u64..,
            flags in proptest::prelude::any::<u8>(),
        ) {
            let sc = SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                TraceFlags::new(flags),
                false,
                TraceState::default(),
            );
            let text = format_traceparent(&sc);
            proptest::prop_assert_eq!(
                &text,
                &format!("00-{trace:032x}-{span:016x}-{:02x}", flags & KNOWN_FLAGS)
            );
            proptest::prop_assert_eq!(text.capacity(), 55);
            proptest::prop_assert_eq!(
                parse_traceparent(&text),
                Some((TraceId::from(trace), SpanId::from(span), TraceFlags::new(flags & KNOWN_FLAGS)))
            );
        }
    }

    /// The digit-at-a-time reference for `decode_hex8`.
    fn by_table(digits: &[u8]) -> Option<[u8; 4]> {
        let mut out = [0u8; 4];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (hi, lo) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
            if (hi | lo) & 0xf0 != 0 {
                return None;
            }
            *byte = (hi << 4) | lo;
        }
        Some(out)
    }

    #[test]
    fn eight_digits_at_once_match_the_table() {
        // Every byte value in every lane of a few valid chunks.
        for base in [*b"00000000", *b"0123abcd", *b"ffffffff", *b"9a9a9a9a"] {
            for lane in 0..8 {
                for byte in 0..=255u8 {
                    let mut digits = base;
                    digits[lane] = byte;
                    assert_eq!(decode_hex8(&digits), by_table(&digits), "{digits:?}");
                }
            }
        }
        // Every pair of digit values in the first two lanes.
        for hi in 0..=255u8 {
            for lo in 0..=255u8 {
                let digits = [hi, lo, b'0', b'1', b'2', b'3', b'4', b'5'];
                assert_eq!(decode_hex8(&digits), by_table(&digits), "{digits:?}");
            }
        }
        assert_eq!(decode_hex8(b"4bf92f35"), Some([0x4b, 0xf9, 0x2f, 0x35]));
    }

    #[derive(Default)]
    struct Multi(HashMap<String, Vec<String>>);
    impl Multi {
        fn with(mut self, k: &str, v: &str) -> Self {
            self.0.entry(k.to_owned()).or_default().push(v.to_owned());
            self
        }
    }
    impl Extractor for Multi {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.first()).map(String::as_str)
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(String::as_str).collect()
        }
        fn get_all(&self, key: &str) -> Option<Vec<&str>> {
            self.0
                .get(key)
                .map(|v| v.iter().map(String::as_str).collect())
        }
    }
    impl Injector for Multi {
        fn set(&mut self, key: &str, value: String) {
            self.0.insert(key.to_owned(), vec![value]);
        }
    }

    fn extract(carrier: &Multi) -> Option<SpanContext> {
        let cx = TraceContextPropagator::new().extract(carrier);
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    #[test]
    fn valid_traceparent_round_trips() {
        let sc = extract(&Multi::default().with("traceparent", TP)).unwrap();
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(
            format!("{}", sc.trace_id()),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let mut out = Multi::default();
        TraceContextPropagator::new()
            .inject_context(&Context::new().with_remote_span_context(sc), &mut out);
        assert_eq!(out.get("traceparent"), Some(TP));
        assert_eq!(out.get("tracestate"), None);
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        let bad = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.future",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é1",
            "0\u{202e}-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "\u{202e}4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0000",
        ];
        for tp in bad {
            assert!(
                extract(&Multi::default().with("traceparent", tp)).is_none(),
                "{tp:?}"
            );
        }
    }

    #[test]
    fn two_traceparents_are_rejected() {
        let c = Multi::default().with("traceparent", TP).with(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01",
        );
        assert!(extract(&c).is_none());
        // Even two identical values.
        assert!(
            extract(
                &Multi::default()
                    .with("traceparent", TP)
                    .with("traceparent", TP)
            )
            .is_none()
        );
    }

    #[test]
    fn future_versions_are_parsed_as_the_spec_says() {
        for tp in [
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like",
        ] {
            let sc = extract(&Multi::default().with("traceparent", tp)).unwrap();
            assert_eq!(format!("{}", sc.span_id()), "00f067aa0ba902b7");
            assert!(sc.is_sampled());
        }
    }

    #[test]
    fn flags_sampled_and_random_are_passed_on_and_unknown_ones_cleared() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
        let sc = extract(&Multi::default().with("traceparent", tp)).unwrap();
        assert_eq!(sc.trace_flags().to_u8(), 0x03);
        let mut out = Multi::default();
        TraceContextPropagator::new()
            .inject_context(&Context::new().with_remote_span_context(sc), &mut out);
        assert_eq!(out.get("traceparent"), Some(tp));
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff";
        let sc = extract(&Multi::default().with("traceparent", tp)).unwrap();
        assert_eq!(sc.trace_flags().to_u8(), 0x03);
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let sc = extract(&Multi::default().with("traceparent", tp)).unwrap();
        assert!(!sc.is_sampled());
    }

    #[test]
    fn surrounding_whitespace_is_allowed() {
        assert!(extract(&Multi::default().with("traceparent", &format!(" \t{TP}\t "))).is_some());
    }

    fn state(values: &[&str]) -> Option<String> {
        let mut c = Multi::default().with("traceparent", TP);
        for v in values {
            c = c.with("tracestate", v);
        }
        let sc = extract(&c).expect("traceparent is valid");
        let h = sc.trace_state().header();
        (!h.is_empty()).then_some(h)
    }

    #[test]
    fn tracestate_headers_are_joined_in_order() {
        assert_eq!(state(&["a=1, b=2", "c=3"]).as_deref(), Some("a=1,b=2,c=3"));
        assert_eq!(state(&["a=1,,  ,b=2"]).as_deref(), Some("a=1,b=2"));
        assert_eq!(state(&[""]), None);
    }

    #[test]
    fn tracestate_limits() {
        let members = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(state(&[&members(32)]).unwrap().split(',').count(), 32);
        assert_eq!(state(&[&members(33)]), None, "33 members drop the header");
        let k256 = format!("a{}", "b".repeat(255));
        assert!(state(&[&format!("{k256}=v")]).is_some());
        assert!(state(&[&format!("{k256}b=v")]).is_none());
        let tenant = format!("t{}", "0".repeat(240));
        assert!(state(&[&format!("{tenant}@sys=v")]).is_some());
        assert!(state(&[&format!("{tenant}0@sys=v")]).is_none());
        // A 14-character system id is valid, but the OpenTelemetry API cannot
        // hold it: that member alone is left out.
        assert_eq!(state(&["a=1,t@abcdefghijklmn=v"]).as_deref(), Some("a=1"));
        assert!(state(&["t@abcdefghijklm=v"]).is_some());
        assert!(state(&["t@abcdefghijklmno=v"]).is_none());
        assert!(state(&["1tenant@vendor=v"]).is_some());
        assert!(state(&["@vendor=v"]).is_none());
        assert!(state(&["a@b@c=v"]).is_none());
        assert!(state(&[&format!("a={}", "v".repeat(256))]).is_some());
        assert!(state(&[&format!("a={}", "v".repeat(257))]).is_none());
        let huge = "a=b,".repeat(256 * 1024);
        assert!(state(&[&huge]).is_none(), "1 MB tracestate is dropped");
    }

    #[test]
    fn invalid_tracestate_is_dropped_but_the_parent_kept() {
        for bad in [
            "A=1",
            "a=",
            "a",
            "a=1,a=2",
            "a=\u{7f}",
            "a=b=c",
            "k=v,UPPER=1",
            "=v",
        ] {
            assert_eq!(state(&[bad]), None, "{bad:?}");
        }
        assert_eq!(
            state(&["a=1", "a=2"]),
            None,
            "duplicate keys across headers"
        );
        assert_eq!(state(&["foo=bar baz"]).as_deref(), Some("foo=bar baz"));
        assert_eq!(
            state(&["a=x y \t"]).as_deref(),
            Some("a=x y"),
            "whitespace around members is OWS"
        );
        assert!(state(&["a=!\"#$%&'()*+-./:;<>?@[]^_`{|}~"]).is_some());
    }

    #[test]
    fn nothing_to_inject_for_an_invalid_context() {
        let mut out = Multi::default();
        TraceContextPropagator::new().inject_context(&Context::new(), &mut out);
        assert!(out.0.is_empty());
    }
}
