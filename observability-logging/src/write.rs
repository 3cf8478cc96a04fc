//! Escaping and timestamps, written straight into the line buffer.

use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes `s` as a JSON string, quotes included. Every control character is
/// escaped, so a line never breaks.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    json_escape(out, s);
    out.push('"');
}

/// Whether any of the eight bytes of `word` needs escaping in JSON: a
/// control character (below 0x20, or 0x7f), `"` or `\`. The tests of
/// "Bit Twiddling Hacks" (`hasless`, `hasvalue`), exact for whether any byte
/// matches.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = has_zero(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(word ^ (ONES * u64::from(b'\\')));
    let delete = has_zero(word ^ (ONES * 0x7f));
    (below_space | quote | backslash | delete) & HIGH != 0
}

/// Whether `b` needs escaping in JSON.
fn needs_escape_byte(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b == b'"' || b == b'\\'
}

/// Where the first byte of `bytes` at or after `at` that needs escaping is:
/// looked for eight bytes at a time (the last few padded to a word), byte
/// by byte only in the word that has one.
fn next_escape(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let rest = bytes.get(at..)?;
        let word = match rest.get(..8) {
            Some(eight) => <[u8; 8]>::try_from(eight).ok()?,
            None => {
                let mut padded = [b' '; 8];
                padded[..rest.len()].copy_from_slice(rest);
                padded
            }
        };
        if needs_escape(u64::from_le_bytes(word)) {
            return rest
                .iter()
                .take(8)
                .position(|&b| needs_escape_byte(b))
                .map(|i| at + i);
        }
        if rest.len() <= 8 {
            return None;
        }
        at += 8;
    }
}

/// Writes `s` JSON-escaped, without quotes: the text between the bytes that
/// need escaping is copied as it is (nearly all of a log line).
pub(crate) fn json_escape(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_escape(bytes, start) {
        // `i` is an ASCII byte's: a character boundary, as is `start`.
        out.push_str(&s[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Writes `value` in decimal (what `write!(out, "{value}")` writes, without
/// the formatting machinery, which cost four times as much on every line
/// with a number).
pub(crate) fn push_u64(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend(digits[start..].iter().map(|&d| char::from(d)));
}

/// Writes `value` in decimal, as [`push_u64`].
pub(crate) fn push_i64(out: &mut String, value: i64) {
    if value < 0 {
        out.push('-');
    }
    push_u64(out, value.unsigned_abs());
}

/// A `fmt::Write` that JSON-escapes what is written through it, so `Debug`
/// output goes into the line without a temporary string.
pub(crate) struct JsonEscaper<'a>(pub(crate) &'a mut String);

impl Write for JsonEscaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        json_escape(self.0, s);
        Ok(())
    }
}

/// Whether a logfmt value can be written bare.
fn logfmt_bare(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b > b' ' && b != b'"' && b != b'=' && b != b'\\' && b != 0x7f)
}

/// Writes a logfmt value: bare when safe, else quoted with escapes.
pub(crate) fn logfmt_value(out: &mut String, s: &str) {
    if logfmt_bare(s) {
        out.push_str(s);
    } else {
        json_str(out, s);
    }
}

/// Writes a float as JSON: non-finite values become strings.
pub(crate) fn json_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "\"{v}\"");
    }
}

/// RFC 3339 in UTC with microseconds: `2026-11-22T06:14:03.123456Z`.
pub(crate) fn timestamp(out: &mut String, time: SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let micros = since.subsec_micros();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hour, minute, second) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Written digit by digit: `write!` with padded integers cost about ten
    // times as much, on every line.
    match u32::try_from(y) {
        Ok(year) if year <= 9999 => {
            let mut line = *b"0000-00-00T00:00:00.000000Z";
            for (range, value) in [
                (0..4, year),
                (5..7, m),
                (8..10, d),
                (11..13, hour as u32),
                (14..16, minute as u32),
                (17..19, second as u32),
                (20..26, micros),
            ] {
                let mut value = value;
                for digit in line[range].iter_mut().rev() {
                    *digit = b'0' + (value % 10) as u8;
                    value /= 10;
                }
            }
            if let Ok(text) = std::str::from_utf8(&line) {
                out.push_str(text);
            }
        }
        _ => {
            let _ = write!(
                out,
                "{y:04}-{m:02}-{d:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z"
            );
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn escapes_everything_json_needs() {
        let mut out = String::new();
        json_str(&mut out, "a\"b\\c\nd\re\tf\u{1}g\u{7f}é");
        assert_eq!(out, r#""a\"b\\c\nd\re\tf\u0001g\u007fé""#);
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\re\tf\u{1}g\u{7f}é");
    }

    /// The word-at-a-time search escapes exactly what a byte-by-byte one
    /// does, wherever the characters fall against the words.
    #[test]
    fn escapes_as_a_byte_by_byte_search_does() {
        use proptest::prelude::*;
        fn byte_by_byte(s: &str) -> String {
            let mut out = String::new();
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{0}'..='\u{1f}' | '\u{7f}' => {
                        out.push_str(&format!("\\u{:04x}", u32::from(c)));
                    }
                    c => out.push(c),
                }
            }
            out
        }
        proptest!(|(s in "[a-z \"\\\\\n\t\u{0}-\u{1f}\u{7f}-\u{a0}é€😀]{0,40}")| {
            let mut out = String::new();
            json_escape(&mut out, &s);
            prop_assert_eq!(&out, &byte_by_byte(&s));
        });
        for b in 0u8..=0x7f {
            let word = u64::from_le_bytes([b'a', b'b', b, b'c', b'd', b'e', b'f', b'g']);
            assert_eq!(needs_escape(word), needs_escape_byte(b), "{b:#x}");
        }
        for b in 0x80u8..=0xff {
            assert!(!needs_escape(u64::from_le_bytes([b; 8])), "{b:#x}");
        }
    }

    #[test]
    fn timestamps() {
        let mut out = String::new();
        timestamp(
            &mut out,
            UNIX_EPOCH + Duration::from_micros(1_795_328_043_123_456),
        );
        assert_eq!(out, "2026-11-22T06:14:03.123456Z");
        out.clear();
        timestamp(&mut out, UNIX_EPOCH);
        assert_eq!(out, "1970-01-01T00:00:00.000000Z");
        out.clear();
        timestamp(&mut out, UNIX_EPOCH + Duration::from_secs(951_782_400)); // 2000-02-29
        assert_eq!(out, "2000-02-29T00:00:00.000000Z");
        out.clear();
        timestamp(
            &mut out,
            UNIX_EPOCH + Duration::from_micros(253_402_300_799_999_999),
        );
        assert_eq!(out, "9999-12-31T23:59:59.999999Z");
        out.clear();
        timestamp(&mut out, UNIX_EPOCH + Duration::from_secs(253_402_300_800));
        assert_eq!(out, "10000-01-01T00:00:00.000000Z");
        out.clear();
        timestamp(&mut out, UNIX_EPOCH - Duration::from_secs(1));
        assert_eq!(
            out, "1970-01-01T00:00:00.000000Z",
            "before the epoch: the epoch"
        );
    }

    /// Digit by digit, every time up to the year 9999 reads as `write!`
    /// with padded integers writes it.
    #[test]
    fn timestamps_match_padded_formatting() {
        use proptest::prelude::*;
        proptest!(|(micros in 0u64..253_402_300_800_000_000)| {
            let mut out = String::new();
            timestamp(&mut out, UNIX_EPOCH + Duration::from_micros(micros));
            let secs = micros / 1_000_000;
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let rem = secs % 86_400;
            let expected = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
                rem / 3600,
                (rem % 3600) / 60,
                rem % 60,
                micros % 1_000_000
            );
            prop_assert_eq!(out, expected);
        });
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for value in [0, 1, 9, 10, 42, 99_999, i64::MAX, -1, -10, i64::MIN] {
            let mut out = String::new();
            push_i64(&mut out, value);
            assert_eq!(out, value.to_string());
        }
        for value in [0, 7, 1_000_000, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }

    #[test]
    fn logfmt_values() {
        let mut out = String::new();
        logfmt_value(&mut out, "plain");
        out.push(' ');
        logfmt_value(&mut out, "has space");
        out.push(' ');
        logfmt_value(&mut out, "");
        assert_eq!(out, r#"plain "has space" """#);
    }
}
