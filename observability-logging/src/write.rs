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

/// Writes `s` JSON-escaped, without quotes.
pub(crate) fn json_escape(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
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
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
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
