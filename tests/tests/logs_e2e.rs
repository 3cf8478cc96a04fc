//! JSON logs from `init`'s log output carry the ids of the spans that
//! arrive at the collector, including for a server span whose parent came
//! from a remote `traceparent`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http_body_util::BodyExt;
use observability_tests::{MemoryLog, OtlpReceiver};
use tower::ServiceExt;

fn telemetry(receiver: &OtlpReceiver, logs: &MemoryLog) -> observability_core::TelemetryGuard {
    let endpoint = receiver.http_endpoint();
    observability_core::builder()
        .env_lookup(move |name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            "OTEL_LOG_FORMAT" => Some("json".into()),
            "ENV" => Some("staging".into()),
            _ => None,
        })
        .service_name("orders")
        .log_writer(logs.clone())
        .build()
        .unwrap()
}

#[test]
fn log_lines_carry_the_ids_the_collector_receives() {
    let receiver = OtlpReceiver::start();
    let logs = MemoryLog::default();
    let guard = telemetry(&receiver, &logs);
    tracing::dispatcher::with_default(guard.dispatch(), || {
        let _span = tracing::info_span!("checkout", cart.items = 3).entered();
        tracing::info!(user_id = 42, password = "hunter2", "cart checked out");
    });
    tracing::dispatcher::with_default(guard.dispatch(), || tracing::info!("outside"));
    drop(guard);

    let span = receiver
        .wait_for_span("checkout", Duration::from_secs(10))
        .unwrap();
    let line = logs.line_with("cart checked out");
    assert_eq!(line["trace_id"], span.trace_id());
    assert_eq!(line["span_id"], span.span_id());
    assert_eq!(line["trace_flags"], "01");
    assert_eq!(line["service.name"], "orders");
    assert_eq!(line["deployment.environment.name"], "staging");
    assert_eq!(line["user_id"], 42);
    assert_eq!(line["cart.items"], 3);
    assert_eq!(line["password"], "[REDACTED]");
    assert_eq!(line["level"], "INFO");
    assert!(logs.line_with("outside").get("trace_id").is_none());
    // INFO events stay out of the span; only WARN and above become span events.
    assert!(span.span.events.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn handler_logs_carry_the_server_span_of_a_remote_parent() {
    let receiver = OtlpReceiver::start();
    let logs = MemoryLog::default();
    let guard = telemetry(&receiver, &logs);
    let _d = tracing::dispatcher::set_default(guard.dispatch());
    opentelemetry::global::set_text_map_propagator(
        observability_core::propagation::TraceContextPropagator::new(),
    );
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                tracing::info!("loading order");
                tracing::warn!("stock is low");
                "ok"
            }),
        )
        .layer(
            observability_http::ServerLayer::builder()
                .tracer_provider(guard.tracer_provider().unwrap())
                .build(),
        );
    let request = http::Request::get("/orders/1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    guard.shutdown().await.unwrap();

    let server = receiver
        .wait_for_span("GET /orders/{id}", Duration::from_secs(10))
        .unwrap();
    assert_eq!(server.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    let line = logs.line_with("loading order");
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        line["span_id"],
        server.span_id(),
        "the server span, not the caller's"
    );
    assert_eq!(logs.line_with("stock is low")["span_id"], server.span_id());
}

#[test]
fn logs_are_exported_over_otlp_with_their_trace_context_as_the_log_filter_says() {
    for protocol in ["grpc", "http/protobuf"] {
        let receiver = OtlpReceiver::start();
        let endpoint = receiver.endpoint(protocol);
        let lines = MemoryLog::default();
        let guard = observability_core::builder()
            .env_lookup(move |name| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
                "OTEL_EXPORTER_OTLP_PROTOCOL" => Some(protocol.to_owned()),
                "OTEL_LOGS_EXPORTER" => Some("otlp".into()),
                "OTEL_LOG_FORMAT" => Some("json".into()),
                _ => None,
            })
            .service_name("orders")
            .log_filter("info,orders::noisy=warn")
            .log_writer(lines.clone())
            .build()
            .unwrap();
        tracing::dispatcher::with_default(guard.dispatch(), || {
            let _span = tracing::info_span!("checkout").entered();
            tracing::info!(user_id = 42, "exported log");
            // The log filter decides for the exported records as for the
            // lines: neither has these two.
            tracing::debug!("below the log level");
            tracing::info!(target: "orders::noisy", "below its target's level");
            // The exporter's own stack is written as a line, never exported
            // (it would feed itself).
            tracing::info!(target: "hyper::proto::h1", "from the exporter's stack");
            tracing::info!(target: "hyperdrive", "a crate that only starts like one");
        });
        drop(guard);
        assert!(!lines.text().contains("below the"), "{protocol}");
        assert_eq!(
            lines.line_with("from the exporter's stack")["level"],
            "INFO"
        );
        let span = receiver
            .wait_for_span("checkout", Duration::from_secs(10))
            .unwrap();
        let logs = receiver.wait_for_logs(2, Duration::from_secs(10));
        let record = logs
            .iter()
            .find(|l| {
                l.record
                    .body
                    .as_ref()
                    .map(observability_tests::value_to_string)
                    .as_deref()
                    == Some("exported log")
            })
            .unwrap_or_else(|| panic!("{protocol}: no exported log among {logs:?}"));
        let bodies: Vec<String> = logs
            .iter()
            .filter_map(|l| l.record.body.as_ref())
            .map(observability_tests::value_to_string)
            .collect();
        assert!(
            bodies
                .iter()
                .any(|b| b == "a crate that only starts like one"),
            "{protocol}: {bodies:?}"
        );
        for absent in [
            "below the log level",
            "below its target's level",
            "from the exporter's stack",
        ] {
            assert!(
                !bodies.iter().any(|b| b == absent),
                "{protocol}: {bodies:?}"
            );
        }
        assert_eq!(record.trace_id(), span.trace_id(), "{protocol}");
        assert_eq!(record.span_id(), span.span_id(), "{protocol}");
        assert_eq!(record.record.severity_text, "INFO");
        assert!(
            record.resource.iter().any(|kv| kv.key == "service.name"
                && kv
                    .value
                    .as_ref()
                    .map(observability_tests::value_to_string)
                    .as_deref()
                    == Some("orders")),
            "{protocol}"
        );
        let transport = receiver.log_requests()[0].transport;
        assert_eq!(
            transport,
            if protocol == "grpc" {
                observability_tests::Transport::Grpc
            } else {
                observability_tests::Transport::Http
            }
        );
    }
}

/// With the log filter `off` the subscriber has no log output at all; the
/// trace is whole: spans at the trace level, and warnings as span events.
#[test]
fn with_the_log_filter_off_nothing_is_written_and_the_trace_is_whole() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.http_endpoint();
    let logs = MemoryLog::default();
    let guard = observability_core::builder()
        .env_lookup(move |name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            "OTEL_LOGS_EXPORTER" => Some("otlp".into()),
            _ => None,
        })
        .log_filter("off")
        .log_writer(logs.clone())
        .build()
        .unwrap();
    tracing::dispatcher::with_default(guard.dispatch(), || {
        let _span = tracing::info_span!("checkout", cart.items = 3).entered();
        tracing::info!("routine");
        tracing::warn!("stock is low");
    });
    drop(guard);
    let span = receiver
        .wait_for_span("checkout", Duration::from_secs(10))
        .unwrap();
    assert_eq!(span.attr("cart.items").as_deref(), Some("3"));
    let events: Vec<&str> = span.span.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(events, ["stock is low"]);
    assert_eq!(logs.text(), "");
    assert!(receiver.log_requests().is_empty());
}
