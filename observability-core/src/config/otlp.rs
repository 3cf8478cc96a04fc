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
    pub(crate) endpoint: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) gzip: bool,
    pub(crate) timeout: Duration,
}

pub(super) const DEFAULT_HTTP_BASE: &str = "http://localhost:4318";

pub(super) const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";

/// Checks that an endpoint is an absolute `http` or `https` URL.
pub(crate) fn validate_endpoint(endpoint: &str) -> Result<(), String> {
    let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
        format!("`{endpoint}` has no scheme; write http://host:port or https://host:port")
    })?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "`{endpoint}` uses the scheme `{scheme}`; only http and https are supported"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("`{endpoint}` has no host"));
    }
    Ok(())
}

/// The port written in an endpoint, if any.
pub(super) fn endpoint_port(endpoint: &str) -> Option<u16> {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let (_, port) = host_port.rsplit_once(':')?;
    if port.contains(']') {
        return None; // an IPv6 address without a port
    }
    port.parse().ok()
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

pub(super) fn resolve_otlp(
    signal: &Signal,
    code: &CodeSettings,
    env: &Env,
    w: &mut Warnings,
    notes: &mut Vec<String>,
) -> OtlpSettings {
    let insecure = if env.get(signal.insecure).is_some() {
        parse_bool(env, signal.insecure, w)
    } else {
        parse_bool(env, env::OTEL_EXPORTER_OTLP_INSECURE, w)
    };

    // The endpoint as configured, before the protocol decides its final form.
    enum Source {
        Code(String),
        Signal(String),
        Generic(String),
        Default,
    }
    let read_endpoint = |name: &'static str, w: &mut Warnings| -> Option<String> {
        let value = env.get(name)?;
        // gRPC endpoints may be written without a scheme; OTEL_EXPORTER_OTLP_INSECURE decides it.
        let value = if !value.contains("://") {
            format!("{}://{value}", if insecure { "http" } else { "https" })
        } else {
            value
        };
        match validate_endpoint(&value) {
            Ok(()) => Some(value),
            Err(why) => {
                w.push(format!("{name}: {why}; ignoring it"));
                None
            }
        }
    };
    let source = if let Some(e) = &code.endpoint {
        // The code endpoint is the traces endpoint; other signals use its
        // sibling path.
        Source::Code(match e.strip_suffix(TRACES.path) {
            Some(base) if signal.path != TRACES.path => format!("{base}{}", signal.path),
            _ => e.clone(),
        })
    } else if let Some(e) = read_endpoint(signal.endpoint, w) {
        Source::Signal(e)
    } else if let Some(e) = read_endpoint(env::OTEL_EXPORTER_OTLP_ENDPOINT, w) {
        Source::Generic(e)
    } else {
        Source::Default
    };

    let protocol_from_env = [signal.protocol, env::OTEL_EXPORTER_OTLP_PROTOCOL]
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
                    w.push(format!(
                        "{name}={value} is not grpc or http/protobuf; ignoring it"
                    ));
                    None
                }
            }
        });
    let configured_endpoint = match &source {
        Source::Code(e) | Source::Signal(e) | Source::Generic(e) => Some(e.as_str()),
        Source::Default => None,
    };
    let mut protocol = code.protocol.or(protocol_from_env).unwrap_or_else(|| {
        // The specification's default is http/protobuf, but an endpoint on
        // 4317 is a gRPC receiver in every collector's default configuration:
        // exporting HTTP to it can only fail. Infer gRPC there, and say so.
        match configured_endpoint.and_then(endpoint_port) {
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
    if !cfg!(feature = "otlp-grpc") && protocol == Protocol::Grpc {
        w.push("OTLP over grpc needs the `otlp-grpc` feature of observability-core; using http/protobuf");
        protocol = Protocol::HttpProtobuf;
    }
    if !cfg!(feature = "otlp-http")
        && protocol == Protocol::HttpProtobuf
        && cfg!(feature = "otlp-grpc")
    {
        w.push("OTLP over http/protobuf needs the `otlp-http` feature of observability-core; using grpc");
        protocol = Protocol::Grpc;
    }

    let endpoint = match (source, protocol) {
        (Source::Code(e) | Source::Signal(e), _) => e,
        (Source::Generic(e), Protocol::HttpProtobuf) => {
            format!("{}{}", e.trim_end_matches('/'), signal.path)
        }
        (Source::Generic(e), Protocol::Grpc) => e,
        (Source::Default, Protocol::HttpProtobuf) => format!("{DEFAULT_HTTP_BASE}{}", signal.path),
        (Source::Default, Protocol::Grpc) => DEFAULT_GRPC_ENDPOINT.to_owned(),
    };

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

    let gzip = match env.first(&[signal.compression, env::OTEL_EXPORTER_OTLP_COMPRESSION]) {
        None => false,
        Some((_, v)) if v.eq_ignore_ascii_case("gzip") => true,
        Some((_, v)) if v.eq_ignore_ascii_case("none") => false,
        Some((name, v)) => {
            w.push(format!("{name}={v} is not gzip or none; using none"));
            false
        }
    };

    let timeout = if env.get(signal.timeout).is_some() {
        bounded_millis(env, signal.timeout, w)
    } else {
        bounded_millis(env, env::OTEL_EXPORTER_OTLP_TIMEOUT, w)
    }
    .filter(|t| !t.is_zero())
    .unwrap_or(Duration::from_secs(10));

    OtlpSettings {
        protocol,
        endpoint,
        headers,
        gzip,
        timeout,
    }
}
