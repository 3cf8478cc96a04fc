//! Carriers between `http::HeaderMap` and the OpenTelemetry propagators.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};

/// Reads trace context from request headers. [`Extractor::get_all`] returns
/// every value of a header, so a repeated `traceparent` is seen (and
/// rejected by a strict propagator) and repeated `tracestate` or `baggage`
/// headers are joined.
#[derive(Debug, Clone, Copy)]
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

/// The header names propagators ask for, parsed once: a lookup by a
/// `HeaderName` skips parsing and lower-casing the name on every request.
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
static BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// The parsed name of a header the propagators use.
fn propagation_name(key: &str) -> Option<&'static HeaderName> {
    match key {
        "traceparent" => Some(&TRACEPARENT),
        "tracestate" => Some(&TRACESTATE),
        "baggage" => Some(&BAGGAGE),
        _ => None,
    }
}

/// Every value of header `key`.
fn values<'a>(headers: &'a HeaderMap, key: &str) -> http::header::GetAll<'a, HeaderValue> {
    match propagation_name(key) {
        Some(name) => headers.get_all(name),
        None => headers.get_all(key),
    }
}

/// The first value of header `key` as text.
pub(crate) fn first_value<'a>(headers: &'a HeaderMap, key: &str) -> Option<&'a str> {
    values(headers, key)
        .iter()
        .next()
        .and_then(|v| v.to_str().ok())
}

/// Every value of header `key`; `None` when there is none.
pub(crate) fn all_values<'a>(headers: &'a HeaderMap, key: &str) -> Option<Vec<&'a str>> {
    let mut values = values(headers, key).iter().peekable();
    values.peek()?;
    // A value that is not visible ASCII cannot be valid trace context; it
    // is kept as an empty string so that a count of values stays right.
    Some(values.map(|v| v.to_str().unwrap_or("")).collect())
}

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        first_value(self.0, key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        all_values(self.0, key)
    }
}

/// Writes trace context into request or response headers.
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    /// Sets header `key`, replacing any value it had. A name or value that
    /// is not valid in HTTP is skipped. The value's bytes become the
    /// header's without a copy.
    fn set(&mut self, key: &str, value: String) {
        let name = match propagation_name(key) {
            Some(name) => name.clone(),
            None => match HeaderName::from_bytes(key.as_bytes()) {
                Ok(name) => name,
                Err(_) => return,
            },
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            self.0.insert(name, value);
        }
    }
}

/// Injects `cx` (usually [`Context::current`]) into `headers` with the global
/// propagator: the call to make before sending any outgoing request that the
/// client layer does not see.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// observability_http::inject_context(&opentelemetry::Context::current(), &mut headers);
/// ```
pub fn inject_context(cx: &Context, headers: &mut HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(cx, &mut HeaderInjector(headers));
    });
}

/// Injects the current context into `headers` (see [`inject_context`]).
pub fn inject_current_context(headers: &mut HeaderMap) {
    inject_context(&Context::current(), headers);
}

/// The context the global propagator finds in `headers`, on top of an empty
/// context: a remote parent, or nothing (a malformed header yields nothing,
/// never an error).
pub fn extract_context(headers: &HeaderMap) -> Context {
    extract_from(&HeaderExtractor(headers))
}

/// The context the global propagator finds through `carrier`.
pub(crate) fn extract_from(carrier: &dyn Extractor) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| {
        p.extract_with_context(&Context::new(), carrier)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_all_sees_every_value() {
        let mut h = HeaderMap::new();
        h.append("tracestate", HeaderValue::from_static("a=1"));
        h.append("tracestate", HeaderValue::from_static("b=2"));
        h.append("x", HeaderValue::from_bytes(b"\xff").unwrap());
        let e = HeaderExtractor(&h);
        assert_eq!(e.get_all("tracestate"), Some(vec!["a=1", "b=2"]));
        assert_eq!(e.get_all("x"), Some(vec![""]));
        assert_eq!(e.get_all("missing"), None);
        assert_eq!(e.get("tracestate"), Some("a=1"));
    }

    #[test]
    fn injector_skips_invalid_values() {
        let mut h = HeaderMap::new();
        HeaderInjector(&mut h).set("traceparent", "ok".into());
        HeaderInjector(&mut h).set("bad", "line\nbreak".into());
        HeaderInjector(&mut h).set("bad name", "value".into());
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn injector_replaces_values_under_normalised_names() {
        let mut h = HeaderMap::new();
        h.append("traceparent", HeaderValue::from_static("old-1"));
        h.append("traceparent", HeaderValue::from_static("old-2"));
        HeaderInjector(&mut h).set("traceparent", "new".into());
        HeaderInjector(&mut h).set("tracestate", "a=1".into());
        HeaderInjector(&mut h).set("baggage", "k=v".into());
        HeaderInjector(&mut h).set("X-Amzn-Trace-Id", "Root=1".into());
        let all = |name: &str| -> Vec<&str> {
            h.get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(all("traceparent"), ["new"]);
        assert_eq!(all("tracestate"), ["a=1"]);
        assert_eq!(all("baggage"), ["k=v"]);
        assert_eq!(all("x-amzn-trace-id"), ["Root=1"]);
        assert_eq!(h.len(), 4);
    }
}
