//! Requests the sampler drops unseen, under the globals `init()` installs:
//! the server layer reads the W3C headers itself and makes no span, and
//! downstream nothing can tell. Inside such a request the handler's context
//! and its `tracing` spans see the caller's trace, not sampled; outgoing
//! HTTP calls and messages carry the caller's trace id, the sampled flag
//! off, the random flag, `tracestate` and `baggage` as received; log lines
//! carry the trace id; nothing is exported; and every span is still
//! counted in `otel.sdk.span.started` by sampling result. A sampled caller
//! and a request without `traceparent` still get recorded spans. One test:
//! the globals are per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observability_core::OpenTelemetrySpanExt;
use observability_core::opentelemetry::Context;
use observability_core::opentelemetry::trace::TraceContextExt;
use observability_http::{ClientLayer, ServerLayer};
use observability_tests::{MemoryLog, OtlpReceiver, serve_router as serve, value_to_string};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use serde_json::{Value, json};
use tower::ServiceExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";
/// One member the OpenTelemetry API's `TraceState` cannot hold (two `@`):
/// it travels as received all the same.
const TRACESTATE: &str = "vendor=v1,1tenant@sys@x=y";
const BAGGAGE: &str = "user=alice";

/// A response's body, as JSON.
async fn json_body<B>(response: http::Response<B>) -> Value
where
    B: axum::body::HttpBody,
    B::Error: std::fmt::Debug,
{
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&body).unwrap()
}

fn header(headers: &HeaderMap, name: &str) -> Value {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map_or(Value::Null, |v| json!(v))
}

/// What the handler sees and sends: its context, its `tracing` span's
/// context, the headers an outgoing call carried (echoed by `echo`) and
/// those a message would carry.
async fn handler(echo: SocketAddr) -> String {
    let cx = Context::current();
    let sc = cx.span().span_context().clone();
    let span = tracing::info_span!("load_order");
    let in_span = span.context().span().span_context().clone();
    let outgoing = async {
        tracing::info!("loading the order");
        let client = tower::ServiceBuilder::new()
            .layer(ClientLayer::new())
            .service(Client::builder(TokioExecutor::new()).build(HttpConnector::new()));
        let response = client
            .oneshot(
                Request::get(format!("http://{echo}/"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        json_body(response).await
    };
    let echoed = tracing::Instrument::instrument(outgoing, span.clone()).await;
    let mut message = HashMap::new();
    observability_messaging::inject_map(&Context::current(), &mut message);
    json!({
        "trace_id": sc.trace_id().to_string(),
        "span_id": sc.span_id().to_string(),
        "sampled": sc.is_sampled(),
        "remote": sc.is_remote(),
        "span_trace_id": in_span.trace_id().to_string(),
        "span_sampled": in_span.is_sampled(),
        "outgoing": echoed,
        "message": message,
    })
    .to_string()
}

async fn call(addr: SocketAddr, headers: &[(&str, &str)]) -> Value {
    let client = Client::builder(TokioExecutor::new()).build::<_, Body>(HttpConnector::new());
    let mut request = Request::get(format!("http://{addr}/orders/7"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = client
        .request(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    json_body(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_dropped_unseen_keeps_the_callers_trace_everywhere() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.http_endpoint();
    let logs = MemoryLog::default();
    let guard = observability_core::builder()
        .log_writer(logs.clone())
        .env_lookup(move |name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/protobuf".to_owned()),
            "OTEL_METRIC_EXPORT_INTERVAL" => Some("600000".to_owned()),
            _ => None,
        })
        .try_init()
        .unwrap();
    let echo = serve(Router::new().route(
        "/",
        get(|headers: HeaderMap| async move {
            json!({
                "traceparent": header(&headers, "traceparent"),
                "tracestate": header(&headers, "tracestate"),
                "baggage": header(&headers, "baggage"),
            })
            .to_string()
        }),
    ))
    .await;
    let app = Router::new()
        .route("/orders/{id}", get(move || handler(echo)))
        .layer(ServerLayer::new().for_axum());
    let addr = serve(app).await;

    // The caller did not sample, and set the random flag.
    let seen = call(
        addr,
        &[
            ("traceparent", &format!("00-{TRACE}-{CALLER}-02")),
            ("tracestate", TRACESTATE),
            ("baggage", BAGGAGE),
        ],
    )
    .await;
    assert_eq!(seen["trace_id"], TRACE, "{seen}");
    assert_eq!(seen["sampled"], false);
    assert_eq!(seen["remote"], false, "the request's own span context");
    let own = seen["span_id"].as_str().unwrap();
    assert!(own != CALLER && own != "0000000000000000", "{seen}");
    assert_eq!(seen["span_trace_id"], TRACE, "the handler's tracing span");
    assert_eq!(seen["span_sampled"], false);
    for carried in [&seen["outgoing"], &seen["message"]] {
        let traceparent = carried["traceparent"].as_str().unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{TRACE}-")) && traceparent.ends_with("-02"),
            "sampled off, random as received: {carried}"
        );
        assert_ne!(
            &traceparent[36..52],
            CALLER,
            "a child of the caller: {carried}"
        );
        assert_eq!(carried["tracestate"], TRACESTATE, "{carried}");
        assert_eq!(carried["baggage"], BAGGAGE, "{carried}");
    }
    // The message is sent with the request's own context: its parent id.
    assert_eq!(
        &seen["message"]["traceparent"].as_str().unwrap()[36..52],
        own
    );

    // A sampled caller, and a request that starts a trace: recorded.
    let sampled = call(addr, &[("traceparent", &format!("00-{TRACE}-{CALLER}-01"))]).await;
    assert_eq!(sampled["sampled"], true, "{sampled}");
    let root = call(addr, &[]).await;
    assert_eq!(root["sampled"], true, "{root}");
    assert_ne!(root["trace_id"], TRACE);

    let logged = logs.text();
    let lines: Vec<Value> = logged
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "loading the order")
        .collect();
    assert_eq!(lines.len(), 3, "{logged}");
    assert_eq!(lines[0]["trace_id"], TRACE, "{}", lines[0]);

    let stats = guard.shutdown().await.unwrap();
    // Server, handler and client spans of the two recorded requests.
    assert_eq!(stats.exported, 6, "{stats:?}");
    let spans = receiver.spans();
    assert_eq!(spans.len(), 6);
    let server = spans
        .iter()
        .find(|s| s.span.name == "GET /orders/{id}" && s.trace_id() == TRACE)
        .expect("the sampled caller's server span");
    assert_eq!(server.parent_span_id(), CALLER);

    // Every span started is counted by sampling result: the dropped
    // request's server span (no span made), handler span and client span.
    let metrics = receiver.metric_requests();
    let last = &metrics.last().expect("metrics at shutdown").request;
    let started = |result: &str| -> i64 {
        last.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .filter(|m| m.name == "otel.sdk.span.started")
            .filter_map(|m| match &m.data {
                Some(metric::Data::Sum(sum)) => Some(sum),
                _ => None,
            })
            .flat_map(|sum| &sum.data_points)
            .filter(|p| {
                p.attributes.iter().any(|kv| {
                    kv.key == "otel.span.sampling_result"
                        && kv.value.as_ref().map(value_to_string).as_deref() == Some(result)
                })
            })
            .map(|p| match p.value {
                Some(number_data_point::Value::AsInt(v)) => v,
                _ => 0,
            })
            .sum()
    };
    assert_eq!(started("DROP"), 3);
    assert_eq!(started("RECORD_AND_SAMPLE"), 6);
}
