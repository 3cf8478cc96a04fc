//! A collector that is slow to answer: while one batch waits for its answer,
//! the next ones are already on their way, at most
//! `OTEL_BSP_MAX_CONCURRENT_EXPORTS` at once, and every span arrives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use observability_tests::{Behaviour, OtlpReceiver};

#[test]
fn exports_overlap_up_to_the_limit_and_every_span_arrives() {
    for (protocol, limit) in [("http/protobuf", 1), ("http/protobuf", 3), ("grpc", 3)] {
        let receiver = OtlpReceiver::start_counting("127.0.0.1:0", "127.0.0.1:0");
        receiver.set_behaviour(Behaviour::Delay(Duration::from_millis(300)));
        let endpoint = receiver.endpoint(protocol);
        let guard = observability_core::builder()
            .log_writer(tracing_subscriber::fmt::TestWriter::new())
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
        let received = receiver.wait_for_span_count(60, Duration::from_secs(20));
        assert_eq!(received, 60, "{protocol}, limit {limit}");
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
