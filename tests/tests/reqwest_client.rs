//! reqwest through `observability_http::reqwest`, with reqwest 0.13 (what
//! `cargo add reqwest` gives) and 0.12: the server span's parent is the
//! client span, in one trace, exported over OTLP to the test receiver. Its
//! own test binary: `init` installs the global provider the reqwest
//! wrapper uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use observability_core::OpenTelemetrySpanExt;
use observability_core::opentelemetry::trace::TraceContextExt;
use observability_http::ServerLayer;
use observability_http::reqwest::SendTraced;
use observability_tests::OtlpReceiver;
use tracing::Instrument;

#[tokio::test(flavor = "current_thread")]
async fn reqwest_calls_carry_the_trace_in_both_versions() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.http_endpoint();
    let telemetry = observability_core::builder()
        .env_lookup(move |name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            "OTEL_BSP_SCHEDULE_DELAY" => Some("50".into()),
            _ => None,
        })
        .log_writer(std::io::sink)
        .try_init()
        .unwrap();
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(ServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let span = tracing::info_span!("v013");
    let trace_013 = span.context().span().span_context().trace_id().to_string();
    let status = async {
        reqwest::Client::new()
            .get(format!("http://{addr}/items/7"))
            .send_traced()
            .await
            .unwrap()
            .status()
    }
    .instrument(span)
    .await;
    assert_eq!(status, 200);

    let span = tracing::info_span!("v012");
    let trace_012 = span.context().span().span_context().trace_id().to_string();
    let response = observability_http::reqwest::send(
        reqwest_0_12::Client::new().get(format!("http://{addr}/missing")),
    )
    .instrument(span)
    .await
    .unwrap();
    assert_eq!(response.status(), 404);

    let stats = telemetry.shutdown().await.unwrap();
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    let spans = receiver.wait_for_spans(6, Duration::from_secs(10));
    for (trace, server_name, status) in [
        (&trace_013, "GET /items/{id}", "200"),
        (&trace_012, "GET", "404"),
    ] {
        let in_trace: Vec<_> = spans.iter().filter(|s| &s.trace_id() == trace).collect();
        let client = in_trace
            .iter()
            .find(|s| s.span.kind == 3)
            .unwrap_or_else(|| panic!("no client span in {trace}"));
        let server = in_trace
            .iter()
            .find(|s| s.span.kind == 2)
            .unwrap_or_else(|| panic!("no server span in {trace}"));
        assert_eq!(server.parent_span_id(), client.span_id());
        assert_eq!(server.span.name, server_name);
        assert_eq!(
            client.attr("http.response.status_code").as_deref(),
            Some(status)
        );
        assert!(
            client
                .attr("url.full")
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
    }
}
