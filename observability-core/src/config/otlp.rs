//! OTLP: protocol, endpoint, headers, compression and timeout, for each
//! signal from its own variables and the generic ones.

use std::time::Duration;

use super::CodeSettings;
use super::batch::bounded_millis;
use crate::env::{self, Env, Warnings, parse_bool};

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/gRPC (default port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318), the
    /// specification's default.
    HttpProtobuf,
}

impl Protocol {
    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "grpc" => Some(Self::Grpc),
            "http/protobuf" => Some(Self::HttpProtobuf),
            _ => None,
        }
    }
}

/// The OTLP exporter's resolved settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OtlpSettings {
    pub(crate) protocol: Protocol,
    pub(crate) endpoint: Endpoint,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) gzip: bool,
    pub(crate) timeout: Duration,
}

pub(super) const DEFAULT_HTTP_BASE: &str = "http://localhost:4318";

pub(super) const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";

/// An OTLP endpoint, checked and taken apart once: every later step (the
/// protocol inference, the sinks, the log exporter) reads it from here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    text: String,
    https: bool,
    port: Option<u16>,
}

impl Endpoint {
    /// Checks `text`: an `http://` or `https://` URL with a host.
    pub(crate) fn parse(text: impl Into<String>) -> Result<Self, InvalidEndpoint> {
        let text = text.into();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(InvalidEndpoint::NoScheme(text));
        };
        let https = scheme.eq_ignore_ascii_case("https");
        if !https && !scheme.eq_ignore_ascii_case("http") {
            let scheme = scheme.to_owned();
            return Err(InvalidEndpoint::Scheme { text, scheme });
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(InvalidEndpoint::NoHost(text));
        }
        let port = port_of(authority);
        Ok(Self { text, https, port })
    }

    /// The URL as given.
    #[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it is `https://`.
    #[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
    pub(crate) fn is_https(&self) -> bool {
        self.https
    }

    /// The port written in it, if any.
    pub(crate) fn port(&self) -> Option<u16> {
        self.port
    }

    /// The same endpoint with `path` appended (the generic endpoint of a
    /// signal over OTLP/HTTP).
    fn join(&self, path: &str) -> Self {
        Self {
            text: format!("{}{path}", self.text.trim_end_matches('/')),
            ..self.clone()
        }
    }
}

impl PartialEq<&str> for Endpoint {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The port of an authority (`user@host:port`, `[::1]:port`).
fn port_of(authority: &str) -> Option<u16> {
    let host_port = authority.rsplit('@').next()?;
    let (_, port) = host_port.rsplit_once(':')?;
    if port.contains(']') {
        return None; // an IPv6 address without a port
    }
    port.parse().ok()
}

/// Why an endpoint was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InvalidEndpoint {
    #[error("`{0}` has no scheme; write http://host:port or https://host:port")]
    NoScheme(String),
    #[error("`{text}` uses the scheme `{scheme}`; only http and https are supported")]
    Scheme { text: String, scheme: String },
    #[error("`{0}` has no host")]
    NoHost(String),
}

/// Checks an endpoint given in code (see [`Endpoint::parse`]).
pub(crate) fn validate_endpoint(endpoint: &str) -> Result<(), InvalidEndpoint> {
    Endpoint::parse(endpoint).map(|_| ())
}

/// The port written in an endpoint, if any.
#[cfg(test)]
pub(super) fn endpoint_port(endpoint: &str) -> Option<u16> {
    Endpoint::parse(endpoint).ok()?.port()
}

/// The variable names of one OTLP signal.
pub(crate) struct Signal {
    path: &'static str,
    endpoint: &'static str,
    protocol: &'static str,
    headers: &'static str,
    compression: &'static str,
    timeout: &'static str,
    insecure: &'static str,
}

pub(crate) const TRACES: Signal = Signal {
    path: "/v1/traces",
    endpoint: env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    protocol: env::OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    headers: env::OTEL_EXPORTER_OTLP_TRACES_HEADERS,
    compression: env::OTEL_EXPORTER_OTLP_TRACES_COMPRESSION,
    timeout: env::OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
    insecure: env::OTEL_EXPORTER_OTLP_TRACES_INSECURE,
};

pub(crate) const LOGS: Signal = Signal {
    path: "/v1/logs",
    endpoint: env::OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    protocol: env::OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    headers: env::OTEL_EXPORTER_OTLP_LOGS_HEADERS,
    compression: env::OTEL_EXPORTER_OTLP_LOGS_COMPRESSION,
    timeout: env::OTEL_EXPORTER_OTLP_LOGS_TIMEOUT,
    insecure: env::OTEL_EXPORTER_OTLP_LOGS_INSECURE,
};

pub(crate) const METRICS: Signal = Signal {
    path: "/v1/metrics",
    endpoint: env::OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    protocol: env::OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    headers: env::OTEL_EXPORTER_OTLP_METRICS_HEADERS,
    compression: env::OTEL_EXPORTER_OTLP_METRICS_COMPRESSION,
    timeout: env::OTEL_EXPORTER_OTLP_METRICS_TIMEOUT,
    insecure: env::OTEL_EXPORTER_OTLP_METRICS_INSECURE,
};

pub(super) fn resolve_otlp(
    signal: &Signal,
    code: &CodeSettings,
    env: &Env,
    w: &mut Warnings,
    notes: &mut Vec<String>,
) -> OtlpSettings {
    let source = endpoint_source(signal, code, env, w);
    let protocol = protocol(signal, code, &source, env, w, notes);
    OtlpSettings {
        protocol,
        endpoint: source.resolve(signal, protocol),
        headers: headers(signal, code, env, w),
        gzip: gzip(signal, env, w),
        timeout: timeout(signal, env, w),
    }
}

/// The endpoint as configured, before the protocol decides its final form.
enum Source {
    /// From the builder: the traces endpoint, used as given.
    Code(Endpoint),
    /// The signal's own variable: used as given.
    Signal(Endpoint),
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: a base URL for every signal.
    Generic(Endpoint),
    Default,
}

impl Source {
    fn configured(&self) -> Option<&Endpoint> {
        match self {
            Self::Code(e) | Self::Signal(e) | Self::Generic(e) => Some(e),
            Self::Default => None,
        }
    }

    /// The final endpoint: the generic one gets the signal's path over
    /// OTLP/HTTP; the defaults are the specification's.
    fn resolve(self, signal: &Signal, protocol: Protocol) -> Endpoint {
        let default = |text: String| {
            Endpoint::parse(text).unwrap_or_else(|_| Endpoint {
                text: String::new(),
                https: false,
                port: None,
            })
        };
        match (self, protocol) {
            (Self::Code(e) | Self::Signal(e), _) => e,
            (Self::Generic(e), Protocol::HttpProtobuf) => e.join(signal.path),
            (Self::Generic(e), Protocol::Grpc) => e,
            (Self::Default, Protocol::HttpProtobuf) => {
                default(format!("{DEFAULT_HTTP_BASE}{}", signal.path))
            }
            (Self::Default, Protocol::Grpc) => default(DEFAULT_GRPC_ENDPOINT.to_owned()),
        }
    }
}

/// Where the endpoint comes from: code, the signal's variable, the generic
/// one, or the default. An invalid variable warns and is skipped.
fn endpoint_source(signal: &Signal, code: &CodeSettings, env: &Env, w: &mut Warnings) -> Source {
    let insecure = if env.get(signal.insecure).is_some() {
        parse_bool(env, signal.insecure, w)
    } else {
        parse_bool(env, env::OTEL_EXPORTER_OTLP_INSECURE, w)
    };
    let read = |name: &'static str, w: &mut Warnings| -> Option<Endpoint> {
        let value = env.get(name)?;
        // gRPC endpoints may be written without a scheme;
        // OTEL_EXPORTER_OTLP_INSECURE decides it.
        let value = if value.contains("://") {
            value
        } else {
            format!("{}://{value}", if insecure { "http" } else { "https" })
        };
        Endpoint::parse(value)
            .map_err(|why| w.push(format!("{name}: {why}; ignoring it")))
            .ok()
    };
    if let Some(e) = &code.endpoint {
        // The code endpoint is the traces endpoint; other signals use its
        // sibling path. (The builder checked it.)
        let text = match e.strip_suffix(TRACES.path) {
            Some(base) if signal.path != TRACES.path => format!("{base}{}", signal.path),
            _ => e.clone(),
        };
        if let Ok(endpoint) = Endpoint::parse(text) {
            return Source::Code(endpoint);
        }
    }
    if let Some(e) = read(signal.endpoint, w) {
        Source::Signal(e)
    } else if let Some(e) = read(env::OTEL_EXPORTER_OTLP_ENDPOINT, w) {
        Source::Generic(e)
    } else {
        Source::Default
    }
}

/// The protocol: code, the signal's variable, the generic one, else
/// inferred from the port.
fn protocol(
    signal: &Signal,
    code: &CodeSettings,
    source: &Source,
    env: &Env,
    w: &mut Warnings,
    notes: &mut Vec<String>,
) -> Protocol {
    let from_env = [signal.protocol, env::OTEL_EXPORTER_OTLP_PROTOCOL]
        .into_iter()
        .find_map(|name| {
            let value = env.get(name)?;
            match Protocol::parse(&value) {
                Some(p) => Some(p),
                None if value.eq_ignore_ascii_case("http/json") => {
                    w.push(format!(
                        "{name}=http/json is not supported by observability-core; using http/protobuf"
                    ));
                    Some(Protocol::HttpProtobuf)
                }
                None => {
                    w.push(format!("{name}={value} is not grpc or http/protobuf; ignoring it"));
                    None
                }
            }
        });
    let protocol = code.protocol.or(from_env).unwrap_or_else(|| {
        // The specification's default is http/protobuf, but an endpoint on
        // 4317 is a gRPC receiver in every collector's default configuration:
        // exporting HTTP to it can only fail. Infer gRPC there, and say so.
        match source.configured().and_then(Endpoint::port) {
            Some(4317) => {
                notes.push(
                    "the OTLP endpoint uses port 4317 and no protocol is set: exporting over grpc \
                     (set OTEL_EXPORTER_OTLP_PROTOCOL to choose)"
                        .to_owned(),
                );
                Protocol::Grpc
            }
            _ => Protocol::HttpProtobuf,
        }
    });
    // Whether a transport is compiled in is decided here, once.
    if !cfg!(feature = "otlp-grpc") && protocol == Protocol::Grpc {
        w.push("OTLP over grpc needs the `otlp-grpc` feature of observability-core; using http/protobuf");
        return Protocol::HttpProtobuf;
    }
    protocol
}

/// Headers: the signal's variable or the generic one, then the builder's.
fn headers(
    signal: &Signal,
    code: &CodeSettings,
    env: &Env,
    w: &mut Warnings,
) -> Vec<(String, String)> {
    let mut headers = match env.first(&[signal.headers, env::OTEL_EXPORTER_OTLP_HEADERS]) {
        None => Vec::new(),
        Some((name, value)) => match env::parse_key_values(&value) {
            Ok(pairs) => pairs,
            Err(why) => {
                w.push(format!("{name}: {why}; sending no headers from it"));
                Vec::new()
            }
        },
    };
    for (k, v) in &code.headers {
        headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(k));
        headers.push((k.clone(), v.clone()));
    }
    headers
}

fn gzip(signal: &Signal, env: &Env, w: &mut Warnings) -> bool {
    match env.first(&[signal.compression, env::OTEL_EXPORTER_OTLP_COMPRESSION]) {
        None => false,
        Some((_, v)) if v.eq_ignore_ascii_case("gzip") => true,
        Some((_, v)) if v.eq_ignore_ascii_case("none") => false,
        Some((name, v)) => {
            w.push(format!("{name}={v} is not gzip or none; using none"));
            false
        }
    }
}

/// The whole export's timeout (retries included), 10 s unless set.
fn timeout(signal: &Signal, env: &Env, w: &mut Warnings) -> Duration {
    if env.get(signal.timeout).is_some() {
        bounded_millis(env, signal.timeout, w)
    } else {
        bounded_millis(env, env::OTEL_EXPORTER_OTLP_TIMEOUT, w)
    }
    .filter(|t| !t.is_zero())
    .unwrap_or(Duration::from_secs(10))
}
