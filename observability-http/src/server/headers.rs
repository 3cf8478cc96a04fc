//! The request headers the server layer reads, found in one pass over the
//! header map.
//!
//! A request needs up to ten named headers (three for propagation, the
//! content type, and six for the span's attributes). Looking each up hashes
//! its name; walking the map once and comparing names costs less for any
//! usual number of headers, and the propagators are served from the same
//! pass.

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use observability_propagation::W3cHeaders;
use opentelemetry::propagation::Extractor;

use crate::propagation::{all_values, first_value};

/// The first value of a header, and whether there were more.
#[derive(Clone, Copy, Debug, Default)]
struct Found<'a> {
    first: Option<&'a HeaderValue>,
    repeated: bool,
}

impl<'a> Found<'a> {
    fn add(&mut self, value: &'a HeaderValue) {
        if self.first.is_some() {
            self.repeated = true;
        } else {
            self.first = Some(value);
        }
    }
}

/// The headers of one request that the server layer reads.
#[derive(Debug)]
pub(crate) struct RequestHeaders<'a> {
    map: &'a HeaderMap,
    traceparent: Found<'a>,
    tracestate: Found<'a>,
    baggage: Found<'a>,
    content_type: Option<&'a HeaderValue>,
    host: Option<&'a HeaderValue>,
    user_agent: Option<&'a HeaderValue>,
    forwarded: Option<&'a HeaderValue>,
    x_forwarded_proto: Option<&'a HeaderValue>,
    x_forwarded_host: Option<&'a HeaderValue>,
    x_forwarded_for: Option<&'a HeaderValue>,
}

/// The first value of a header as text (`None` when absent or not visible
/// ASCII).
fn text(value: Option<&HeaderValue>) -> Option<&str> {
    value.and_then(|v| v.to_str().ok())
}

impl<'a> RequestHeaders<'a> {
    // Inlined into the server's `call`, its one caller: the result is then
    // built in place rather than copied out (about 20 instructions a
    // request).
    #[inline(always)]
    pub(crate) fn scan(map: &'a HeaderMap) -> Self {
        let mut out = Self {
            map,
            traceparent: Found::default(),
            tracestate: Found::default(),
            baggage: Found::default(),
            content_type: None,
            host: None,
            user_agent: None,
            forwarded: None,
            x_forwarded_proto: None,
            x_forwarded_host: None,
            x_forwarded_for: None,
        };
        for (name, value) in map {
            // The standard names compare by their tag, without their text.
            let slot = if name == header::HOST {
                &mut out.host
            } else if name == header::USER_AGENT {
                &mut out.user_agent
            } else if name == header::CONTENT_TYPE {
                &mut out.content_type
            } else if name == header::FORWARDED {
                &mut out.forwarded
            } else {
                match name.as_str() {
                    "traceparent" => {
                        out.traceparent.add(value);
                        continue;
                    }
                    "tracestate" => {
                        out.tracestate.add(value);
                        continue;
                    }
                    "baggage" => {
                        out.baggage.add(value);
                        continue;
                    }
                    "x-forwarded-proto" => &mut out.x_forwarded_proto,
                    "x-forwarded-host" => &mut out.x_forwarded_host,
                    "x-forwarded-for" => &mut out.x_forwarded_for,
                    _ => continue,
                }
            };
            slot.get_or_insert(value);
        }
        out
    }

    /// Whether the request is gRPC (`content-type: application/grpc...`).
    #[inline]
    pub(crate) fn is_grpc(&self) -> bool {
        crate::grpc::is_grpc_content_type(self.content_type)
    }

    /// `Host`, not yet read as text.
    #[inline]
    pub(crate) fn host_value(&self) -> Option<&'a HeaderValue> {
        self.host
    }

    #[inline]
    pub(crate) fn user_agent(&self) -> Option<&'a str> {
        text(self.user_agent)
    }

    #[inline]
    pub(crate) fn forwarded(&self) -> Option<&'a str> {
        text(self.forwarded)
    }

    #[inline]
    pub(crate) fn x_forwarded_proto(&self) -> Option<&'a str> {
        self.x_forwarded_proto.and_then(first_element)
    }

    #[inline]
    pub(crate) fn x_forwarded_host(&self) -> Option<&'a str> {
        self.x_forwarded_host.and_then(first_element)
    }

    #[inline]
    pub(crate) fn x_forwarded_for(&self) -> Option<&'a str> {
        self.x_forwarded_for.and_then(first_element)
    }

    /// The values of the W3C propagators' headers, when each is there at
    /// most once and as text; `None` sends the request through the
    /// propagator's carrier, which sees every value.
    pub(crate) fn w3c(&self) -> Option<W3cHeaders<'a>> {
        /// The value as text: `to_str` (visible ASCII) where the parser
        /// accepts any text, UTF-8 (checked a word at a time) where the
        /// parser accepts visible ASCII only and so answers the same.
        fn single(found: Found<'_>, visible_only: bool) -> Option<Option<&str>> {
            match found {
                Found { first: None, .. } => Some(None),
                Found {
                    first: Some(value),
                    repeated: false,
                } if visible_only => value.to_str().ok().map(Some),
                Found {
                    first: Some(value),
                    repeated: false,
                } => std::str::from_utf8(value.as_bytes()).ok().map(Some),
                Found { repeated: true, .. } => None,
            }
        }
        Some(W3cHeaders {
            // Trace Context accepts lowercase hex, `-`, and in `tracestate`
            // printable ASCII only: other text is refused as the carrier's
            // empty string would be.
            traceparent: match self.traceparent {
                Found { repeated: true, .. } => return None,
                Found { first, .. } => first.map(HeaderValue::as_bytes),
            },
            tracestate: single(self.tracestate, false)?,
            // Baggage values are not checked character by character.
            baggage: single(self.baggage, true)?,
        })
    }

    /// The scan's record of a header the propagators ask for.
    fn propagation(&self, key: &str) -> Option<Found<'a>> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => Some(self.tracestate),
            "baggage" => Some(self.baggage),
            _ => None,
        }
    }
}

/// The first element of a comma-separated header value.
fn first_element(value: &HeaderValue) -> Option<&str> {
    value
        .to_str()
        .ok()?
        .split(',')
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Answers the propagators exactly as
/// [`HeaderExtractor`](crate::HeaderExtractor) does (every value
/// of a repeated header, invalid text as an empty string), from the scan
/// where it can.
impl Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.propagation(key) {
            Some(found) => text(found.first),
            None => first_value(self.map, key),
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.map.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        match self.propagation(key) {
            Some(Found { first: None, .. }) => None,
            Some(Found {
                first: Some(value),
                repeated: false,
            }) => Some(vec![value.to_str().unwrap_or("")]),
            _ => all_values(self.map, key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagation::HeaderExtractor;

    fn map(pairs: &[(&'static str, &'static [u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        h
    }

    #[test]
    fn answers_like_the_header_extractor() {
        let h = map(&[
            ("traceparent", b"a"),
            ("tracestate", b"x=1"),
            ("tracestate", b"y=2"),
            ("baggage", b"\xff"),
            ("x-other", b"o"),
        ]);
        let scanned = RequestHeaders::scan(&h);
        let plain = HeaderExtractor(&h);
        for key in [
            "traceparent",
            "tracestate",
            "baggage",
            "x-other",
            "X-Other",
            "missing",
        ] {
            assert_eq!(scanned.get(key), plain.get(key), "get {key}");
            assert_eq!(scanned.get_all(key), plain.get_all(key), "get_all {key}");
        }
        let mut keys = scanned.keys();
        keys.sort_unstable();
        assert_eq!(keys, ["baggage", "traceparent", "tracestate", "x-other"]);
    }

    #[test]
    fn repeated_traceparent_is_seen() {
        let h = map(&[("traceparent", b"a"), ("traceparent", b"b")]);
        assert_eq!(
            RequestHeaders::scan(&h).get_all("traceparent"),
            Some(vec!["a", "b"])
        );
    }

    #[test]
    fn first_values_of_attribute_headers() {
        let h = map(&[
            ("host", b"example.com:8080"),
            ("host", b"other"),
            ("user-agent", b"curl/8"),
            ("content-type", b"application/grpc+proto"),
            ("x-forwarded-proto", b" https , http"),
            ("x-forwarded-host", b""),
            ("x-forwarded-for", b"203.0.113.9, 10.0.0.1"),
            ("forwarded", b"for=192.0.2.60"),
        ]);
        let s = RequestHeaders::scan(&h);
        assert_eq!(text(s.host_value()), Some("example.com:8080"));
        assert_eq!(s.user_agent(), Some("curl/8"));
        assert!(s.is_grpc());
        assert_eq!(s.x_forwarded_proto(), Some("https"));
        assert_eq!(s.x_forwarded_host(), None);
        assert_eq!(s.x_forwarded_for(), Some("203.0.113.9"));
        assert_eq!(s.forwarded(), Some("for=192.0.2.60"));
        assert!(!RequestHeaders::scan(&HeaderMap::new()).is_grpc());
    }

    proptest::proptest! {
        /// For any headers, the scan answers every key as the plain
        /// extractor does.
        #[test]
        fn scan_agrees_with_the_header_extractor(
            headers in proptest::collection::vec(
                (0usize..6, proptest::collection::vec(
                    proptest::prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, proptest::strategy::Just(b'\t')],
                    0..12,
                )),
                0..8,
            )
        ) {
            const NAMES: [&str; 6] =
                ["traceparent", "tracestate", "baggage", "host", "x-other", "content-type"];
            let mut h = HeaderMap::new();
            for (name, value) in &headers {
                h.append(NAMES[*name], HeaderValue::from_bytes(value).unwrap());
            }
            let scanned = RequestHeaders::scan(&h);
            let plain = HeaderExtractor(&h);
            for key in NAMES.iter().chain(&["missing", "TraceParent"]) {
                proptest::prop_assert_eq!(scanned.get(key), plain.get(key));
                proptest::prop_assert_eq!(scanned.get_all(key), plain.get_all(key));
            }
            proptest::prop_assert_eq!(
                text(scanned.host_value()),
                h.get("host").and_then(|v| v.to_str().ok())
            );
        }
    }
}
