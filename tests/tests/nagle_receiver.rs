//! A gRPC receiver that keeps Nagle's algorithm on (tonic's server unless
//! told otherwise) holds each small frame back until its previous one is
//! acknowledged. If the exporter delayed its acknowledgements, every export
//! would stall on them: with one export in flight and a receiver answering
//! in 10 ms, about 17,000 of these spans a second got through and 15 % of a
//! sustained 20,000 a second overflowed the queue. The exporter
//! acknowledges at once, so such a receiver gets every span, as one with
//! Nagle off does (about 27,000 a second in this set-up).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use observability_core::opentelemetry::trace::{Span, Tracer, TracerProvider};
use observability_tests::{Behaviour, OtlpReceiver};

const RATE: u64 = 20_000;
const SECONDS: u64 = 2;

/// What a server span carries (about 300 bytes encoded): a batch is larger
/// than HTTP/2's initial window, so the receiver's window updates, small
/// frames, are on the path of every export.
fn server_attributes() -> Vec<observability_core::KeyValue> {
    use observability_core::KeyValue;
    vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.route", "/orders/{id}"),
        KeyValue::new("url.path", "/orders/4bf92f3577b34da6"),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("server.address", "orders.internal.example.com"),
        KeyValue::new("server.port", 8080),
        KeyValue::new("client.address", "10.12.34.56"),
        KeyValue::new("network.peer.address", "10.12.34.56"),
        KeyValue::new("network.peer.port", 51234),
        KeyValue::new("network.protocol.version", "1.1"),
        KeyValue::new("user_agent.original", "curl/8.5.0 (x86_64-pc-linux-gnu)"),
        KeyValue::new("http.response.status_code", 200),
    ]
}

#[test]
fn a_receiver_with_nagle_on_gets_every_span_at_a_sustained_rate() {
    let receiver = OtlpReceiver::start_counting_with_nagle("127.0.0.1:0", "127.0.0.1:0");
    receiver.set_behaviour(Behaviour::Delay(Duration::from_millis(10)));
    let endpoint = receiver.grpc_endpoint();
    let guard = observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .env_lookup(move |name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".to_owned()),
            "OTEL_METRICS_EXPORTER" => Some("none".to_owned()),
            // One export at a time: the stall, if any, is not hidden by
            // exports overlapping.
            "OTEL_BSP_MAX_CONCURRENT_EXPORTS" => Some("1".to_owned()),
            _ => None,
        })
        .shutdown_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("nagle");
    let total = RATE * SECONDS;
    let started = Instant::now();
    let mut created = 0;
    // Spans go out in slices of a millisecond to hold the rate.
    while created < total {
        for _ in 0..RATE / 1000 {
            let mut span = tracer.start("GET /orders/{id}");
            span.set_attributes(server_attributes());
            span.end();
            created += 1;
        }
        let due = started + Duration::from_micros(created * 1_000_000 / RATE);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let stats = guard.shutdown_blocking().unwrap();
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert_eq!(stats.exported, total, "{stats:?}");
    assert_eq!(receiver.span_count(), total, "every span arrived");
}
