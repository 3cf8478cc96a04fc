//! Metrics from the same `init()`, against real receivers: RED metrics of
//! the server and client layers over OTLP (gRPC and HTTP/protobuf, decoded
//! with opentelemetry-proto) with exemplars that name exported spans, the
//! SDK's own counters equal to `stats()`, and a Prometheus scrape parsed by
//! Python's prometheus-client in both formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observability_http::{ClientLayer, DURATION_BOUNDARIES, ServerLayer};
use observability_tests::{OtlpReceiver, hex, serve_router as serve, value_to_string};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue as ProtoKeyValue;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use tower::ServiceExt;

const REQUESTS: u64 = 7;

fn guard(vars: &[(&str, &str)]) -> observability_core::TelemetryGuard {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    observability_core::builder()
        .env_lookup(move |name| map.get(name).cloned())
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .build()
        .unwrap()
}

/// An app with the server layer, called `REQUESTS` times through the client
/// layer, both recording with the guard's providers.
async fn traffic(guard: &observability_core::TelemetryGuard) -> SocketAddr {
    let meters = guard.meter_provider().unwrap();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .layer(
            ServerLayer::builder()
                .tracer_provider(guard.tracer_provider().unwrap())
                .meter_provider(meters)
                .build(),
        );
    let addr = serve(app).await;
    let client = tower::ServiceBuilder::new()
        .layer(
            ClientLayer::builder()
                .tracer_provider(guard.tracer_provider().unwrap())
                .meter_provider(meters)
                .build(),
        )
        .service(Client::builder(TokioExecutor::new()).build(HttpConnector::new()));
    for i in 0..REQUESTS {
        let request = Request::get(format!("http://{addr}/orders/{i}"))
            .body(Body::empty())
            .unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    addr
}

fn attr(attributes: &[ProtoKeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(value_to_string)
}

fn find<'a>(request: &'a ExportMetricsServiceRequest, name: &str) -> Option<&'a Metric> {
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .find(|m| m.name == name)
}

/// The sum of a counter's points with `attributes` (key, value) all present.
fn counter(
    request: &ExportMetricsServiceRequest,
    name: &str,
    with: &[(&str, &str)],
) -> Option<i64> {
    let Some(metric::Data::Sum(sum)) = find(request, name)?.data.as_ref() else {
        return None;
    };
    Some(
        sum.data_points
            .iter()
            .filter(|p| {
                with.iter()
                    .all(|(k, v)| attr(&p.attributes, k).as_deref() == Some(*v))
            })
            .filter(|p| {
                with.iter().any(|(k, _)| *k == "error.type")
                    || attr(&p.attributes, "error.type").is_none()
            })
            .map(|p| match p.value {
                Some(number_data_point::Value::AsInt(v)) => v,
                Some(number_data_point::Value::AsDouble(v)) => v as i64,
                None => 0,
            })
            .sum(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_metrics_and_exemplars_arrive_over_both_protocols() {
    for protocol in ["grpc", "http/protobuf"] {
        let receiver = OtlpReceiver::start();
        let endpoint = receiver.endpoint(protocol);
        let guard = guard(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_SERVICE_NAME", "metrics-e2e"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ]);
        traffic(&guard).await;
        // Spans first, then metrics collected after them: the SDK's own
        // counters then equal stats().
        guard.force_flush().unwrap();
        guard.force_flush().unwrap();
        let stats = guard.stats();
        let spans = receiver.wait_for_spans(2 * REQUESTS as usize, Duration::from_secs(10));
        let requests = receiver.wait_for_metrics(Duration::from_secs(10));
        let last = &requests.last().expect("a metric export arrived").request;
        let resource = last.resource_metrics[0].resource.as_ref().unwrap();
        assert_eq!(
            attr(&resource.attributes, "service.name").as_deref(),
            Some("metrics-e2e")
        );

        // http.server.request.duration: one series, every request counted.
        let metric = find(last, "http.server.request.duration").expect("server duration");
        assert_eq!(metric.unit, "s");
        let Some(metric::Data::Histogram(histogram)) = &metric.data else {
            panic!("{protocol}: not a histogram: {metric:?}")
        };
        assert_eq!(histogram.aggregation_temporality, 2, "cumulative");
        assert_eq!(
            histogram.data_points.len(),
            1,
            "{protocol}: {:?}",
            histogram.data_points
        );
        let point = &histogram.data_points[0];
        assert_eq!(point.count, REQUESTS, "{protocol}");
        assert_eq!(point.bucket_counts.iter().sum::<u64>(), REQUESTS);
        assert_eq!(point.explicit_bounds, DURATION_BOUNDARIES.to_vec());
        for (key, value) in [
            ("http.request.method", "GET"),
            ("http.route", "/orders/{id}"),
            ("http.response.status_code", "200"),
            ("url.scheme", "http"),
        ] {
            assert_eq!(
                attr(&point.attributes, key).as_deref(),
                Some(value),
                "{protocol}: {key}"
            );
        }
        assert!(attr(&point.attributes, "error.type").is_none());

        // Its exemplars name exported server spans.
        assert!(!point.exemplars.is_empty(), "{protocol}: no exemplar");
        for exemplar in &point.exemplars {
            let (trace_id, span_id) = (hex(&exemplar.trace_id), hex(&exemplar.span_id));
            let span = spans
                .iter()
                .find(|s| s.span_id() == span_id)
                .unwrap_or_else(|| {
                    panic!("{protocol}: the exemplar's span {span_id} was not exported")
                });
            assert_eq!(span.trace_id(), trace_id);
            assert_eq!(span.span.name, "GET /orders/{id}");
        }

        // The client's duration, and the active requests back to zero.
        let client = find(last, "http.client.request.duration").expect("client duration");
        let Some(metric::Data::Histogram(histogram)) = &client.data else {
            panic!("not a histogram")
        };
        assert_eq!(
            histogram.data_points.iter().map(|p| p.count).sum::<u64>(),
            REQUESTS
        );
        assert_eq!(
            attr(&histogram.data_points[0].attributes, "server.address").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(counter(last, "http.server.active_requests", &[]), Some(0));

        // The SDK's own health equals stats().
        assert_eq!(
            counter(last, "otel.sdk.exporter.span.exported", &[]),
            Some(stats.exported as i64),
            "{protocol}: {stats:?}"
        );
        assert_eq!(stats.exported, 2 * REQUESTS, "{protocol}");
        assert_eq!(
            counter(
                last,
                "otel.sdk.processor.span.processed",
                &[("error.type", "queue_full")]
            ),
            Some(stats.dropped_queue_full as i64)
        );
        assert_eq!(
            counter(
                last,
                "otel.sdk.span.started",
                &[("otel.span.sampling_result", "RECORD_AND_SAMPLE")]
            ),
            Some(2 * REQUESTS as i64),
            "{protocol}: a server and a client span per request"
        );
        let exports = find(last, "otel.sdk.exporter.operation.duration").expect("export durations");
        let Some(metric::Data::Histogram(exports)) = &exports.data else {
            panic!("not a histogram")
        };
        let component = if protocol == "grpc" {
            "otlp_grpc_span_exporter"
        } else {
            "otlp_http_span_exporter"
        };
        assert!(
            exports.data_points.iter().any(|p| p.count >= 1
                && attr(&p.attributes, "otel.component.type").as_deref() == Some(component)),
            "{protocol}: {exports:?}"
        );
        guard.shutdown().await.unwrap();
    }
}

/// `GET /metrics` with `accept`, over a plain socket.
fn scrape(addr: SocketAddr, accept: &str) -> (String, String) {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap()
        .to_owned();
    (content_type, body.to_owned())
}

/// Parses `body` with prometheus-client (Python) and prints what the test
/// checks: one line per sample, and one per exemplar.
fn parse_with_python(body: &str, openmetrics: bool) -> String {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families as text
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
body = sys.stdin.read()
parse = om if sys.argv[1] == "om" else text
for family in parse(body):
    for s in family.samples:
        print("sample", family.type, s.name, s.labels.get("le", ""), s.labels.get("http_route", ""), float(s.value))
        if s.exemplar:
            print("exemplar", s.name, s.labels.get("le", ""), s.exemplar.labels["trace_id"], s.exemplar.labels["span_id"], s.exemplar.value)
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, if openmetrics { "om" } else { "text" }])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test.sh installs prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus-client refused the scrape: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_scrape_parses_in_both_formats_with_exemplars_in_openmetrics() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.http_endpoint();
    let guard = guard(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_METRICS_EXPORTER", "prometheus"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "0"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ]);
    let addr = guard.prometheus_address().expect("the endpoint listens");
    traffic(&guard).await;
    guard.force_flush().unwrap();
    let spans = receiver.wait_for_spans(2 * REQUESTS as usize, Duration::from_secs(10));
    let (text_type, text) = tokio::task::spawn_blocking(move || scrape(addr, "text/plain"))
        .await
        .unwrap();
    assert!(
        text_type.starts_with("text/plain; version=0.0.4"),
        "{text_type}"
    );
    let parsed = parse_with_python(&text, false);
    let count = format!(
        "sample histogram http_server_request_duration_seconds_count  /orders/{{id}} {}.0",
        REQUESTS
    );
    assert!(
        parsed.lines().any(|l| l == count),
        "{count} not in:\n{parsed}"
    );
    assert!(
        !parsed.contains("exemplar"),
        "the text format carries no exemplars"
    );

    let (om_type, om) = tokio::task::spawn_blocking(move || {
        scrape(
            addr,
            "application/openmetrics-text; version=1.0.0,text/plain;q=0.5",
        )
    })
    .await
    .unwrap();
    assert!(
        om_type.starts_with("application/openmetrics-text"),
        "{om_type}"
    );
    assert!(om.ends_with("# EOF\n"));
    let parsed = parse_with_python(&om, true);
    assert!(
        parsed.lines().any(|l| l == count),
        "{count} not in:\n{parsed}"
    );
    let exemplars: Vec<&str> = parsed
        .lines()
        .filter(|l| l.starts_with("exemplar http_server_request_duration_seconds_bucket"))
        .collect();
    assert!(!exemplars.is_empty(), "no exemplar in:\n{om}");
    for line in exemplars {
        let fields: Vec<&str> = line.split(' ').collect();
        let (trace_id, span_id) = (fields[3], fields[4]);
        let span = spans
            .iter()
            .find(|s| s.span_id() == span_id)
            .unwrap_or_else(|| panic!("the exemplar's span {span_id} was not exported"));
        assert_eq!(span.trace_id(), trace_id);
    }
    // The SDK's own counters, named for PromQL.
    assert!(
        parsed
            .lines()
            .any(|l| l.starts_with("sample counter otel_sdk_exporter_span_exported_total")),
        "{parsed}"
    );
    guard.shutdown().await.unwrap();
}

#[test]
fn shutdown_with_a_scrape_endpoint_still_waits_for_the_spans() {
    // Metrics with no reader of their own (Prometheus only) have nothing to
    // flush: shutdown must still wait for the span exports.
    let receiver = OtlpReceiver::start();
    receiver.set_behaviour(observability_tests::Behaviour::Delay(Duration::from_secs(
        2,
    )));
    let endpoint = receiver.http_endpoint();
    let map: HashMap<&str, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_METRICS_EXPORTER", "prometheus".to_owned()),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1".to_owned()),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "0".to_owned()),
    ]
    .into_iter()
    .collect();
    let guard = observability_core::builder()
        .env_lookup(move |name| map.get(name).cloned())
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .shutdown_timeout(Duration::from_secs(6))
        .build()
        .unwrap();
    use observability_core::opentelemetry::trace::{Tracer as _, TracerProvider as _};
    drop(
        guard
            .tracer_provider()
            .unwrap()
            .tracer("t")
            .start("waited_for"),
    );
    let stats = guard.shutdown_blocking().unwrap();
    assert_eq!((stats.exported, stats.dropped()), (1, 0), "{stats:?}");
}
