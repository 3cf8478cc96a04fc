//! A collector that is slow to answer: while one batch waits for its answer,
//! the next ones are already on their way, at most
//! `OTEL_BSP_MAX_CONCURRENT_EXPORTS` at once, and every span arrives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use observability_tests::{Behaviour, OtlpReceiver};

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn exports_overlap_up_to_the_limit_and_every_span_arrives() {
    for (protocol, limit) in [("http/protobuf", 1), ("http/protobuf", 3), ("grpc", 3)] {
        let receiver = OtlpReceiver::start_counting("127.0.0.1:0", "127.0.0.1:0");
        receiver.set_behaviour(Behaviour::Delay(Duration::from_millis(300)));
        let endpoint = if protocol == "grpc" {
            receiver.grpc_endpoint()
        } else {
            receiver.http_endpoint()
        };
        let guard = observability_core::builder()
            .env_lookup(move |name| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
                "OTEL_EXPORTER_OTLP_PROTOCOL" => Some(protocol.to_owned()),
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" => Some("10".to_owned()),
                "OTEL_BSP_MAX_CONCURRENT_EXPORTS" => Some(limit.to_string()),
                // Only full batches go out before the end of the test.
                "OTEL_BSP_SCHEDULE_DELAY" => Some("60000".to_owned()),
                _ => None,
            })
            .build()
            .unwrap();
        // Six full batches, queued while the first export waits.
        tracing::dispatcher::with_default(guard.dispatch(), || {
            for n in 0..60 {
                let _s = tracing::info_span!("work", n).entered();
            }
        });
        wait_until("every span received", || receiver.span_count() >= 60);
        assert_eq!(receiver.span_count(), 60, "{protocol}, limit {limit}");
        assert_eq!(
            receiver.most_concurrent_exports(),
            limit,
            "{protocol}: exports in flight at once with a limit of {limit}"
        );
        let stats = guard.shutdown_blocking().unwrap();
        assert_eq!(stats.exported, 60, "{protocol}, limit {limit}: {stats:?}");
        assert_eq!(stats.dropped(), 0, "{protocol}, limit {limit}: {stats:?}");
    }
}
