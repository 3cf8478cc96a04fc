//! Telemetry bounded in bytes, not only in spans, against a real OTLP
//! receiver: big spans never take their batch with them, a collector's "too
//! large" answer splits the request, drops are warned while they happen,
//! and a shutdown stuck on a collector that never answers accounts for
//! every span.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use observability_core::opentelemetry::KeyValue;
use observability_core::opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
use observability_core::{ExportStats, TelemetryGuard};
use observability_tests::{Behaviour, OtlpReceiver};

fn guard(vars: &[(&str, &str)], lines: &Lines) -> TelemetryGuard {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let writer = lines.clone();
    observability_core::builder()
        .env_lookup(move |name| map.get(name).cloned())
        .log_writer(move || writer.clone())
        .build()
        .unwrap()
}

use observability_tests::MemoryLog as Lines;

/// A span carrying `bytes` bytes in one attribute.
fn span(guard: &TelemetryGuard, name: &'static str, bytes: usize) {
    let tracer = guard.tracer_provider().unwrap().tracer("bounds");
    let mut span = tracer.start(name);
    if bytes > 0 {
        span.set_attribute(KeyValue::new("payload", "x".repeat(bytes)));
    }
    span.end();
}

fn assert_accounted(stats: ExportStats, created: u64) {
    assert_eq!(stats.exported + stats.dropped(), created, "{stats:?}");
}

#[test]
fn big_spans_do_not_take_their_batch_with_them() {
    // tonic's receiver refuses messages over 4 MiB, the OpenTelemetry
    // Collector's default.
    let receiver = OtlpReceiver::start();
    let lines = Lines::default();
    let endpoint = receiver.grpc_endpoint();
    let guard = guard(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            // Big values are let through, so that requests grow large.
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10000000"),
            ("OBSERVABILITY_BSP_MAX_QUEUE_BYTES", "268435456"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4096"),
        ],
        &lines,
    );
    for i in 0..2000 {
        span(&guard, "normal", 0);
        if i % 25 == 0 {
            span(&guard, "big", 300 * 1024);
        }
    }
    // Alone over the request limit (3 MiB): dropped and counted.
    span(&guard, "huge", 5 * 1024 * 1024);
    span(&guard, "huge", 5 * 1024 * 1024);
    let stats = guard.shutdown_blocking().unwrap();
    let spans = receiver.spans();
    let normal = spans.iter().filter(|s| s.span.name == "normal").count();
    let big = spans.iter().filter(|s| s.span.name == "big").count();
    assert_eq!(normal, 2000, "every normal span arrives: {stats:?}");
    assert_eq!(big, 80, "{stats:?}");
    assert_eq!(stats.dropped_too_large, 2, "{stats:?}");
    assert_eq!(stats.exported, 2080, "{stats:?}");
    assert_accounted(stats, 2082);
    assert_eq!(receiver.refused(), 0);
    let largest = receiver
        .trace_requests()
        .iter()
        .map(|r| prost::Message::encoded_len(&r.request))
        .max()
        .unwrap();
    assert!(largest <= 3 << 20, "a request of {largest} bytes");
}

#[test]
fn a_collector_that_refuses_a_request_as_too_large_gets_it_in_parts() {
    // The HTTP receiver (axum) answers 413 to bodies over 2 MiB, below our
    // 3 MiB request limit: the request is split and sent again.
    let receiver = OtlpReceiver::start();
    let lines = Lines::default();
    let endpoint = receiver.http_endpoint();
    let guard = guard(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10000000"),
        ],
        &lines,
    );
    for _ in 0..7 {
        span(&guard, "part", 400 * 1024);
    }
    // Under our limit, over the collector's even alone.
    span(&guard, "refused", 2500 * 1024);
    let stats = guard.shutdown_blocking().unwrap();
    let spans = receiver.spans();
    assert_eq!(
        spans.iter().filter(|s| s.span.name == "part").count(),
        7,
        "{stats:?}"
    );
    assert_eq!(stats.exported, 7, "{stats:?}");
    assert_eq!(stats.dropped_too_large, 1, "{stats:?}");
    assert_accounted(stats, 8);
    // Reported as it happened, or in the summary at shutdown.
    let text = lines.text();
    assert!(
        text.contains("spans too large to send") || text.contains("\"dropped_too_large\":1"),
        "{text}"
    );
}

#[test]
fn drops_are_warned_while_a_slow_collector_holds_the_export() {
    let receiver = OtlpReceiver::start();
    receiver.set_behaviour(Behaviour::Delay(Duration::from_secs(3)));
    let lines = Lines::default();
    let endpoint = receiver.http_endpoint();
    let guard = guard(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "16"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16"),
            ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "1"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
        &lines,
    );
    // The first batch goes out and waits 3 s for its answer; the queue
    // then fills and spans are dropped.
    for _ in 0..16 {
        span(&guard, "first", 0);
    }
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..100 {
        span(&guard, "dropped", 0);
    }
    let first_drop = Instant::now();
    assert!(guard.stats().dropped_queue_full > 0, "{:?}", guard.stats());
    while !lines.text().contains("the span queue is full") {
        assert!(
            first_drop.elapsed() < Duration::from_millis(1500),
            "no warning {:?} after the first drop, while the export waits: {}",
            first_drop.elapsed(),
            lines.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let warned = lines.text();
    let line = warned
        .lines()
        .find(|l| l.contains("the span queue is full"))
        .unwrap();
    assert!(line.contains("dropped and counted"), "{line}");
    receiver.set_behaviour(Behaviour::Accept);
    let stats = guard.shutdown_blocking().unwrap();
    assert_accounted(stats, 116);
}

#[test]
fn a_shutdown_stuck_on_a_collector_that_never_answers_accounts_for_every_span() {
    // A black hole: accepts connections, reads, never answers.
    let addr = observability_tests::black_hole();
    let lines = Lines::default();
    let endpoint = format!("http://{addr}");
    let guard = observability_core::builder()
        .env_lookup(move |name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            "OTEL_BSP_SCHEDULE_DELAY" => Some("50".into()),
            _ => None,
        })
        .log_writer({
            let lines = lines.clone();
            move || lines.clone()
        })
        .shutdown_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let created = 2800;
    for _ in 0..created {
        span(&guard, "lost", 0);
    }
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let result = guard.shutdown_blocking();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let stats = match result {
        Ok(stats) => stats,
        Err(observability_core::Error::Timeout { stats, .. }) => stats,
        Err(other) => panic!("{other}"),
    };
    assert_eq!(stats.exported, 0, "{stats:?}");
    assert_accounted(stats, created);
}

#[test]
fn a_collector_that_never_answers_counts_as_a_timeout() {
    let addr = observability_tests::black_hole();
    let lines = Lines::default();
    let endpoint = format!("http://{addr}");
    let guard = guard(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
        &lines,
    );
    span(&guard, "unanswered", 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while guard.stats().dropped_export_failed == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = guard.stats();
    assert_eq!(stats.dropped_export_failed, 1, "{stats:?}");
    assert_eq!(stats.failures.timeout, 1, "{stats:?}");
    assert_eq!(
        stats
            .failures
            .get(observability_core::FailureCause::Timeout),
        1
    );
    let stats = guard.shutdown_blocking().unwrap_or_else(|e| match e {
        observability_core::Error::Timeout { stats, .. } => stats,
        other => panic!("{other}"),
    });
    assert_accounted(stats, 1);
}
