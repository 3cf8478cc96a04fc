use std::fmt::Write as _;

use opentelemetry::Context;
use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};

use crate::percent_decode;

const BAGGAGE: &str = "baggage";
/// W3C Baggage: a propagator must accept at least 64 members and 8192 bytes;
/// more than that is not read at all, so oversized input costs bounded work.
const MAX_BYTES: usize = 8192;
const MAX_MEMBERS: usize = 64;

/// A W3C Baggage propagator that reads every `baggage` header value, keeps
/// within the specification's limits (64 members, 8192 bytes), skips
/// malformed members, and percent-encodes values it writes.
#[derive(Clone, Debug, Default)]
pub struct BaggagePropagator {
    _private: (),
}

impl BaggagePropagator {
    /// A new propagator.
    pub fn new() -> Self {
        Self::default()
    }
}

fn fields() -> &'static [String] {
    use std::sync::OnceLock;
    static NAMES: OnceLock<[String; 1]> = OnceLock::new();
    NAMES.get_or_init(|| [BAGGAGE.to_owned()])
}

/// `token` characters of RFC 9110, the allowed baggage key characters.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl TextMapPropagator for BaggagePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let baggage = cx.baggage();
        if baggage.is_empty() {
            return;
        }
        let mut header = String::new();
        for (key, (value, metadata)) in baggage.iter() {
            let mut member = String::new();
            member.push_str(key.as_str());
            member.push('=');
            percent_encode(value.as_str(), &mut member);
            if !metadata.as_str().is_empty() {
                member.push(';');
                member.push_str(metadata.as_str());
            }
            if header.len() + member.len() + 1 > MAX_BYTES {
                continue;
            }
            if !header.is_empty() {
                header.push(',');
            }
            header.push_str(&member);
        }
        if !header.is_empty() {
            injector.set(BAGGAGE, header);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get_all(BAGGAGE) {
            Some(values) => extract_values(cx, &values),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(fields())
    }
}

/// `cx` with the baggage these `baggage` header values hold, if any.
pub(crate) fn extract_values(cx: &Context, values: &[&str]) -> Context {
    let total: usize = values.iter().map(|v| v.len() + 1).sum();
    if total > MAX_BYTES + 1 {
        return cx.clone();
    }
    let mut baggage = Baggage::new();
    let mut count = 0;
    for member in values.iter().flat_map(|v| v.split(',')) {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        if count == MAX_MEMBERS {
            break;
        }
        let (pair, metadata) = member.split_once(';').unwrap_or((member, ""));
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let key = key.trim_matches([' ', '\t']);
        let value = value.trim_matches([' ', '\t']);
        if !is_token(key) {
            continue;
        }
        let Some(value) = percent_decode(value) else {
            continue;
        };
        baggage.insert_with_metadata(key.to_owned(), value, metadata);
        count += 1;
    }
    if baggage.is_empty() {
        cx.clone()
    } else {
        cx.with_baggage(baggage)
    }
}

fn percent_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!#$&'()*+/:<>?@[]^`{|}".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(values: &[&str]) -> Context {
        struct C<'a>(&'a [&'a str]);
        impl Extractor for C<'_> {
            fn get(&self, key: &str) -> Option<&str> {
                (key == BAGGAGE).then(|| self.0.first().copied()).flatten()
            }
            fn keys(&self) -> Vec<&str> {
                vec![BAGGAGE]
            }
            fn get_all(&self, key: &str) -> Option<Vec<&str>> {
                (key == BAGGAGE && !self.0.is_empty()).then(|| self.0.to_vec())
            }
        }
        BaggagePropagator::new().extract(&C(values))
    }

    #[test]
    fn members_from_every_header_are_read_and_decoded() {
        let cx = extract(&["user=alice, note=a%2Cb%20c;prop=1", "tenant = t1"]);
        let b = cx.baggage();
        assert_eq!(b.get("user").map(|v| v.as_str()), Some("alice"));
        assert_eq!(b.get("note").map(|v| v.as_str()), Some("a,b c"));
        assert_eq!(b.get("tenant").map(|v| v.as_str()), Some("t1"));
        assert_eq!(b.get_with_metadata("note").unwrap().1.as_str(), "prop=1");
    }

    #[test]
    fn malformed_members_are_skipped() {
        let cx = extract(&["ok=1,novalue,bad key=2,k=%zz,=x"]);
        let b = cx.baggage();
        assert_eq!(b.len(), 1);
        assert_eq!(b.get("ok").map(|v| v.as_str()), Some("1"));
    }

    #[test]
    fn limits() {
        let many: Vec<String> = (0..100).map(|i| format!("k{i}=v")).collect();
        assert_eq!(extract(&[&many.join(",")]).baggage().len(), 64);
        let huge = format!("k={}", "v".repeat(1 << 20));
        assert!(
            extract(&[&huge]).baggage().is_empty(),
            "1 MB baggage is dropped unread"
        );
    }

    #[test]
    fn inject_encodes_values() {
        let cx = Context::new().with_baggage(vec![opentelemetry::KeyValue::new("k", "a b,c")]);
        let mut out: HashMap<String, String> = HashMap::new();
        BaggagePropagator::new().inject_context(&cx, &mut out);
        assert_eq!(out.get("baggage").map(String::as_str), Some("k=a%20b%2Cc"));
        assert_eq!(
            extract(&[out["baggage"].as_str()])
                .baggage()
                .get("k")
                .map(|v| v.as_str()),
            Some("a b,c")
        );
    }
}
