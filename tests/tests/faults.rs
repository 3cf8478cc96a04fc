//! The collector absent, failing, throttling, dying and coming back: the
//! application never waits, dropped spans are counted, new spans arrive
//! once the collector is back, and delivered + dropped = created.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use observability_tests::{Behaviour, OtlpReceiver};

const WAIT: Duration = Duration::from_secs(15);

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Creates `n` spans; returns how long that took (the request path).
fn burst(guard: &observability_core::TelemetryGuard, name: &'static str, n: usize) -> Duration {
    let started = Instant::now();
    tracing::dispatcher::with_default(guard.dispatch(), || {
        for _ in 0..n {
            let _s = tracing::info_span!("work", phase = name).entered();
        }
    });
    started.elapsed()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_collector_comes_and_goes() {
    for protocol in ["http/protobuf", "grpc"] {
        let (grpc, http) = (free_addr(), free_addr());
        let endpoint = if protocol == "grpc" {
            format!("http://{grpc}")
        } else {
            format!("http://{http}")
        };
        let guard = observability_core::builder()
            .log_writer(tracing_subscriber::fmt::TestWriter::new())
            .env_lookup(move |name| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
                "OTEL_EXPORTER_OTLP_PROTOCOL" => Some(protocol.to_owned()),
                "OTEL_BSP_SCHEDULE_DELAY" => Some("50".to_owned()),
                "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("1000".to_owned()),
                _ => None,
            })
            .build()
            .unwrap();
        let mut created = 0u64;

        // 1. Absent at start: spans are dropped and counted, nothing waits.
        let took = burst(&guard, "absent", 100);
        created += 100;
        assert!(
            took < Duration::from_secs(2),
            "{protocol}: the request path waited {took:?}"
        );
        wait_until("export failures counted", || {
            guard.stats().dropped_export_failed >= 100
        });
        // Nothing listens: counted as unreachable, in all and by cause.
        let stats = guard.stats();
        assert!(stats.failures.unreachable >= 100, "{protocol}: {stats:?}");
        assert_eq!(stats.failures.total(), stats.dropped_export_failed);

        // 2. It appears: new spans arrive.
        let receiver = OtlpReceiver::start_counting(&grpc, &http);
        burst(&guard, "up", 50);
        created += 50;
        wait_until("spans after start", || receiver.span_count() >= 50);

        // 3. It fails (503 / UNAVAILABLE), then throttles (429 / RESOURCE_EXHAUSTED).
        for behaviour in [
            Behaviour::Unavailable,
            Behaviour::TooManyRequests {
                retry_after_secs: 1,
            },
        ] {
            receiver.set_behaviour(behaviour);
            let before = guard.stats().dropped_export_failed;
            let took = burst(&guard, "refused", 20);
            created += 20;
            assert!(
                took < Duration::from_secs(2),
                "{protocol} {behaviour:?}: waited {took:?}"
            );
            wait_until("refusals counted", || {
                guard.stats().dropped_export_failed >= before + 20
            });
            assert!(receiver.refused() > 0);
        }
        receiver.set_behaviour(Behaviour::Accept);
        let before = receiver.span_count();
        burst(&guard, "recovered", 30);
        created += 30;
        wait_until("spans after recovery", || {
            receiver.span_count() >= before + 30
        });

        // 4. It dies mid-run, then comes back on the same address.
        drop(receiver);
        burst(&guard, "dead", 40);
        created += 40;
        std::thread::sleep(Duration::from_millis(300));
        let receiver = OtlpReceiver::start_counting(&grpc, &http);
        burst(&guard, "back", 25);
        created += 25;
        wait_until("spans after coming back", || receiver.span_count() >= 25);

        let stats = guard.shutdown_blocking().unwrap();
        assert_eq!(
            stats.exported + stats.dropped(),
            created,
            "{protocol}: {stats:?}"
        );
        assert!(
            stats.dropped_queue_full == 0,
            "{protocol}: the queue never filled: {stats:?}"
        );
    }
}
