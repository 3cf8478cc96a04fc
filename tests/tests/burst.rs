//! A burst of 1,000,000 spans: nothing blocks, memory stays bounded (the
//! queue holds at most `OTEL_BSP_MAX_QUEUE_SIZE` spans), and every span is
//! accounted for: delivered + dropped = created. Its own binary, so the
//! memory reading is this test's alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use observability_core::opentelemetry::trace::{Span, Tracer, TracerProvider};
use observability_tests::OtlpReceiver;

/// Peak resident memory of this process, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The bound this test holds the whole process to while one million spans
/// go through the pipeline (documented in docs/guide.md).
const MAX_PEAK_RSS_MIB: u64 = 64;
const SPANS: u64 = 1_000_000;

#[test]
fn a_million_span_burst_is_bounded_and_fully_accounted_for() {
    let receiver = OtlpReceiver::start_counting("127.0.0.1:0", "127.0.0.1:0");
    let endpoint = receiver.grpc_endpoint();
    let guard = observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .env_lookup(move |name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".to_owned()),
            _ => None,
        })
        .shutdown_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("burst");
    let started = Instant::now();
    for i in 0..SPANS {
        let mut span = tracer.start("burst");
        span.set_attribute(observability_core::KeyValue::new("i", i as i64));
        span.end();
    }
    let created_in = started.elapsed();
    let stats = guard.shutdown_blocking().unwrap();
    let received = receiver.span_count();
    let peak = peak_rss_kib();
    println!(
        "created {SPANS} spans in {created_in:?}; exported {} dropped {} (queue full {}, export failed {}, at shutdown {}); received {received}; peak RSS {:?} KiB",
        stats.exported,
        stats.dropped(),
        stats.dropped_queue_full,
        stats.dropped_export_failed,
        stats.dropped_at_shutdown,
        peak
    );
    assert_eq!(
        stats.exported + stats.dropped(),
        SPANS,
        "delivered + dropped = created"
    );
    assert_eq!(
        received, stats.exported,
        "every span counted as exported arrived"
    );
    assert!(stats.exported > 0);
    if let Some(peak) = peak {
        assert!(
            peak / 1024 < MAX_PEAK_RSS_MIB,
            "peak RSS {} MiB",
            peak / 1024
        );
    }
}
