//! The environment variables `init()` reads, under the names the
//! OpenTelemetry specification gives them, and the lookup that reads them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// `true` turns tracing into a no-op: nothing is exported and no background
/// thread starts. Logging keeps working.
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// The `service.name` resource attribute.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// Extra resource attributes: `key1=value1,key2=value2`, values percent-encoded.
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// The sampler: `always_on`, `always_off`, `traceidratio`,
/// `parentbased_always_on`, `parentbased_always_off`,
/// `parentbased_traceidratio` (the default), `jaeger_remote`,
/// `parentbased_jaeger_remote`, `xray`. Case-insensitive.
pub const OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// The ratio of the ratio-based samplers, in `[0, 1]`.
pub const OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
/// Where traces go: `otlp` (the default), `console`, `none`; a
/// comma-separated list sends them to each.
pub const OTEL_TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
/// The propagators: `tracecontext,baggage` by default, or `none`.
pub const OTEL_PROPAGATORS: &str = "OTEL_PROPAGATORS";
/// The OTLP endpoint for every signal; `/v1/traces` is appended for HTTP.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The OTLP endpoint for traces, used exactly as given.
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `grpc` or `http/protobuf` (the default).
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// The OTLP protocol for traces; wins over [`OTEL_EXPORTER_OTLP_PROTOCOL`].
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// Headers sent with every export: `key1=value1,key2=value2`, values
/// percent-encoded.
pub const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// Headers sent with trace exports; wins over [`OTEL_EXPORTER_OTLP_HEADERS`].
pub const OTEL_EXPORTER_OTLP_TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
/// `gzip` or `none` (the default).
pub const OTEL_EXPORTER_OTLP_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
/// Compression for trace exports; wins over [`OTEL_EXPORTER_OTLP_COMPRESSION`].
pub const OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION";
/// The time one export may take, in milliseconds (default 10000).
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// The export timeout for traces; wins over [`OTEL_EXPORTER_OTLP_TIMEOUT`].
pub const OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
/// For a gRPC endpoint given without a scheme: `true` means plain text.
pub const OTEL_EXPORTER_OTLP_INSECURE: &str = "OTEL_EXPORTER_OTLP_INSECURE";
/// The gRPC insecure setting for traces; wins over [`OTEL_EXPORTER_OTLP_INSECURE`].
pub const OTEL_EXPORTER_OTLP_TRACES_INSECURE: &str = "OTEL_EXPORTER_OTLP_TRACES_INSECURE";
/// The OTLP endpoint for logs, used exactly as given.
pub const OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
/// The OTLP protocol for logs.
pub const OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL";
/// Headers sent with log exports.
pub const OTEL_EXPORTER_OTLP_LOGS_HEADERS: &str = "OTEL_EXPORTER_OTLP_LOGS_HEADERS";
/// Compression for log exports.
pub const OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION";
/// The export timeout for logs, in milliseconds.
pub const OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT";
/// The gRPC insecure setting for logs.
pub const OTEL_EXPORTER_OTLP_LOGS_INSECURE: &str = "OTEL_EXPORTER_OTLP_LOGS_INSECURE";
/// `otlp` also exports log records over OTLP, with their trace context;
/// `none` (the default) does not.
pub const OTEL_LOGS_EXPORTER: &str = "OTEL_LOGS_EXPORTER";
/// The OTLP endpoint for metrics, used as given.
pub const OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
/// The OTLP protocol for metrics.
pub const OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL";
/// Headers sent with metric exports.
pub const OTEL_EXPORTER_OTLP_METRICS_HEADERS: &str = "OTEL_EXPORTER_OTLP_METRICS_HEADERS";
/// Compression for metric exports.
pub const OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION";
/// The export timeout for metrics, in milliseconds.
pub const OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT";
/// The gRPC insecure setting for metrics.
pub const OTEL_EXPORTER_OTLP_METRICS_INSECURE: &str = "OTEL_EXPORTER_OTLP_METRICS_INSECURE";
/// `cumulative` (default), `delta` or `lowmemory`: which instruments
/// report deltas over OTLP.
pub const OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: &str =
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
/// Where metrics go: `otlp` (default), `prometheus`, `console`, `none`
/// (a comma-separated list).
pub const OTEL_METRICS_EXPORTER: &str = "OTEL_METRICS_EXPORTER";
/// Milliseconds between two OTLP or console metric exports (default 60000).
pub const OTEL_METRIC_EXPORT_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// Milliseconds one metric export may take (default 30000).
pub const OTEL_METRIC_EXPORT_TIMEOUT: &str = "OTEL_METRIC_EXPORT_TIMEOUT";
/// `trace_based` (default), `always_on` or `always_off`: which
/// measurements may become exemplars.
pub const OTEL_METRICS_EXEMPLAR_FILTER: &str = "OTEL_METRICS_EXEMPLAR_FILTER";
/// The host the Prometheus scrape endpoint listens on (default `localhost`).
pub const OTEL_EXPORTER_PROMETHEUS_HOST: &str = "OTEL_EXPORTER_PROMETHEUS_HOST";
/// The port of the Prometheus scrape endpoint (default 9464).
pub const OTEL_EXPORTER_PROMETHEUS_PORT: &str = "OTEL_EXPORTER_PROMETHEUS_PORT";
/// Distinct attribute sets per instrument at most (default 2000); past it,
/// measurements go to the overflow series.
pub const OBSERVABILITY_METRICS_CARDINALITY_LIMIT: &str = "OBSERVABILITY_METRICS_CARDINALITY_LIMIT";
/// Milliseconds between two scheduled exports (default 5000).
pub const OTEL_BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
/// Milliseconds one batch export may take before it is abandoned (default 30000).
pub const OTEL_BSP_EXPORT_TIMEOUT: &str = "OTEL_BSP_EXPORT_TIMEOUT";
/// Spans waiting for export at most; beyond it new spans are dropped and
/// counted (default 2048, at most 1,048,576; the queue takes memory as it
/// fills, not up front).
pub const OTEL_BSP_MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
/// Spans in one export at most (default 512, at most the queue size).
pub const OTEL_BSP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
/// Bytes of spans waiting for export at most, as their encoded size is
/// estimated; beyond it new spans are dropped and counted as queue full
/// (default 16 MiB, from 1 MiB to 4 GiB). Not in the specification.
pub const OBSERVABILITY_BSP_MAX_QUEUE_BYTES: &str = "OBSERVABILITY_BSP_MAX_QUEUE_BYTES";
/// Bytes of one export request at most, before compression: batches are cut
/// to stay under it and a span alone over it is dropped and counted as too
/// large (default 3 MiB, under the OpenTelemetry Collector's 4 MiB gRPC
/// limit; from 64 KiB to 64 MiB). Not in the specification.
pub const OBSERVABILITY_OTLP_MAX_REQUEST_BYTES: &str = "OBSERVABILITY_OTLP_MAX_REQUEST_BYTES";
/// Batch exports in flight at once at most (default 4, at most 64; 1 waits
/// for each answer before sending the next batch). The name the Rust SDK
/// uses.
pub const OTEL_BSP_MAX_CONCURRENT_EXPORTS: &str = "OTEL_BSP_MAX_CONCURRENT_EXPORTS";
/// Longest attribute value kept, in characters, for every signal (default: no limit).
pub const OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: &str = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT";
/// Attributes kept per span, event or link, for every signal (default 128).
pub const OTEL_ATTRIBUTE_COUNT_LIMIT: &str = "OTEL_ATTRIBUTE_COUNT_LIMIT";
/// Longest span attribute value kept; wins over [`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`].
pub const OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: &str = "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT";
/// Attributes kept per span; wins over [`OTEL_ATTRIBUTE_COUNT_LIMIT`] (default 128).
pub const OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: &str = "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT";
/// Events kept per span (default 128).
pub const OTEL_SPAN_EVENT_COUNT_LIMIT: &str = "OTEL_SPAN_EVENT_COUNT_LIMIT";
/// Links kept per span (default 128).
pub const OTEL_SPAN_LINK_COUNT_LIMIT: &str = "OTEL_SPAN_LINK_COUNT_LIMIT";
/// Attributes kept per span event (default 128).
pub const OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT: &str = "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT";
/// Attributes kept per span link (default 128).
pub const OTEL_LINK_ATTRIBUTE_COUNT_LIMIT: &str = "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT";
/// The level of this crate's own diagnostics: `error`, `warn`, `info` (the
/// default), `debug`.
pub const OTEL_LOG_LEVEL: &str = "OTEL_LOG_LEVEL";

/// The log output's format: `json` (the default when standard output is not
/// a terminal), `ecs`, `logfmt`, or `text` (human-readable, the default on a
/// terminal).
pub const OTEL_LOG_FORMAT: &str = "OTEL_LOG_FORMAT";
/// Attribute keys removed from every span before export (comma-separated);
/// added to the defaults (credential headers).
pub const OBSERVABILITY_SCRUB_DELETE: &str = "OBSERVABILITY_SCRUB_DELETE";
/// Attribute keys whose values are replaced by their SHA-256 (hex).
pub const OBSERVABILITY_SCRUB_HASH: &str = "OBSERVABILITY_SCRUB_HASH";
/// Attribute keys whose values become `[REDACTED]`.
pub const OBSERVABILITY_SCRUB_REDACT: &str = "OBSERVABILITY_SCRUB_REDACT";
/// Built-in patterns replaced in every string value: `email`, `card`.
pub const OBSERVABILITY_SCRUB_PATTERNS: &str = "OBSERVABILITY_SCRUB_PATTERNS";
/// Log filter directives for the log output, `tracing-subscriber` syntax
/// (default `info`). It never changes what is traced.
pub const RUST_LOG: &str = "RUST_LOG";
/// `service.name` when neither the builder, `OTEL_SERVICE_NAME` nor
/// `OTEL_RESOURCE_ATTRIBUTES` sets it.
pub const SERVICE_NAME: &str = "SERVICE_NAME";
/// `service.version` when the builder does not set it.
pub const SERVICE_VERSION: &str = "SERVICE_VERSION";
/// `service.version` when neither the builder nor `SERVICE_VERSION` sets it.
pub const VERSION: &str = "VERSION";
/// `deployment.environment.name` when the builder does not set it.
pub const ENV: &str = "ENV";
/// `deployment.environment.name` when neither the builder nor `ENV` sets it.
pub const ENVIRONMENT: &str = "ENVIRONMENT";

/// Kubernetes pod name, as the downward API usually exposes it
/// (`K8S_POD_NAME`, else `POD_NAME`).
pub const K8S_POD_NAME: &str = "K8S_POD_NAME";
/// Kubernetes namespace (`K8S_NAMESPACE_NAME`, else `K8S_POD_NAMESPACE`, else `POD_NAMESPACE`).
pub const K8S_NAMESPACE_NAME: &str = "K8S_NAMESPACE_NAME";
/// Kubernetes node name (`K8S_NODE_NAME`, else `NODE_NAME`).
pub const K8S_NODE_NAME: &str = "K8S_NODE_NAME";
/// Kubernetes pod UID (`K8S_POD_UID`, else `POD_UID`).
pub const K8S_POD_UID: &str = "K8S_POD_UID";

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where settings are read from: the process environment, or a lookup given
/// to [`Builder::env_lookup`](crate::Builder::env_lookup).
#[derive(Clone)]
pub(crate) struct Env {
    lookup: Option<Arc<Lookup>>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.lookup.is_some() {
            "Env(custom)"
        } else {
            "Env(process)"
        })
    }
}

impl Env {
    pub(crate) fn process() -> Self {
        Self { lookup: None }
    }

    pub(crate) fn custom(lookup: Arc<Lookup>) -> Self {
        Self {
            lookup: Some(lookup),
        }
    }

    /// The trimmed value of `name`; an empty value counts as unset, as the
    /// specification says.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        let raw = match &self.lookup {
            Some(lookup) => lookup(name),
            None => std::env::var(name).ok(),
        }?;
        let trimmed = raw.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    /// The first of `names` that is set, with the name that set it.
    pub(crate) fn first(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names
            .iter()
            .find_map(|name| self.get(name).map(|value| (*name, value)))
    }
}

/// Warnings gathered while settings are resolved, emitted once the log
/// output exists (each bad value warns once per `init`).
#[derive(Debug, Default)]
pub(crate) struct Warnings(Vec<String>);

impl Warnings {
    /// Adds `message` unless it is already there: the generic OTLP
    /// variables are read for each signal, and a bad one warns once.
    pub(crate) fn push(&mut self, message: impl Into<String>) {
        let message = message.into();
        if !self.0.contains(&message) {
            self.0.push(message);
        }
    }

    pub(crate) fn into_vec(self) -> Vec<String> {
        self.0
    }

    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// Parses a boolean the way the specification asks: `true` (any case) is
/// true, `false` or unset is false, anything else warns and is false.
pub(crate) fn parse_bool(env: &Env, name: &str, warnings: &mut Warnings) -> bool {
    match env.get(name) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            warnings.push(format!("{name}={v} is not true or false; using false"));
            false
        }
    }
}

/// Parses a non-negative integer; a bad value warns and yields `None`.
pub(crate) fn parse_u64(env: &Env, name: &str, warnings: &mut Warnings) -> Option<u64> {
    let value = env.get(name)?;
    match value.parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            warnings.push(format!(
                "{name}={value} is not a non-negative integer; using the default"
            ));
            None
        }
    }
}

/// Parses a duration in milliseconds; a bad value warns and yields `None`.
pub(crate) fn parse_millis(env: &Env, name: &str, warnings: &mut Warnings) -> Option<Duration> {
    parse_u64(env, name, warnings).map(Duration::from_millis)
}

pub(crate) use observability_propagation::percent_decode;

/// Parses `key1=value1,key2=value2` with percent-encoded values, the format
/// of `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`. Any
/// malformed member makes the whole list invalid: the error says which.
pub(crate) fn parse_key_values(input: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for member in input.split(',') {
        if member.trim().is_empty() {
            continue;
        }
        let (key, value) = member
            .split_once('=')
            .ok_or_else(|| format!("`{}` has no `=`", member.trim()))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("`{}` has an empty key", member.trim()));
        }
        let key = percent_decode(key).ok_or_else(|| format!("key `{key}` is not decodable"))?;
        let value = value.trim();
        let value = percent_decode(value)
            .ok_or_else(|| format!("the value of `{key}` is not valid percent-encoding"))?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// An environment made of the given pairs, for unit tests.
#[cfg(test)]
pub(crate) fn env_of(vars: &[(&str, &str)]) -> Env {
    let map: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Env::custom(Arc::new(move |name| map.get(name).cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset() {
        let env = env_of(&[("A", "  "), ("B", " x ")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B").as_deref(), Some("x"));
        assert_eq!(env.first(&["A", "B"]), Some(("B", "x".to_owned())));
    }

    #[test]
    fn booleans_follow_the_spec() {
        let mut w = Warnings::default();
        let env = env_of(&[("T", "TRUE"), ("F", "false"), ("X", "yes")]);
        assert!(parse_bool(&env, "T", &mut w));
        assert!(!parse_bool(&env, "F", &mut w));
        assert!(w.as_slice().is_empty());
        assert!(!parse_bool(&env, "X", &mut w));
        assert_eq!(w.as_slice(), ["X=yes is not true or false; using false"]);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2Cc").as_deref(), Some("a b,c"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("100%"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%FF"), None, "not UTF-8");
    }

    #[test]
    fn key_value_lists() {
        assert_eq!(
            parse_key_values(" a = 1 ,b=x%3Dy,, c=").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x=y".into()),
                ("c".into(), String::new())
            ]
        );
        assert!(parse_key_values("a=1,novalue").is_err());
        assert!(parse_key_values("=1").is_err());
        assert!(parse_key_values("a=%E2%82").is_err());
    }
}
