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
/// - drops an invalid `tracestate` (a bad key or value, more than 32
///   members) while keeping the `traceparent`; of a key given twice, the
///   first member is kept;
/// - accepts every key the current grammar allows (a leading digit, `@`
///   anywhere after the first character, up to 256 characters), including
///   those the OpenTelemetry API's `TraceState` cannot hold: the header is
///   then passed on as received for as long as the trace state is unchanged;
/// - passes the `sampled` and `random` flags on, the `random` flag also
///   through spans the sampler dropped (whose flags the SDK resets).
///
/// Written against Trace Context Level 2 (W3C Candidate Recommendation
/// Draft, <https://www.w3.org/TR/trace-context-2/>); each decision cites
/// its section.
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
        let received = cx.get::<Received>().filter(|r| r.trace_id == sc.trace_id());
        // §3.2.2.5.2 (random trace id flag): a participant that continues a
        // trace passes the flag on as received. The SDK rebuilds the flags of
        // a span its sampler dropped (`00`); the flag the caller sent is
        // kept beside the context for that case.
        let random = received.is_some_and(|r| r.random);
        injector.set(TRACEPARENT, format_traceparent(sc, random));
        // §3.3.1.3.1: keys the API's `TraceState` cannot hold were kept as
        // text; while the state is the one received, that text is sent.
        let state = match received.and_then(|r| r.tracestate.as_ref()) {
            Some(raw) if raw.state == *sc.trace_state() => raw.header.to_string(),
            _ => sc.trace_state().header(),
        };
        if !state.is_empty() {
            injector.set(TRACESTATE, state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extract(extractor) {
            Some((sc, None)) => cx.with_remote_span_context(sc),
            Some((sc, Some(received))) => cx.with_value(received).with_remote_span_context(sc),
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

/// What the caller sent that the span contexts made from it may lose: the
/// `random` flag (lost when the sampler drops a span) and a `tracestate`
/// holding keys the API's `TraceState` cannot represent. Kept as a context
/// value only when one of them is there, so the usual request pays nothing.
#[derive(Debug)]
struct Received {
    trace_id: TraceId,
    random: bool,
    tracestate: Option<RawTraceState>,
}

/// A `tracestate` as received (normalised: members joined by `,`, first of
/// each key), and the part of it the API's `TraceState` holds.
#[derive(Debug)]
struct RawTraceState {
    state: TraceState,
    header: Box<str>,
}

/// `00-{trace id}-{span id}-{flags}` for a valid span context, in a string
/// of exactly its 55 bytes (a carrier can take it over without a copy).
/// `random` sets the random flag whatever the span context's flags say.
pub(crate) fn format_traceparent(sc: &SpanContext, random: bool) -> String {
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
    let flags =
        sc.trace_flags().to_u8() & KNOWN_FLAGS | if random { RANDOM_FLAG.to_u8() } else { 0 };
    write_hex(&mut out[53..55], &[flags]);
    // Only ASCII digits and dashes were written.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// The remote span context the carrier holds (`None` when it holds no valid
/// one) and, when the span contexts made from it could lose part of it,
/// what to keep beside it.
fn extract(extractor: &dyn Extractor) -> Option<(SpanContext, Option<Received>)> {
    let traceparents = extractor.get_all(TRACEPARENT)?;
    let tracestates = extractor.get_all(TRACESTATE);
    extract_values(&traceparents, tracestates.as_deref())
}

/// [`extract`] from the header values themselves.
fn extract_values(
    traceparents: &[&str],
    tracestates: Option<&[&str]>,
) -> Option<(SpanContext, Option<Received>)> {
    // §3.2 (traceparent header): a request with more than one `traceparent`
    // cannot say which one is the parent: restart the trace.
    let [traceparent] = traceparents else {
        return None;
    };
    extract_one(traceparent.as_bytes(), tracestates)
}

/// [`extract`] from the one `traceparent` value, as bytes.
#[inline]
fn extract_one(
    traceparent: &[u8],
    tracestates: Option<&[&str]>,
) -> Option<(SpanContext, Option<Received>)> {
    let (trace_id, span_id, flags) = parse_traceparent(traceparent)?;
    let tracestate = tracestates.and_then(parse_tracestate);
    let (state, raw) = match tracestate {
        Some(Parsed { state, raw }) => (state, raw),
        None => (TraceState::default(), None),
    };
    let random = flags.to_u8() & RANDOM_FLAG.to_u8() != 0;
    let received = (random || raw.is_some()).then(|| Received {
        trace_id,
        random,
        tracestate: raw.map(|header| RawTraceState {
            state: state.clone(),
            header,
        }),
    });
    Some((
        SpanContext::new(trace_id, span_id, flags, true, state),
        received,
    ))
}

/// What the Trace Context propagator extracts from the one `traceparent`
/// value (as bytes) and these `tracestate` values: the remote span context,
/// if valid, and `cx` with what must travel beside it.
#[inline]
pub(crate) fn extract_parts(
    cx: &Context,
    traceparent: &[u8],
    tracestates: Option<&[&str]>,
) -> (Option<SpanContext>, Context) {
    match extract_one(traceparent, tracestates) {
        Some((sc, None)) => (Some(sc), cx.clone()),
        Some((sc, Some(received))) => (Some(sc), cx.with_value(received)),
        None => (None, cx.clone()),
    }
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

/// Two lowercase hex digits to their byte (the version and the flags).
#[inline]
fn hex_byte(pair: &[u8]) -> Option<u8> {
    let [hi, lo] = pair else {
        return None;
    };
    let (hi, lo) = (HEX[usize::from(*hi)], HEX[usize::from(*lo)]);
    ((hi | lo) & 0xf0 == 0).then_some((hi << 4) | lo)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` (all below 0x80) that is at least `c`.
#[inline]
const fn at_least(x: u64, c: u8) -> u64 {
    x.wrapping_add(ONES * (0x80 - c as u64)) & HIGH_BITS
}

/// The four bytes eight hex digits (the lanes of `x`) stand for, and a
/// value that is not zero when one of them is not a lowercase hex digit
/// (so that several can be tested with one branch): all eight tested and
/// converted at once as the lanes of one `u64`.
#[inline(always)]
fn hex8(x: u64) -> ([u8; 4], u64) {
    let digit = at_least(x, b'0') & !at_least(x, b'9' + 1);
    let letter = at_least(x, b'a') & !at_least(x, b'f' + 1);
    // A byte with its high bit set, or neither a digit nor a letter.
    let bad = (x & HIGH_BITS) | ((digit | letter) ^ HIGH_BITS);
    // Lane i holds the value of digit i ('a' & 0x0f is 1, plus 9 is 10).
    let nibbles = (x & (ONES * 0x0f)) + (letter >> 7) * 9;
    // Even lanes take (digit i << 4) | digit i+1, then close up.
    let pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let packed = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    let packed = (packed | (packed >> 16)) as u32;
    (packed.to_le_bytes(), bad)
}

/// The 16-byte trace id and 8-byte parent id of a version `00` layout
/// (`vv-{32 digits}-{16 digits}-ff`), six groups of eight digits tested
/// together.
#[inline]
fn decode_ids(bytes: &[u8; 55]) -> Option<([u8; 16], [u8; 8])> {
    let lane = |at: usize| {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&bytes[at..at + 8]);
        hex8(u64::from_le_bytes(eight))
    };
    let (t0, b0) = lane(3);
    let (t1, b1) = lane(11);
    let (t2, b2) = lane(19);
    let (t3, b3) = lane(27);
    let (s0, b4) = lane(36);
    let (s1, b5) = lane(44);
    if b0 | b1 | b2 | b3 | b4 | b5 != 0 {
        return None;
    }
    let mut trace = [0u8; 16];
    for (i, part) in [t0, t1, t2, t3].into_iter().enumerate() {
        trace[4 * i..4 * i + 4].copy_from_slice(&part);
    }
    let mut span = [0u8; 8];
    span[..4].copy_from_slice(&s0);
    span[4..].copy_from_slice(&s1);
    Some((trace, span))
}

/// Parses a `traceparent` value per Trace Context Level 2, as bytes
/// (anything that is not ASCII is invalid whatever its encoding).
fn parse_traceparent(value: &[u8]) -> Option<(TraceId, SpanId, TraceFlags)> {
    // Optional white space around the value (§3.2, RFC 9110 field values).
    let ows = |b: &u8| matches!(b, b' ' | b'\t');
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    let bytes = &value[start..end];
    // §3.2.2 (traceparent header field values): version(2) - trace-id(32) -
    // parent-id(16) - trace-flags(2) = 55 bytes, all lowercase hex
    // (`HEXDIGLC`); anything else is invalid and restarts the trace.
    if bytes.len() < 55 {
        return None;
    }
    // §3.2.2.1 (version): `ff` is forbidden.
    let version = hex_byte(&bytes[0..2])?;
    if version == 0xff {
        return None;
    }
    // §3.2.2.1 and §3.2.4 (versioning): version 00 is exactly 55 bytes; a
    // higher version is read as its first four fields and may go on only
    // after a `-`.
    let rest = &bytes[55..];
    if !rest.is_empty() && (version == 0 || rest[0] != b'-') {
        return None;
    }
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let (trace_id, span_id) = decode_ids(bytes[..55].try_into().ok()?)?;
    let (trace_id, span_id) = (TraceId::from_bytes(trace_id), SpanId::from_bytes(span_id));
    let flags = hex_byte(&bytes[53..55])?;
    // §3.2.2.2 (trace-id) and §3.2.2.3 (parent-id): all zeros is invalid.
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    // §3.2.2.5 (trace-flags): only the sampled (0x01) and random (0x02)
    // flags are defined; the others are not passed on.
    Some((trace_id, span_id, TraceFlags::new(flags & KNOWN_FLAGS)))
}

/// §3.3.1.3.1 (key): `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
fn key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
}

/// A `tracestate` key, §3.3.1.3.1 of Level 2:
/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`. A key may start with a
/// digit and hold `@` anywhere after its first character (the older
/// `tenant@system` form is one case of it); it is 1 to 256 characters long.
pub(crate) fn valid_tracestate_key(key: &str) -> bool {
    let b = key.as_bytes();
    (1..=256).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| key_char(c))
}

/// Whether the OpenTelemetry API's `TraceState` accepts a key the grammar
/// allows: it still follows the older `tenant@system` form (one `@`, at most
/// 13 characters after it, the first of them a letter or digit).
fn representable(key: &str) -> bool {
    match key.split_once('@') {
        None => true,
        Some((_, system)) => {
            system.len() <= 13
                && !system.contains('@')
                && system
                    .bytes()
                    .next()
                    .is_none_or(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        }
    }
}

/// A `tracestate` value, §3.3.1.3.2 of Level 2:
/// `value = 0*255(chr) nblk-chr`, `chr = %x20 / nblk-chr`,
/// `nblk-chr = %x21-2B / %x2D-3C / %x3E-7E`: 1 to 256 printable characters
/// other than `,` and `=`, not ending in a space.
pub(crate) fn valid_tracestate_value(value: &str) -> bool {
    let b = value.as_bytes();
    (1..=256).contains(&b.len())
        && b.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && b[b.len() - 1] != b' '
}

/// A valid `tracestate`: what the API holds and, when that is not all of
/// it, the whole list as text.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) state: TraceState,
    pub(crate) raw: Option<Box<str>>,
}

/// Parses every `tracestate` value, joined in order (§3.3.1.4, combined
/// header value). `None` when the whole header is invalid, and is then
/// dropped while the `traceparent` is kept (§3.3.1, §3.5 processing model).
///
/// - §3.3.1.3 (list-members): empty members and the optional white space
///   around members are ignored; a member that is not `key=value` with a
///   valid key and value makes the header invalid.
/// - §3.3.1.5 (limits): more than 32 members make it invalid. Past
///   32 KiB the header cannot be valid and is dropped unread.
/// - Duplicated keys: the specification lets a participant pass the
///   duplicated member on or drop it; the first member of each key is kept
///   and later ones are left out (what the W3C test harness's own
///   `Tracestate` does), so the list sent on has unique keys.
pub(crate) fn parse_tracestate(values: &[&str]) -> Option<Parsed> {
    let total: usize = values.iter().map(|v| v.len() + 1).sum();
    if total > MAX_TRACESTATE_BYTES {
        return None;
    }
    let mut members: Vec<(&str, &str)> = Vec::new();
    let mut count = 0;
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
            count += 1;
            if count > MAX_TRACESTATE_MEMBERS {
                return None;
            }
            if !members.iter().any(|(k, _)| *k == key) {
                members.push((key, val));
            }
        }
    }
    if members.iter().all(|(key, _)| representable(key)) {
        let state = TraceState::from_key_value(members).ok()?;
        return Some(Parsed { state, raw: None });
    }
    let mut header = String::with_capacity(total);
    for (i, (key, val)) in members.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(key);
        header.push('=');
        header.push_str(val);
    }
    members.retain(|(key, _)| representable(key));
    let state = TraceState::from_key_value(members).ok()?;
    Some(Parsed {
        state,
        raw: Some(header.into_boxed_str()),
    })
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
            let text = format_traceparent(&sc, false);
            proptest::prop_assert_eq!(
                &text,
                &format!("00-{trace:032x}-{span:016x}-{:02x}", flags & KNOWN_FLAGS)
            );
            proptest::prop_assert_eq!(text.capacity(), 55);
            proptest::prop_assert_eq!(
                parse_traceparent(text.as_bytes()),
                Some((TraceId::from(trace), SpanId::from(span), TraceFlags::new(flags & KNOWN_FLAGS)))
            );
        }
    }

    /// `hex8` of eight digits, `None` when one is not a lowercase digit.
    fn decode_hex8(digits: &[u8; 8]) -> Option<[u8; 4]> {
        let (bytes, bad) = hex8(u64::from_le_bytes(*digits));
        (bad == 0).then_some(bytes)
    }

    /// The digit-at-a-time reference for `hex8`.
    fn by_table(digits: &[u8]) -> Option<[u8; 4]> {
        let mut out = [0u8; 4];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = hex_byte(pair)?;
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
        let cx = TraceContextPropagator::new().extract(&c);
        assert!(cx.span().span_context().is_valid(), "traceparent is valid");
        // What is passed on: the header injected from the extracted context.
        let mut out = Multi::default();
        TraceContextPropagator::new().inject_context(&cx, &mut out);
        out.get("tracestate").map(str::to_owned)
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
        // §3.3.1.3.1: 1 to 256 characters, with or without `@`.
        let k256 = format!("a{}", "b".repeat(255));
        assert_eq!(state(&[&format!("{k256}=v")]), Some(format!("{k256}=v")));
        assert_eq!(state(&[&format!("{k256}b=v")]), None, "257 characters");
        let at256 = format!("{}@{}", "t".repeat(241), "s".repeat(14));
        assert_eq!(at256.len(), 256);
        assert_eq!(state(&[&format!("{at256}=1")]), Some(format!("{at256}=1")));
        let at257 = format!("{}@{}", "t".repeat(242), "s".repeat(14));
        assert_eq!(
            state(&[&format!("{at257}=1,bar=2")]),
            None,
            "257 characters"
        );
        let late_at = format!("{}@v", "t".repeat(242));
        assert_eq!(
            state(&[&format!("{late_at}=1")]),
            Some(format!("{late_at}=1"))
        );
        assert!(state(&[&format!("a={}", "v".repeat(256))]).is_some());
        assert!(state(&[&format!("a={}", "v".repeat(257))]).is_none());
        let huge = "a=b,".repeat(256 * 1024);
        assert!(state(&[&huge]).is_none(), "1 MB tracestate is dropped");
    }

    #[test]
    fn keys_follow_the_current_grammar() {
        // `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, `@` a keychar.
        for key in [
            "foo@",
            "foo@@bar",
            "foo@bar@baz",
            "1tenant@vendor",
            "0",
            "t@abcdefghijklmn",
            "a-z0_*/@a-z0-9_-*/",
        ] {
            let header = format!("{key}=1,bar=2");
            assert_eq!(state(&[&header]), Some(header.clone()), "{key}");
        }
        // A key must start with a letter or a digit: the header is invalid.
        for bad in [
            "@foo=1,bar=2",
            "_a=1,bar=2",
            "foo.bar=1,bar=2",
            "foo =1,bar=2",
        ] {
            assert_eq!(state(&[bad]), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_the_api_cannot_hold_keep_their_place_while_the_state_is_unchanged() {
        let cx = TraceContextPropagator::new().extract(
            &Multi::default()
                .with("traceparent", TP)
                .with("tracestate", "a=1,foo@@bar=2")
                .with("tracestate", "b=3"),
        );
        let sc = cx.span().span_context().clone();
        assert_eq!(sc.trace_state().header(), "a=1,b=3", "what the API holds");
        let mut out = Multi::default();
        TraceContextPropagator::new().inject_context(&cx, &mut out);
        assert_eq!(out.get("tracestate"), Some("a=1,foo@@bar=2,b=3"));
        // A state changed on the way (here a member added) is sent as the
        // API holds it: the text no longer describes it.
        let changed = sc.trace_state().insert("mine", "x").unwrap();
        let child = SpanContext::new(
            sc.trace_id(),
            SpanId::from(9),
            sc.trace_flags(),
            false,
            changed,
        );
        let mut out = Multi::default();
        TraceContextPropagator::new().inject_context(&cx.with_remote_span_context(child), &mut out);
        assert_eq!(out.get("tracestate"), Some("mine=x,a=1,b=3"));
        // Another trace in the same context never gets the text.
        let other = SpanContext::new(
            TraceId::from(5),
            SpanId::from(9),
            TraceFlags::SAMPLED,
            false,
            sc.trace_state().clone(),
        );
        let mut out = Multi::default();
        TraceContextPropagator::new().inject_context(&cx.with_remote_span_context(other), &mut out);
        assert_eq!(out.get("tracestate"), Some("a=1,b=3"));
    }

    #[test]
    fn duplicated_keys_keep_the_first_member() {
        assert_eq!(state(&["foo=1,foo=1"]).as_deref(), Some("foo=1"));
        assert_eq!(state(&["foo=1,foo=2"]).as_deref(), Some("foo=1"));
        assert_eq!(state(&["foo=1", "foo=1"]).as_deref(), Some("foo=1"));
        assert_eq!(state(&["foo=1", "foo=2"]).as_deref(), Some("foo=1"));
        assert_eq!(
            state(&["a=1,foo=1,b=2", "foo=2,c=3"]).as_deref(),
            Some("a=1,foo=1,b=2,c=3")
        );
        assert_eq!(
            state(&["foo@@x=1,foo@@x=2,a=1"]).as_deref(),
            Some("foo@@x=1,a=1"),
            "also for keys the API cannot hold"
        );
    }

    #[test]
    fn the_random_flag_survives_a_span_the_sampler_dropped() {
        use opentelemetry::trace::{Tracer, TracerProvider as _};
        use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
        let parent_based = || Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
        for (sampler, incoming, outgoing) in [
            (parent_based(), "02", "02"),
            (parent_based(), "03", "03"),
            (parent_based(), "00", "00"),
            (parent_based(), "01", "01"),
            (Sampler::AlwaysOff, "03", "02"),
            (Sampler::AlwaysOff, "01", "00"),
            (Sampler::TraceIdRatioBased(0.0), "03", "02"),
            (Sampler::AlwaysOn, "02", "03"),
        ] {
            let provider = SdkTracerProvider::builder()
                .with_sampler(sampler.clone())
                .build();
            let tracer = provider.tracer("t");
            let tp = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{incoming}");
            let parent =
                TraceContextPropagator::new().extract(&Multi::default().with("traceparent", &tp));
            let span = tracer.start_with_context("server", &parent);
            let cx = parent.with_span(span);
            // A grandchild too: the flag is kept for the whole trace.
            let child = tracer.start_with_context("client", &cx);
            let cx = cx.with_span(child);
            let mut out = Multi::default();
            TraceContextPropagator::new().inject_context(&cx, &mut out);
            let sent = out.get("traceparent").unwrap();
            assert!(
                sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{sent}"
            );
            assert!(
                sent.ends_with(&format!("-{outgoing}")),
                "{sampler:?} {incoming}: {sent}"
            );
        }
    }

    #[test]
    fn a_restarted_trace_does_not_inherit_the_random_flag() {
        use opentelemetry::trace::{Tracer, TracerProvider as _};
        use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .build();
        let tracer = provider.tracer("t");
        // An invalid traceparent (upper case) with the random flag: the
        // trace restarts, and nothing of the caller's is kept.
        let parent = TraceContextPropagator::new().extract(&Multi::default().with(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-02",
        ));
        let cx = parent.with_span(tracer.start_with_context("server", &parent));
        let mut out = Multi::default();
        TraceContextPropagator::new().inject_context(&cx, &mut out);
        let sent = out.get("traceparent").unwrap();
        assert!(!sent.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "{sent}");
        assert!(sent.ends_with("-00"), "{sent}");
    }

    #[test]
    fn invalid_tracestate_is_dropped_but_the_parent_kept() {
        for bad in ["A=1", "a=", "a", "a=\u{7f}", "a=b=c", "k=v,UPPER=1", "=v"] {
            assert_eq!(state(&[bad]), None, "{bad:?}");
        }
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
