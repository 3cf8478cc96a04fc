//! Semantic-convention attribute values shared by the server and client
//! sides: method normalisation, address parsing, URL redaction.

use std::borrow::Cow;

use http::{HeaderMap, Method, Version};
use observability_propagation::starter::HttpServerRequest;
use opentelemetry::{Key, KeyValue, StringValue, Value};

// The keys a server request also has are `HttpServerRequest`'s.
pub(crate) const HTTP_REQUEST_METHOD: Key = Key::from_static_str(HttpServerRequest::METHOD);
pub(crate) const HTTP_REQUEST_METHOD_ORIGINAL: Key =
    Key::from_static_str(HttpServerRequest::METHOD_ORIGINAL);
pub(crate) const HTTP_RESPONSE_STATUS_CODE: Key =
    Key::from_static_str(HttpServerRequest::STATUS_CODE);
pub(crate) const HTTP_ROUTE: Key = Key::from_static_str(HttpServerRequest::ROUTE);
pub(crate) const URL_SCHEME: Key = Key::from_static_str(HttpServerRequest::SCHEME);
pub(crate) const URL_FULL: Key = Key::from_static_str("url.full");
pub(crate) const SERVER_ADDRESS: Key = Key::from_static_str(HttpServerRequest::SERVER_ADDRESS);
pub(crate) const SERVER_PORT: Key = Key::from_static_str(HttpServerRequest::SERVER_PORT);
pub(crate) const ERROR_TYPE: Key = Key::from_static_str("error.type");
pub(crate) const RPC_SYSTEM: Key = Key::from_static_str("rpc.system");
pub(crate) const RPC_SERVICE: Key = Key::from_static_str("rpc.service");
pub(crate) const RPC_METHOD: Key = Key::from_static_str("rpc.method");
pub(crate) const RPC_GRPC_STATUS_CODE: Key = Key::from_static_str("rpc.grpc.status_code");

/// Values of these query keys are replaced by `REDACTED`, compared after
/// percent-decoding and ignoring case: the HTTP semantic conventions' list
/// (`AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`) plus the usual
/// credentials.
pub const SENSITIVE_QUERY_KEYS: &[&str] = &[
    "awsaccesskeyid",
    "signature",
    "sig",
    "x-goog-signature",
    "x-goog-credential",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "jwt",
    "api_key",
    "apikey",
    "key",
    "auth",
    "authorization",
    "code",
    "session",
    "session_id",
    "sessionid",
    "sid",
];

/// Key endings that are redacted whatever comes before them
/// (`github_token`, `db_password`, `stripe-secret`, `signing_key`).
const SENSITIVE_SUFFIXES: &[&str] = &[
    "_token",
    "-token",
    "_secret",
    "-secret",
    "_password",
    "-password",
    "_signature",
    "-signature",
    "_key",
    "-key",
];

/// Which query values are redacted: [`SENSITIVE_QUERY_KEYS`], keys ending in
/// `_token`, `_secret`, `_password`, `_signature` or `_key` (or with `-`),
/// and the keys a layer's builder adds.
#[derive(Clone, Debug, Default)]
pub(crate) struct QueryRedaction {
    /// More keys, lowercase.
    extra: Vec<String>,
}

impl QueryRedaction {
    /// Adds keys (compared ignoring case).
    pub(crate) fn add<I, K>(&mut self, keys: I)
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        self.extra
            .extend(keys.into_iter().map(|k| k.as_ref().to_ascii_lowercase()));
    }

    /// Whether the value of `raw_key` (as written in the query) is redacted.
    pub(crate) fn is_sensitive(&self, raw_key: &str) -> bool {
        let decoded = decode_query_component(raw_key);
        let key = decoded.trim();
        let lower;
        let key = if key.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = key.to_ascii_lowercase();
            lower.as_str()
        } else {
            key
        };
        SENSITIVE_QUERY_KEYS.contains(&key)
            || SENSITIVE_SUFFIXES.iter().any(|s| key.ends_with(s))
            || self.extra.iter().any(|k| k == key)
    }
}

/// A query key as the server reads it: `+` is a space, `%XX` a byte
/// (malformed escapes are kept as written; bytes that are not UTF-8 are
/// replaced).
fn decode_query_component(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The span name of a request before anything more is known: the method
/// as the conventions name it, or `HTTP` for a method outside their list
/// (`http.request.method` is then `_OTHER`).
pub(crate) fn span_name_of_method(method: &'static str) -> &'static str {
    if method == "_OTHER" { "HTTP" } else { method }
}

/// The port a scheme implies (`server.port` when the URL does not say).
pub(crate) fn default_port(scheme: Option<&str>) -> Option<u16> {
    match scheme {
        Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
        Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
        _ => None,
    }
}

/// Headers whose values are never recorded.
pub(crate) const NEVER_RECORDED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// The method as the conventions name it: one of the nine known methods, or
/// `_OTHER` with the original kept.
#[inline]
pub(crate) fn method(method: &Method) -> (&'static str, Option<String>) {
    let known = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => return ("_OTHER", Some(method.as_str().to_owned())),
    };
    (known, None)
}

pub(crate) fn protocol_version(version: Version) -> Option<&'static str> {
    Some(match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => return None,
    })
}

/// An IP address as shared text; IPv4 (the usual peer) without the
/// formatting machinery and with a single allocation.
pub(crate) fn ip_text(ip: std::net::IpAddr) -> std::sync::Arc<str> {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string().into();
    };
    let mut buf = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            buf[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            buf[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        buf[len] = b'0' + octet % 10;
        len += 1;
    }
    // Only ASCII digits and dots were written.
    std::str::from_utf8(&buf[..len]).unwrap_or_default().into()
}

/// Splits `host[:port]`, including `[v6]:port`.
pub(crate) fn split_host_port(authority: &str) -> (&str, Option<u16>) {
    let authority = authority.trim();
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port);
        }
        return (authority, None);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (authority, None),
        },
        _ => (authority, None),
    }
}

/// The parameters of the first element of a `Forwarded` header (RFC 7239).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Forwarded<'a> {
    pub(crate) proto: Option<&'a str>,
    pub(crate) host: Option<&'a str>,
    pub(crate) for_: Option<&'a str>,
}

impl<'a> Forwarded<'a> {
    /// Parses a `Forwarded` header value (`None` when there is none).
    // Inlined: a request without the header (most) only tests for it.
    #[inline]
    pub(crate) fn parse(value: Option<&'a str>) -> Self {
        value.map(Self::parse_value).unwrap_or_default()
    }

    /// Parses a `Forwarded` header value that is there.
    fn parse_value(value: &'a str) -> Self {
        let mut out = Forwarded::default();
        let first = value.split(',').next().unwrap_or_default();
        for pair in first.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            let slot = match k.trim() {
                k if k.eq_ignore_ascii_case("proto") => &mut out.proto,
                k if k.eq_ignore_ascii_case("host") => &mut out.host,
                k if k.eq_ignore_ascii_case("for") => &mut out.for_,
                _ => continue,
            };
            slot.get_or_insert(v);
        }
        out
    }
}

/// The query with values of sensitive keys replaced by `REDACTED` (the
/// default rules).
#[cfg(test)]
pub(crate) fn redact_query(query: &str) -> Cow<'_, str> {
    redact_query_with(query, &QueryRedaction::default())
}

/// The query with values of the keys `rules` calls sensitive replaced by
/// `REDACTED`.
pub(crate) fn redact_query_with<'q>(query: &'q str, rules: &QueryRedaction) -> Cow<'q, str> {
    let key_of = |pair: &'q str| pair.split_once('=').map_or(pair, |(k, _)| k);
    if !query
        .split('&')
        .any(|pair| rules.is_sensitive(key_of(pair)))
    {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((k, _)) if rules.is_sensitive(k) => {
                out.push_str(k);
                out.push_str("=REDACTED");
            }
            _ => out.push_str(pair),
        }
    }
    Cow::Owned(out)
}

/// `url.full` for a request URI that has a scheme: user info replaced by
/// `REDACTED:REDACTED` and sensitive query values redacted, written once at
/// its final size.
pub(crate) fn full_url(uri: &http::Uri, rules: &QueryRedaction) -> Option<String> {
    let scheme = uri.scheme_str()?;
    let authority = uri.authority().map_or("", http::uri::Authority::as_str);
    let (credentials, host) = match authority.rsplit_once('@') {
        Some((_, host)) => ("REDACTED:REDACTED@", host),
        None => ("", authority),
    };
    let path = uri.path();
    let query = uri.query().map(|q| redact_query_with(q, rules));
    let parts = [scheme, "://", credentials, host, path];
    let size =
        parts.iter().map(|p| p.len()).sum::<usize>() + query.as_ref().map_or(0, |q| q.len() + 1);
    let mut out = String::with_capacity(size);
    parts.iter().for_each(|p| out.push_str(p));
    if let Some(query) = query {
        out.push('?');
        out.push_str(&query);
    }
    Some(out)
}

/// A full URL with user info replaced by `REDACTED:REDACTED` and sensitive
/// query values redacted.
#[cfg(test)]
pub(crate) fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = match authority.rsplit_once('@') {
                Some((_, host)) => format!("REDACTED:REDACTED@{host}"),
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => before_query.to_owned(),
    };
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_query(q));
    }
    out
}

/// `http.request.header.<name>` / `http.response.header.<name>` as a string
/// array, or `None` when the header is absent or must never be recorded.
pub(crate) fn header_attribute(
    prefix: &'static str,
    name: &str,
    headers: &HeaderMap,
) -> Option<KeyValue> {
    if NEVER_RECORDED_HEADERS
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
    {
        return None;
    }
    let values: Vec<StringValue> = headers
        .get_all(name)
        .iter()
        .map(|v| StringValue::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(KeyValue::new(
        format!("{prefix}{}", name.to_ascii_lowercase()),
        Value::Array(values.into()),
    ))
}

/// A low-cardinality name for a transport error: what kind of failure it
/// was when that can be told (`connection_refused`, `timeout`, ...), else
/// the error type's name.
pub(crate) fn error_type<E: std::fmt::Debug + std::fmt::Display>(error: &E) -> String {
    let text = format!("{error} {error:?}").to_ascii_lowercase();
    let known = [
        ("connectionrefused", "connection_refused"),
        ("connection refused", "connection_refused"),
        ("connectionreset", "connection_reset"),
        ("connection reset", "connection_reset"),
        ("timed out", "timeout"),
        ("timedout", "timeout"),
        ("timeout", "timeout"),
        ("dns error", "dns"),
        ("failed to lookup address", "dns"),
        ("certificate", "tls"),
        ("tls", "tls"),
        ("connect", "connect"),
    ];
    if let Some((_, kind)) = known.iter().find(|(needle, _)| text.contains(needle)) {
        return (*kind).to_owned();
    }
    let full = std::any::type_name::<E>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(method(&Method::GET), ("GET", None));
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method(&custom), ("_OTHER", Some("PURGE".into())));
    }

    #[test]
    fn ip_texts() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "192.168.1.9",
            "::1",
            "2001:db8::7",
        ] {
            let parsed: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(&*ip_text(parsed), ip);
        }
    }

    #[test]
    fn host_ports() {
        assert_eq!(
            split_host_port("example.com:8080"),
            ("example.com", Some(8080))
        );
        assert_eq!(split_host_port("example.com"), ("example.com", None));
        assert_eq!(split_host_port("[::1]:80"), ("::1", Some(80)));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
    }

    #[test]
    fn forwarded() {
        assert_eq!(
            Forwarded::parse(Some(
                "for=192.0.2.60;proto=https;host=\"api.example.com:8443\", for=198.51.100.17"
            )),
            Forwarded {
                proto: Some("https"),
                host: Some("api.example.com:8443"),
                for_: Some("192.0.2.60"),
            }
        );
        assert_eq!(Forwarded::parse(None), Forwarded::default());
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_query("a=1&b=2"), "a=1&b=2");
        assert_eq!(
            redact_query("q=shoes&token=abc&Signature=x&sig"),
            "q=shoes&token=REDACTED&Signature=REDACTED&sig"
        );
        assert_eq!(
            redact_url("https://user:pw@example.com:8443/a/b?api_key=k&x=1"),
            "https://REDACTED:REDACTED@example.com:8443/a/b?api_key=REDACTED&x=1"
        );
        assert_eq!(redact_url("http://example.com"), "http://example.com");
        // Keys are compared as the server reads them: decoded, any case.
        for query in [
            "tok%65n=secret",
            "TOKEN=secret",
            "access%5Ftoken=secret",
            "session+id=x&session_id=secret",
            "jwt=secret",
            "AWSAccessKeyId=secret",
            "X-Goog-Signature=secret",
            "github_token=secret",
            "db-password=secret",
        ] {
            let redacted = redact_query(query);
            assert!(!redacted.contains("=secret"), "{query} -> {redacted}");
        }
        assert_eq!(
            redact_query("%zz=1&a=%"),
            "%zz=1&a=%",
            "malformed escapes are kept"
        );
        let mut rules = QueryRedaction::default();
        rules.add(["Tenant"]);
        assert_eq!(
            redact_query_with("tenant=acme&q=1", &rules),
            "tenant=REDACTED&q=1"
        );
        assert_eq!(redact_query("tenant=acme"), "tenant=acme");
    }

    #[test]
    fn full_urls_from_request_uris() {
        let full = |text: &str| full_url(&text.parse().unwrap(), &QueryRedaction::default());
        assert_eq!(
            full("https://user:pw@example.com:8443/a/b?api_key=k&x=1").as_deref(),
            Some("https://REDACTED:REDACTED@example.com:8443/a/b?api_key=REDACTED&x=1")
        );
        assert_eq!(
            full("http://example.com").as_deref(),
            Some("http://example.com/")
        );
        assert_eq!(
            full("http://example.com?q=1").as_deref(),
            Some("http://example.com/?q=1")
        );
        assert_eq!(full("/only/a/path"), None);
        let url = full("http://a.example/x?token=t").unwrap();
        assert_eq!(url.len(), url.capacity(), "written at its final size");
    }

    proptest::proptest! {
        /// The URI's own text, redacted as text, is what `full_url` writes.
        #[test]
        fn full_url_is_the_redacted_uri_text(
            scheme in "https?",
            user in proptest::option::of("[a-z]{1,6}(:[a-z0-9]{0,6})?"),
            host in "[a-z][a-z0-9.-]{0,20}",
            port in proptest::option::of(1u16..),
            path in "(/[a-zA-Z0-9._~%-]{0,8}){0,4}",
            query in proptest::option::of("[a-zA-Z_]{1,8}(=[a-z0-9%]{0,6})?(&[a-zA-Z_]{1,8}(=[a-z0-9]{0,6})?){0,3}"),
        ) {
            let mut text = format!("{scheme}://");
            if let Some(user) = &user {
                text.push_str(user);
                text.push('@');
            }
            text.push_str(&host);
            if let Some(port) = port {
                text.push_str(&format!(":{port}"));
            }
            text.push_str(&path);
            if let Some(query) = &query {
                text.push('?');
                text.push_str(query);
            }
            let uri: http::Uri = text.parse().unwrap();
            proptest::prop_assert_eq!(
                full_url(&uri, &QueryRedaction::default()),
                Some(redact_url(&uri.to_string()))
            );
        }
    }

    #[test]
    fn headers_never_recorded() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer x".parse().unwrap());
        h.append("x-request-id", "a".parse().unwrap());
        h.append("x-request-id", "b".parse().unwrap());
        assert!(header_attribute("http.request.header.", "Authorization", &h).is_none());
        let kv = header_attribute("http.request.header.", "X-Request-Id", &h).unwrap();
        assert_eq!(kv.key.as_str(), "http.request.header.x-request-id");
        assert_eq!(kv.value.to_string(), r#"["a","b"]"#);
    }
}
