//! No value of a numeric `OTEL_*` (or `OBSERVABILITY_*`) variable can make
//! `init` panic, abort or take memory it was not asked for: anything is
//! either used within its bound or warned about and replaced.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proptest::prelude::*;

/// Every variable read as a number, a duration or a ratio.
const NUMERIC: &[&str] = &[
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_MAX_CONCURRENT_EXPORTS",
    "OBSERVABILITY_BSP_MAX_QUEUE_BYTES",
    "OBSERVABILITY_OTLP_MAX_REQUEST_BYTES",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT",
    "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRIC_EXPORT_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OBSERVABILITY_METRICS_CARDINALITY_LIMIT",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        "[0-9]{1,40}",
        "-[0-9]{1,20}",
        "[0-9]{1,3}\\.[0-9]{1,3}",
        Just("18446744073709551615".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("100000000".to_owned()),
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        Just("1e308".to_owned()),
        Just("0".to_owned()),
    ]
}

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_numeric_value_builds_and_shuts_down(
        name in proptest::sample::select(NUMERIC),
        value in value(),
        exporter in proptest::sample::select(&["otlp", "console"][..]),
    ) {
        let before = rss_kib();
        let lookup_value = value.clone();
        let guard = observability_core::builder()
            .env_lookup(move |n| match n {
                n if n == name => Some(lookup_value.clone()),
                "OTEL_TRACES_EXPORTER" => Some(exporter.to_owned()),
                // Nothing listens on the discard port: exports fail fast.
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:9".to_owned()),
                _ => None,
            })
            .log_writer(std::io::sink)
            .shutdown_timeout(Duration::from_secs(2))
            .build();
        let guard = guard.unwrap();
        let grown = rss_kib().saturating_sub(before);
        prop_assert!(grown < 64 * 1024, "{name}={value:?} took {grown} KiB");
        let _ = guard.shutdown_blocking();
    }
}
