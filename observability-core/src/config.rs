//! Turns the builder's settings and the environment into one resolved
//! configuration. Code wins over the environment; a bad value in the
//! environment warns once and falls back; a bad value in code is an error.

use std::time::Duration;

use opentelemetry_sdk::trace::{Sampler, SpanLimits};

use crate::env::{self, Env, Warnings, parse_bool, parse_millis, parse_u64};
use crate::error::Error;
use crate::resource::{self, ResourceSettings};

/// Where finished spans go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exporter {
    /// OTLP to a collector, over the protocol from [`Protocol`].
    Otlp,
    /// Each finished trace printed as an indented tree on standard error.
    Console,
    /// Nothing is exported (spans are still created, so ids propagate and
    /// appear in logs).
    None,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object per line, with `trace_id`, `span_id`, `trace_flags`.
    Json,
    /// JSON with Elastic Common Schema names (`@timestamp`, `trace.id`, ...).
    Ecs,
    /// `key=value` pairs (`trace_id=...`).
    Logfmt,
    /// Human-readable lines (`tracing-subscriber`'s format), for terminals.
    Text,
}

impl LogFormat {
    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "ecs" => Some(Self::Ecs),
            "logfmt" => Some(Self::Logfmt),
            "text" | "pretty" | "human" => Some(Self::Text),
            _ => None,
        }
    }
}

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

/// The propagators `OTEL_PROPAGATORS` can name that this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PropagatorKind {
    TraceContext,
    Baggage,
    /// B3, single header.
    B3,
    /// B3, multiple headers.
    B3Multi,
    Jaeger,
    Xray,
    OtTrace,
}

/// The sampler, as resolved; turned into the SDK's sampler at build time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SamplerSetting {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    ParentBased(Box<SamplerSetting>),
}

impl SamplerSetting {
    pub(crate) fn to_sdk(&self) -> Sampler {
        match self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::Ratio(r) => Sampler::TraceIdRatioBased(*r),
            Self::ParentBased(root) => Sampler::ParentBased(Box::new(root.to_sdk())),
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

/// The batch span processor's resolved settings (`OTEL_BSP_*`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BatchSettings {
    pub(crate) schedule_delay: Duration,
    pub(crate) export_timeout: Duration,
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    /// Estimated bytes of queued spans at most.
    pub(crate) max_queue_bytes: usize,
    /// Bytes of one export request at most.
    pub(crate) max_request_bytes: usize,
    /// Exports in flight at once at most.
    pub(crate) max_concurrent_exports: usize,
}

/// Settings given in code, gathered by the [`Builder`](crate::Builder).
#[derive(Clone, Debug, Default)]
pub(crate) struct CodeSettings {
    pub(crate) resource: ResourceSettings,
    pub(crate) sample_ratio: Option<f64>,
    pub(crate) exporter: Option<Vec<Exporter>>,
    pub(crate) default_exporter: Option<Vec<Exporter>>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) endpoint: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) log_filter: Option<String>,
    pub(crate) log_format: Option<LogFormat>,
    pub(crate) trace_level: Option<tracing::Level>,
    pub(crate) span_event_level: Option<tracing::Level>,
    pub(crate) export_logs: Option<bool>,
    pub(crate) scrub: crate::scrub::ScrubSettings,
}

/// Everything `init` needs, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) disabled: bool,
    pub(crate) resource: opentelemetry_sdk::Resource,
    pub(crate) sampler: SamplerSetting,
    pub(crate) exporters: Vec<Exporter>,
    pub(crate) otlp: OtlpSettings,
    /// OTLP settings for logs, when `OTEL_LOGS_EXPORTER=otlp`.
    pub(crate) logs: Option<OtlpSettings>,
    pub(crate) batch: BatchSettings,
    /// Whether `OTEL_BSP_SCHEDULE_DELAY` was given (the console exporter
    /// otherwise prints sooner than the OTLP default of 5 s).
    pub(crate) schedule_delay_set: bool,
    pub(crate) limits: SpanLimits,
    pub(crate) attribute_value_length_limit: Option<usize>,
    pub(crate) propagators: Vec<PropagatorKind>,
    pub(crate) log_filter: String,
    pub(crate) log_format: LogFormat,
    /// Whether logs go to standard output (colours only then).
    pub(crate) log_writer_is_stdout: bool,
    pub(crate) service_name: String,
    pub(crate) environment: Option<String>,
    pub(crate) trace_level: tracing::Level,
    pub(crate) span_event_level: tracing::Level,
    pub(crate) shutdown_timeout: Duration,
    /// Applied to every span before export.
    pub(crate) scrubber: crate::scrub::Scrubber,
    pub(crate) warnings: Vec<String>,
    /// Facts worth one info line at start (e.g. an inferred protocol).
    pub(crate) notes: Vec<String>,
}

/// The default time shutdown may take.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

impl Settings {
    pub(crate) fn resolve(code: CodeSettings, env: &Env) -> Result<Self, Error> {
        let mut w = Warnings::default();
        let mut notes = Vec::new();

        if let Some(ratio) = code.sample_ratio
            && !(0.0..=1.0).contains(&ratio)
        {
            return Err(Error::config(
                "sample_ratio",
                format!("{ratio} is outside [0, 1]"),
            ));
        }
        if let Some(endpoint) = &code.endpoint {
            validate_endpoint(endpoint).map_err(|why| Error::config("otlp_endpoint", why))?;
        }
        if code.shutdown_timeout == Some(Duration::ZERO) {
            return Err(Error::config(
                "shutdown_timeout",
                "a zero deadline cannot flush anything; give at least a few milliseconds",
            ));
        }

        let disabled = parse_bool(env, env::OTEL_SDK_DISABLED, &mut w);
        let resolved = resource::resolve(&code.resource, env, &mut w);
        let sampler = resolve_sampler(code.sample_ratio, resolved.is_production(), env, &mut w);
        let exporters = resolve_exporters(&code, env, &mut w);
        let otlp = resolve_otlp(&TRACES, &code, env, &mut w, &mut notes);
        let logs_exporter = match code.export_logs {
            Some(on) => on,
            None => match env.get(env::OTEL_LOGS_EXPORTER) {
                None => false,
                Some(v) if v.eq_ignore_ascii_case("otlp") => true,
                Some(v) if v.eq_ignore_ascii_case("none") => false,
                Some(v) => {
                    w.push(format!(
                        "{}={v} is not supported (otlp or none); not exporting logs",
                        env::OTEL_LOGS_EXPORTER
                    ));
                    false
                }
            },
        };
        let logs = logs_exporter.then(|| {
            let mut ignored = Vec::new();
            resolve_otlp(&LOGS, &code, env, &mut w, &mut ignored)
        });
        let schedule_delay_set = env.get(env::OTEL_BSP_SCHEDULE_DELAY).is_some();
        let batch = resolve_batch(env, &mut w);
        let (limits, attribute_value_length_limit) = resolve_limits(env, &mut w);
        let propagators = resolve_propagators(env, &mut w);
        let log_filter = resolve_log_filter(code.log_filter, env, &mut w)?;
        let log_format = code
            .log_format
            .unwrap_or_else(|| match env.get(env::OTEL_LOG_FORMAT) {
                Some(value) => LogFormat::parse(&value).unwrap_or_else(|| {
                    w.push(format!(
                        "{}={value} is not json, ecs, logfmt or text; using json",
                        env::OTEL_LOG_FORMAT
                    ));
                    LogFormat::Json
                }),
                None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => LogFormat::Text,
                None => LogFormat::Json,
            });

        let scrubber = crate::scrub::Scrubber::resolve(&code.scrub, env, &mut w)?;
        let service_name = resolved.service_name();
        let environment = resolved.environment().map(str::to_owned);
        Ok(Self {
            disabled,
            resource: resolved.resource,
            sampler,
            exporters,
            otlp,
            logs,
            batch,
            schedule_delay_set,
            limits,
            attribute_value_length_limit,
            propagators,
            log_filter,
            log_format,
            log_writer_is_stdout: true,
            service_name,
            environment,
            trace_level: code.trace_level.unwrap_or(tracing::Level::INFO),
            span_event_level: code.span_event_level.unwrap_or(tracing::Level::WARN),
            shutdown_timeout: code.shutdown_timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
            scrubber,
            warnings: w.into_vec(),
            notes,
        })
    }
}

fn resolve_sampler(
    code_ratio: Option<f64>,
    production: bool,
    env: &Env,
    w: &mut Warnings,
) -> SamplerSetting {
    let default_ratio = if production { 0.1 } else { 1.0 };
    let mut ratio = || -> f64 {
        if let Some(ratio) = code_ratio {
            return ratio;
        }
        let Some(arg) = env.get(env::OTEL_TRACES_SAMPLER_ARG) else {
            return default_ratio;
        };
        match arg.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            Ok(_) => {
                w.push(format!(
                    "{}={arg} is outside [0, 1]; using {default_ratio}",
                    env::OTEL_TRACES_SAMPLER_ARG
                ));
                default_ratio
            }
            Err(_) => {
                w.push(format!(
                    "{}={arg} is not a number; using {default_ratio}",
                    env::OTEL_TRACES_SAMPLER_ARG
                ));
                default_ratio
            }
        }
    };
    let default = |ratio: f64| SamplerSetting::ParentBased(Box::new(SamplerSetting::Ratio(ratio)));

    if code_ratio.is_some() {
        return default(ratio());
    }
    let Some(name) = env.get(env::OTEL_TRACES_SAMPLER) else {
        return default(ratio());
    };
    match name.to_ascii_lowercase().as_str() {
        "always_on" => SamplerSetting::AlwaysOn,
        "always_off" => SamplerSetting::AlwaysOff,
        "traceidratio" => SamplerSetting::Ratio(ratio()),
        "parentbased_always_on" => SamplerSetting::ParentBased(Box::new(SamplerSetting::AlwaysOn)),
        "parentbased_always_off" => {
            SamplerSetting::ParentBased(Box::new(SamplerSetting::AlwaysOff))
        }
        "parentbased_traceidratio" => default(ratio()),
        "jaeger_remote" | "parentbased_jaeger_remote" | "xray" => {
            let r = ratio();
            w.push(format!(
                "{}={name} is not supported by observability-core; using parentbased_traceidratio with ratio {r}",
                env::OTEL_TRACES_SAMPLER
            ));
            default(r)
        }
        _ => {
            let r = ratio();
            w.push(format!(
                "{}={name} is not a known sampler; using parentbased_traceidratio with ratio {r}",
                env::OTEL_TRACES_SAMPLER
            ));
            default(r)
        }
    }
}

fn resolve_exporters(code: &CodeSettings, env: &Env, w: &mut Warnings) -> Vec<Exporter> {
    if let Some(forced) = &code.exporter {
        return dedup(forced.clone());
    }
    // A default given in code stands only while nothing points at a
    // collector: an OTLP endpoint in the environment means "export there".
    let endpoint_set = env.get(env::OTEL_EXPORTER_OTLP_ENDPOINT).is_some()
        || env.get(env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).is_some();
    let fallback = match &code.default_exporter {
        Some(default) if !endpoint_set => default.clone(),
        _ => vec![Exporter::Otlp],
    };
    let Some(value) = env.get(env::OTEL_TRACES_EXPORTER) else {
        return dedup(fallback);
    };
    let mut chosen = Vec::new();
    let mut none = false;
    let mut understood = false;
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.to_ascii_lowercase().as_str() {
            "otlp" => {
                understood = true;
                chosen.push(Exporter::Otlp)
            }
            "console" | "logging" => {
                understood = true;
                chosen.push(Exporter::Console)
            }
            "none" => {
                understood = true;
                none = true
            }
            "zipkin" | "jaeger" => w.push(format!(
                "{}: the `{item}` exporter is not supported by observability-core; ignoring it",
                env::OTEL_TRACES_EXPORTER
            )),
            _ => w.push(format!(
                "{}: `{item}` is not a known exporter; ignoring it",
                env::OTEL_TRACES_EXPORTER
            )),
        }
    }
    if !understood {
        return dedup(fallback);
    }
    if none && chosen.is_empty() {
        return vec![Exporter::None];
    }
    dedup(chosen)
}

fn dedup(list: Vec<Exporter>) -> Vec<Exporter> {
    let mut out: Vec<Exporter> = Vec::with_capacity(list.len());
    for e in list {
        if e != Exporter::None && !out.contains(&e) {
            out.push(e);
        }
    }
    if out.is_empty() {
        out.push(Exporter::None);
    }
    out
}

const DEFAULT_HTTP_BASE: &str = "http://localhost:4318";
const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";

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
fn endpoint_port(endpoint: &str) -> Option<u16> {
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

fn resolve_otlp(
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

/// Bounds of the size, count and time settings: any value a variable can
/// hold resolves to something the process can afford (a warning says when
/// a value was brought back within its bound).
pub(crate) mod bounds {
    use std::time::Duration;

    /// `OTEL_BSP_MAX_QUEUE_SIZE`.
    pub(crate) const QUEUE_SPANS: u64 = 1 << 20;
    /// `OBSERVABILITY_BSP_MAX_QUEUE_BYTES`.
    pub(crate) const QUEUE_BYTES: (u64, u64, u64) = (1 << 20, 16 << 20, 4 << 30);
    /// `OBSERVABILITY_OTLP_MAX_REQUEST_BYTES`.
    pub(crate) const REQUEST_BYTES: (u64, u64, u64) = (64 << 10, 3 << 20, 64 << 20);
    /// Every duration (`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_EXPORT_TIMEOUT`,
    /// `OTEL_EXPORTER_OTLP_*TIMEOUT`).
    pub(crate) const DURATION: Duration = Duration::from_secs(3600);
    /// Every count limit (`OTEL_*_COUNT_LIMIT`).
    pub(crate) const COUNT: u64 = 1 << 16;
    /// The default of `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, in characters.
    pub(crate) const VALUE_LENGTH: usize = 4096;
}

/// A count from `name`: `default` when unset or invalid, at most `max`, and
/// never 0 when `positive`.
fn bounded_u64(
    env: &Env,
    name: &str,
    default: u64,
    max: u64,
    positive: bool,
    w: &mut Warnings,
) -> u64 {
    match parse_u64(env, name, w) {
        Some(0) if positive => {
            w.push(format!("{name}=0 is not allowed; using {default}"));
            default
        }
        Some(n) if n > max => {
            w.push(format!("{name}={n} is more than {max}; using {max}"));
            max
        }
        Some(n) => n,
        None => default,
    }
}

/// A byte size from `name` within `(min, default, max)`.
fn bounded_bytes(
    env: &Env,
    name: &str,
    (min, default, max): (u64, u64, u64),
    w: &mut Warnings,
) -> usize {
    let n = bounded_u64(env, name, default, max, true, w);
    let n = if n < min {
        w.push(format!("{name}={n} is less than {min}; using {min}"));
        min
    } else {
        n
    };
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A duration in milliseconds from `name`, at most [`bounds::DURATION`].
pub(crate) fn bounded_millis(env: &Env, name: &str, w: &mut Warnings) -> Option<Duration> {
    let millis = parse_millis(env, name, w)?;
    if millis > bounds::DURATION {
        w.push(format!(
            "{name}={} is more than {} (one hour); using {}",
            millis.as_millis(),
            bounds::DURATION.as_millis(),
            bounds::DURATION.as_millis()
        ));
        return Some(bounds::DURATION);
    }
    Some(millis)
}

fn resolve_batch(env: &Env, w: &mut Warnings) -> BatchSettings {
    let max_queue_size = bounded_u64(
        env,
        env::OTEL_BSP_MAX_QUEUE_SIZE,
        2048,
        bounds::QUEUE_SPANS,
        true,
        w,
    ) as usize;
    let mut max_export_batch_size = bounded_u64(
        env,
        env::OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
        512,
        bounds::QUEUE_SPANS,
        true,
        w,
    ) as usize;
    if max_export_batch_size > max_queue_size {
        if env.get(env::OTEL_BSP_MAX_EXPORT_BATCH_SIZE).is_some() {
            w.push(format!(
                "{}={max_export_batch_size} is larger than the queue ({max_queue_size}); using {max_queue_size}",
                env::OTEL_BSP_MAX_EXPORT_BATCH_SIZE
            ));
        }
        max_export_batch_size = max_queue_size;
    }
    BatchSettings {
        schedule_delay: bounded_millis(env, env::OTEL_BSP_SCHEDULE_DELAY, w)
            .unwrap_or(Duration::from_secs(5)),
        export_timeout: bounded_millis(env, env::OTEL_BSP_EXPORT_TIMEOUT, w)
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(30)),
        max_queue_size,
        max_export_batch_size,
        max_queue_bytes: bounded_bytes(
            env,
            env::OBSERVABILITY_BSP_MAX_QUEUE_BYTES,
            bounds::QUEUE_BYTES,
            w,
        ),
        max_request_bytes: bounded_bytes(
            env,
            env::OBSERVABILITY_OTLP_MAX_REQUEST_BYTES,
            bounds::REQUEST_BYTES,
            w,
        ),
        max_concurrent_exports: concurrent_exports(env, w),
    }
}

/// `OTEL_BSP_MAX_CONCURRENT_EXPORTS`: 4 unless set, at most
/// [`MAX_CONCURRENT_EXPORTS`] (the worker polls every export in flight each
/// time one of them wakes it).
fn concurrent_exports(env: &Env, w: &mut Warnings) -> usize {
    const DEFAULT: u64 = 4;
    let name = env::OTEL_BSP_MAX_CONCURRENT_EXPORTS;
    match parse_u64(env, name, w) {
        Some(0) => {
            w.push(format!("{name}=0 is not allowed; using {DEFAULT}"));
            DEFAULT as usize
        }
        Some(n) if n > MAX_CONCURRENT_EXPORTS as u64 => {
            w.push(format!(
                "{name}={n} is more than {MAX_CONCURRENT_EXPORTS}; using {MAX_CONCURRENT_EXPORTS}"
            ));
            MAX_CONCURRENT_EXPORTS
        }
        Some(n) => n as usize,
        None => DEFAULT as usize,
    }
}

/// The most batch exports in flight at once that the settings allow.
pub(crate) const MAX_CONCURRENT_EXPORTS: usize = 64;

fn resolve_limits(env: &Env, w: &mut Warnings) -> (SpanLimits, Option<usize>) {
    let count = |name: &str, w: &mut Warnings| -> Option<u32> {
        let n = parse_u64(env, name, w)?;
        let max = bounds::COUNT;
        if n > max {
            w.push(format!("{name}={n} is more than {max}; using {max}"));
        }
        Some(u32::try_from(n.min(max)).unwrap_or(u32::MAX))
    };
    // The general limit, read once (it stands in for three specific ones).
    let general = count(env::OTEL_ATTRIBUTE_COUNT_LIMIT, w);
    let mut limits = SpanLimits::default();
    if let Some(n) = count(env::OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, w).or(general) {
        limits.max_attributes_per_span = n;
    }
    if let Some(n) = count(env::OTEL_SPAN_EVENT_COUNT_LIMIT, w) {
        limits.max_events_per_span = n;
    }
    if let Some(n) = count(env::OTEL_SPAN_LINK_COUNT_LIMIT, w) {
        limits.max_links_per_span = n;
    }
    if let Some(n) = count(env::OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT, w).or(general) {
        limits.max_attributes_per_event = n;
    }
    if let Some(n) = count(env::OTEL_LINK_ATTRIBUTE_COUNT_LIMIT, w).or(general) {
        limits.max_attributes_per_link = n;
    }
    // Request text (headers, paths, user agents) flows into attributes: a
    // value is bounded by default, unless a variable says otherwise.
    let value_length = parse_u64(env, env::OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, w)
        .or_else(|| parse_u64(env, env::OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, w))
        .map_or(bounds::VALUE_LENGTH, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
    (limits, Some(value_length))
}

fn resolve_propagators(env: &Env, w: &mut Warnings) -> Vec<PropagatorKind> {
    let default = vec![PropagatorKind::TraceContext, PropagatorKind::Baggage];
    let Some(value) = env.get(env::OTEL_PROPAGATORS) else {
        return default;
    };
    let mut out = Vec::new();
    let mut none = false;
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let kind = match item.to_ascii_lowercase().as_str() {
            "tracecontext" => PropagatorKind::TraceContext,
            "baggage" => PropagatorKind::Baggage,
            "none" => {
                none = true;
                continue;
            }
            name @ ("b3" | "b3multi" | "jaeger" | "xray" | "ottrace") => {
                let (kind, compiled, feature) = match name {
                    "b3" => (
                        PropagatorKind::B3,
                        cfg!(feature = "propagator-b3"),
                        "propagator-b3",
                    ),
                    "b3multi" => (
                        PropagatorKind::B3Multi,
                        cfg!(feature = "propagator-b3"),
                        "propagator-b3",
                    ),
                    "jaeger" => (
                        PropagatorKind::Jaeger,
                        cfg!(feature = "propagator-jaeger"),
                        "propagator-jaeger",
                    ),
                    "xray" => (
                        PropagatorKind::Xray,
                        cfg!(feature = "propagator-xray"),
                        "propagator-xray",
                    ),
                    _ => (
                        PropagatorKind::OtTrace,
                        cfg!(feature = "propagator-ottrace"),
                        "propagator-ottrace",
                    ),
                };
                if !compiled {
                    w.push(format!(
                        "{}: the `{item}` propagator needs the `{feature}` feature of observability-core; ignoring it",
                        env::OTEL_PROPAGATORS
                    ));
                    continue;
                }
                kind
            }
            _ => {
                w.push(format!(
                    "{}: `{item}` is not a known propagator; ignoring it",
                    env::OTEL_PROPAGATORS
                ));
                continue;
            }
        };
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    if none {
        if !out.is_empty() {
            w.push(format!(
                "{}={value} names `none` with other propagators; using none",
                env::OTEL_PROPAGATORS
            ));
        }
        return Vec::new();
    }
    out
}

fn resolve_log_filter(code: Option<String>, env: &Env, w: &mut Warnings) -> Result<String, Error> {
    use tracing_subscriber::EnvFilter;
    if let Some(filter) = code {
        EnvFilter::builder()
            .parse(&filter)
            .map_err(|e| Error::config("log_filter", format!("`{filter}`: {e}")))?;
        return Ok(filter);
    }
    let mut filter = match env.get(env::RUST_LOG) {
        Some(value) => match EnvFilter::builder().parse(&value) {
            Ok(_) => value,
            Err(e) => {
                w.push(format!(
                    "{}={value} is not a valid filter ({e}); using info",
                    env::RUST_LOG
                ));
                "info".to_owned()
            }
        },
        None => "info".to_owned(),
    };
    if let Some(level) = env.get(env::OTEL_LOG_LEVEL) {
        match level.to_ascii_lowercase().as_str() {
            l @ ("error" | "warn" | "info" | "debug" | "trace") => {
                if !filter.contains("observability_core") {
                    filter.push_str(",observability_core=");
                    filter.push_str(l);
                }
            }
            _ => w.push(format!(
                "{}={level} is not error, warn, info, debug or trace; using info",
                env::OTEL_LOG_LEVEL
            )),
        }
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::env_of;

    fn resolve(vars: &[(&str, &str)]) -> Settings {
        Settings::resolve(CodeSettings::default(), &env_of(vars)).unwrap()
    }

    fn ratio(vars: &[(&str, &str)]) -> SamplerSetting {
        resolve(vars).sampler
    }

    fn pb_ratio(r: f64) -> SamplerSetting {
        SamplerSetting::ParentBased(Box::new(SamplerSetting::Ratio(r)))
    }

    #[test]
    fn default_sampler_is_parent_based_ratio_one() {
        assert_eq!(ratio(&[]), pb_ratio(1.0));
        assert_eq!(
            ratio(&[("OTEL_TRACES_SAMPLER_ARG", "0.25")]),
            pb_ratio(0.25)
        );
    }

    #[test]
    fn production_defaults_to_ten_percent() {
        assert_eq!(ratio(&[("ENV", "production")]), pb_ratio(0.1));
        assert_eq!(ratio(&[("ENVIRONMENT", "Prod")]), pb_ratio(0.1));
        assert_eq!(
            ratio(&[(
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=production"
            )]),
            pb_ratio(0.1)
        );
        assert_eq!(ratio(&[("ENV", "staging")]), pb_ratio(1.0));
        // An explicit ratio wins over the production default.
        assert_eq!(
            ratio(&[("ENV", "prod"), ("OTEL_TRACES_SAMPLER_ARG", "1")]),
            pb_ratio(1.0)
        );
    }

    #[test]
    fn every_spec_sampler_is_understood_case_insensitively() {
        use SamplerSetting::*;
        let cases = [
            ("always_on", AlwaysOn),
            ("ALWAYS_OFF", AlwaysOff),
            ("TraceIdRatio", Ratio(0.5)),
            ("parentbased_always_on", ParentBased(Box::new(AlwaysOn))),
            ("parentbased_always_off", ParentBased(Box::new(AlwaysOff))),
            ("parentbased_traceidratio", pb_ratio(0.5)),
        ];
        for (name, expected) in cases {
            let s = resolve(&[
                ("OTEL_TRACES_SAMPLER", name),
                ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
            ]);
            assert_eq!(s.sampler, expected, "{name}");
            assert!(s.warnings.is_empty(), "{name}: {:?}", s.warnings);
        }
        for name in [
            "jaeger_remote",
            "parentbased_jaeger_remote",
            "xray",
            "bogus",
        ] {
            let s = resolve(&[("OTEL_TRACES_SAMPLER", name)]);
            assert_eq!(s.sampler, pb_ratio(1.0), "{name}");
            assert_eq!(s.warnings.len(), 1, "{name}: {:?}", s.warnings);
            assert!(s.warnings[0].contains(name));
        }
    }

    #[test]
    fn bad_sampler_arg_warns_once_and_falls_back() {
        let s = resolve(&[("OTEL_TRACES_SAMPLER_ARG", "1.5")]);
        assert_eq!(s.sampler, pb_ratio(1.0));
        assert_eq!(
            s.warnings,
            ["OTEL_TRACES_SAMPLER_ARG=1.5 is outside [0, 1]; using 1"]
        );
        let s = resolve(&[("OTEL_TRACES_SAMPLER_ARG", "half"), ("ENV", "prod")]);
        assert_eq!(s.sampler, pb_ratio(0.1));
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn code_ratio_wins_and_is_validated() {
        let code = CodeSettings {
            sample_ratio: Some(0.3),
            ..Default::default()
        };
        let s = Settings::resolve(code, &env_of(&[("OTEL_TRACES_SAMPLER", "always_off")])).unwrap();
        assert_eq!(s.sampler, pb_ratio(0.3));
        for bad in [1.5, -0.1, f64::NAN] {
            let code = CodeSettings {
                sample_ratio: Some(bad),
                ..Default::default()
            };
            let err = Settings::resolve(code, &env_of(&[])).unwrap_err();
            assert!(err.to_string().contains("sample_ratio"), "{err}");
        }
    }

    #[test]
    fn exporters() {
        assert_eq!(resolve(&[]).exporters, [Exporter::Otlp]);
        assert_eq!(
            resolve(&[("OTEL_TRACES_EXPORTER", "console")]).exporters,
            [Exporter::Console]
        );
        assert_eq!(
            resolve(&[("OTEL_TRACES_EXPORTER", "NONE")]).exporters,
            [Exporter::None]
        );
        assert_eq!(
            resolve(&[("OTEL_TRACES_EXPORTER", "otlp, console")]).exporters,
            [Exporter::Otlp, Exporter::Console]
        );
        let s = resolve(&[("OTEL_TRACES_EXPORTER", "zipkin")]);
        assert_eq!(s.exporters, [Exporter::Otlp]);
        assert_eq!(s.warnings.len(), 1);
        let code = CodeSettings {
            default_exporter: Some(vec![Exporter::Console]),
            ..Default::default()
        };
        assert_eq!(
            Settings::resolve(code.clone(), &env_of(&[]))
                .unwrap()
                .exporters,
            [Exporter::Console]
        );
        assert_eq!(
            Settings::resolve(code.clone(), &env_of(&[("OTEL_TRACES_EXPORTER", "otlp")]))
                .unwrap()
                .exporters,
            [Exporter::Otlp]
        );
        assert_eq!(
            Settings::resolve(
                code,
                &env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
            )
            .unwrap()
            .exporters,
            [Exporter::Otlp],
            "an endpoint in the environment means OTLP"
        );
    }

    #[test]
    fn otlp_http_endpoint_resolution_follows_the_spec() {
        let ep = |vars: &[(&str, &str)]| resolve(vars).otlp.endpoint;
        assert_eq!(ep(&[]), "http://localhost:4318/v1/traces");
        assert_eq!(
            ep(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            ep(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            ep(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector/mypath")]),
            "https://collector/mypath/v1/traces"
        );
        assert_eq!(
            ep(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://special:4318/custom"
                )
            ]),
            "http://special:4318/custom"
        );
        assert_eq!(
            ep(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://special:4318")]),
            "http://special:4318",
            "the signal-specific endpoint is used as given"
        );
    }

    #[test]
    fn otlp_grpc_endpoint_and_protocol() {
        let s = resolve(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert_eq!(
            (s.otlp.protocol, s.otlp.endpoint.as_str()),
            (Protocol::Grpc, "http://localhost:4317")
        );
        let s = resolve(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:9000/"),
        ]);
        assert_eq!(
            (s.otlp.protocol, s.otlp.endpoint.as_str()),
            (Protocol::Grpc, "http://c:9000/")
        );
        // Port 4317 with no protocol set: gRPC is inferred, with a note.
        let s = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]);
        assert_eq!(s.otlp.protocol, Protocol::Grpc);
        assert_eq!(s.otlp.endpoint, "http://collector:4317");
        assert_eq!(s.notes.len(), 1);
        // An explicit protocol is never second-guessed.
        let s = resolve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(s.otlp.protocol, Protocol::HttpProtobuf);
        assert!(s.notes.is_empty());
        // No scheme: insecure decides.
        let s = resolve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
        ]);
        assert_eq!(s.otlp.endpoint, "http://collector:4317");
        let s = resolve(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317")]);
        assert_eq!(s.otlp.endpoint, "https://collector:4317");
        let s = resolve(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")]);
        assert_eq!(s.otlp.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn otlp_headers_compression_timeout() {
        let s = resolve(&[
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "X-Scope-OrgID=tenant-1,authorization=Basic%20abc",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]);
        assert_eq!(
            s.otlp.headers,
            [
                ("X-Scope-OrgID".to_owned(), "tenant-1".to_owned()),
                ("authorization".to_owned(), "Basic abc".to_owned())
            ]
        );
        assert!(s.otlp.gzip);
        assert_eq!(s.otlp.timeout, Duration::from_millis(2500));
        let s = resolve(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "100"),
        ]);
        assert_eq!(s.otlp.headers, [("b".to_owned(), "2".to_owned())]);
        assert!(!s.otlp.gzip);
        assert_eq!(s.otlp.timeout, Duration::from_millis(100));
        let s = resolve(&[("OTEL_EXPORTER_OTLP_HEADERS", "broken")]);
        assert!(s.otlp.headers.is_empty());
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn logs_use_the_trace_settings_with_their_own_overrides() {
        assert!(
            resolve(&[]).logs.is_none(),
            "OTEL_LOGS_EXPORTER defaults to none"
        );
        let s = resolve(&[
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-scope-orgid=t1"),
        ]);
        let logs = s.logs.unwrap();
        assert_eq!(logs.endpoint, "http://c:4318/v1/logs");
        assert_eq!(
            logs.headers,
            [("x-scope-orgid".to_owned(), "t1".to_owned())]
        );
        let s = resolve(&[
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:9000/in"),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"),
        ]);
        let logs = s.logs.unwrap();
        assert_eq!(
            (logs.endpoint.as_str(), logs.protocol),
            ("http://logs:9000/in", Protocol::Grpc)
        );
        assert_eq!(
            s.otlp.protocol,
            Protocol::HttpProtobuf,
            "traces keep theirs"
        );
        let code = CodeSettings {
            endpoint: Some("http://c:4318/v1/traces".into()),
            export_logs: Some(true),
            ..Default::default()
        };
        let s = Settings::resolve(code, &env_of(&[])).unwrap();
        assert_eq!(s.logs.unwrap().endpoint, "http://c:4318/v1/logs");
        let s = resolve(&[("OTEL_LOGS_EXPORTER", "kafka")]);
        assert!(s.logs.is_none());
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn sizes_counts_and_times_are_bounded() {
        let huge = "18446744073709551615";
        let s = resolve(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", huge),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", huge),
            ("OTEL_BSP_SCHEDULE_DELAY", huge),
            ("OTEL_BSP_EXPORT_TIMEOUT", huge),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", huge),
            ("OBSERVABILITY_BSP_MAX_QUEUE_BYTES", huge),
            ("OBSERVABILITY_OTLP_MAX_REQUEST_BYTES", huge),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", huge),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", huge),
        ]);
        assert_eq!(s.batch.max_queue_size, 1 << 20);
        assert_eq!(s.batch.max_export_batch_size, 1 << 20);
        assert_eq!(s.batch.schedule_delay, Duration::from_secs(3600));
        assert_eq!(s.batch.export_timeout, Duration::from_secs(3600));
        assert_eq!(s.otlp.timeout, Duration::from_secs(3600));
        assert_eq!(s.batch.max_queue_bytes, 4 << 30);
        assert_eq!(s.batch.max_request_bytes, 64 << 20);
        assert_eq!(s.limits.max_attributes_per_span, 1 << 16);
        assert_eq!(s.limits.max_events_per_span, 1 << 16);
        assert_eq!(s.warnings.len(), 9, "{:?}", s.warnings);
        assert!(
            s.warnings
                .iter()
                .any(|w| w == "OTEL_BSP_MAX_QUEUE_SIZE=18446744073709551615 is more than 1048576; using 1048576"),
            "{:?}",
            s.warnings
        );
        let s = resolve(&[("OBSERVABILITY_OTLP_MAX_REQUEST_BYTES", "10")]);
        assert_eq!(s.batch.max_request_bytes, 64 << 10);
        assert_eq!(s.warnings.len(), 1);
        // Attribute values are bounded by default; the variables still win.
        assert_eq!(resolve(&[]).attribute_value_length_limit, Some(4096));
        let s = resolve(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100000")]);
        assert_eq!(s.attribute_value_length_limit, Some(100_000));
    }

    #[test]
    fn batch_settings() {
        let s = resolve(&[]);
        assert_eq!(
            s.batch,
            BatchSettings {
                schedule_delay: Duration::from_secs(5),
                export_timeout: Duration::from_secs(30),
                max_queue_size: 2048,
                max_export_batch_size: 512,
                max_queue_bytes: 16 << 20,
                max_request_bytes: 3 << 20,
                max_concurrent_exports: 4,
            }
        );
        let s = resolve(&[
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "1000"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "128"),
            ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "1"),
        ]);
        assert_eq!(s.batch.schedule_delay, Duration::from_millis(100));
        assert_eq!(s.batch.export_timeout, Duration::from_secs(1));
        assert_eq!(s.batch.max_queue_size, 64);
        assert_eq!(s.batch.max_export_batch_size, 64);
        assert_eq!(s.batch.max_concurrent_exports, 1);
        assert_eq!(s.warnings.len(), 1);
        let s = resolve(&[("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "0")]);
        assert_eq!(s.batch.max_concurrent_exports, 4);
        assert_eq!(s.warnings.len(), 1);
        let s = resolve(&[("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "1000")]);
        assert_eq!(s.batch.max_concurrent_exports, 64);
        assert!(s.warnings[0].contains("more than 64"), "{:?}", s.warnings);
    }

    #[test]
    fn span_limits() {
        let s = resolve(&[
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "5"),
            ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "3"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "20"),
        ]);
        assert_eq!(s.limits.max_attributes_per_span, 10);
        assert_eq!(s.limits.max_attributes_per_event, 10);
        assert_eq!(s.limits.max_attributes_per_link, 3);
        assert_eq!(s.limits.max_events_per_span, 5);
        assert_eq!(s.attribute_value_length_limit, Some(20));
    }

    #[test]
    fn propagators() {
        use PropagatorKind::*;
        assert_eq!(resolve(&[]).propagators, [TraceContext, Baggage]);
        assert_eq!(
            resolve(&[("OTEL_PROPAGATORS", "baggage")]).propagators,
            [Baggage]
        );
        assert!(
            resolve(&[("OTEL_PROPAGATORS", "none")])
                .propagators
                .is_empty()
        );
        let s = resolve(&[("OTEL_PROPAGATORS", "tracecontext,whatever")]);
        assert_eq!(s.propagators, [TraceContext]);
        assert_eq!(s.warnings.len(), 1);
        // The order is kept: later ones win on extraction.
        let s = resolve(&[(
            "OTEL_PROPAGATORS",
            "xray, B3multi,tracecontext,b3,jaeger,ottrace",
        )]);
        if cfg!(feature = "propagators") {
            assert_eq!(
                s.propagators,
                [Xray, B3Multi, TraceContext, B3, Jaeger, OtTrace]
            );
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        } else {
            assert_eq!(s.propagators, [TraceContext]);
            assert!(s.warnings[0].contains("feature"), "{:?}", s.warnings);
        }
    }

    #[test]
    fn sdk_disabled_and_log_filter() {
        assert!(resolve(&[("OTEL_SDK_DISABLED", "true")]).disabled);
        assert!(!resolve(&[]).disabled);
        assert_eq!(resolve(&[]).log_filter, "info");
        assert_eq!(
            resolve(&[("RUST_LOG", "warn,my_app=debug")]).log_filter,
            "warn,my_app=debug"
        );
        let s = resolve(&[("RUST_LOG", "foo=[[[")]);
        assert_eq!(s.log_filter, "info");
        assert_eq!(s.warnings.len(), 1);
        assert_eq!(
            resolve(&[("OTEL_LOG_LEVEL", "debug")]).log_filter,
            "info,observability_core=debug"
        );
    }

    #[test]
    fn code_settings_that_are_wrong_are_errors() {
        let code = CodeSettings {
            endpoint: Some("localhost:4317".into()),
            ..Default::default()
        };
        assert!(Settings::resolve(code, &env_of(&[])).is_err());
        let code = CodeSettings {
            log_filter: Some("a=[[".into()),
            ..Default::default()
        };
        assert!(Settings::resolve(code, &env_of(&[])).is_err());
        let code = CodeSettings {
            shutdown_timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        assert!(Settings::resolve(code, &env_of(&[])).is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(endpoint_port("http://a:4317"), Some(4317));
        assert_eq!(endpoint_port("http://a:4317/v1"), Some(4317));
        assert_eq!(endpoint_port("http://[::1]:4317"), Some(4317));
        assert_eq!(endpoint_port("http://[::1]"), None);
        assert_eq!(endpoint_port("http://a"), None);
    }
}
