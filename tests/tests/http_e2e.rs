//! One trace across real HTTP hops: client layer → server A → handler →
//! client layer → server B → handler, over TCP on 127.0.0.1, exported over
//! OTLP to the test receiver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observability_http::{ClientLayer, ClientService, ServerLayer};
use observability_tests::{OtlpReceiver, ReceivedSpan};
use tower::ServiceExt;

type TracedClient = ClientService<Client<HttpConnector, Body>>;

fn client(guard: &observability_core::TelemetryGuard) -> TracedClient {
    let inner = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    tower::ServiceBuilder::new()
        .layer(
            ClientLayer::builder()
                .tracer_provider(guard.tracer_provider().unwrap())
                .build(),
        )
        .service(inner)
}

async fn get_text(client: TracedClient, url: String) -> (u16, String) {
    let response = client
        .oneshot(Request::get(url).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tracing::instrument(skip_all, fields(sku))]
async fn price_of(sku: u64) -> u64 {
    tracing::warn!(sku, "pricing is slow today");
    sku * 100
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

fn one<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.span.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one {name} among {:?}",
        spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
    );
    found[0]
}

#[tokio::test(flavor = "current_thread")]
async fn one_trace_across_two_services() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.http_endpoint();
    let guard = observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .env_lookup(move |name| (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone()))
        .service_name("shop")
        .build()
        .unwrap();
    let _dispatch = tracing::dispatcher::set_default(guard.dispatch());
    opentelemetry::global::set_text_map_propagator(
        observability_core::propagation::TraceContextPropagator::new(),
    );
    let server_layer = ServerLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .build();

    // Server B: prices.
    let b = serve(
        Router::new()
            .route(
                "/prices/{sku}",
                get(|Path(sku): Path<u64>| async move { price_of(sku).await.to_string() }),
            )
            .layer(server_layer.clone()),
    )
    .await;
    // Server A: orders, which asks B.
    let a = serve(
        Router::new()
            .route(
                "/orders/{id}",
                get(|Path(id): Path<u64>, State((client, b)): State<(TracedClient, SocketAddr)>| async move {
                    let (_, price) = get_text(client, format!("http://{b}/prices/{id}")).await;
                    format!("order {id} costs {price}")
                }),
            )
            .with_state((client(&guard), b))
            .layer(server_layer),
    )
    .await;

    let root = tracing::info_span!("customer");
    let (status, body) = {
        use tracing::Instrument;
        get_text(client(&guard), format!("http://{a}/orders/7?token=x"))
            .instrument(root.clone())
            .await
    };
    drop(root);
    assert_eq!((status, body.as_str()), (200, "order 7 costs 700"));
    guard.shutdown().await.unwrap();

    let spans = receiver.wait_for_spans(6, Duration::from_secs(10));
    assert_eq!(spans.len(), 6);
    let customer = one(&spans, "customer");
    let server_a = one(&spans, "GET /orders/{id}");
    let server_b = one(&spans, "GET /prices/{sku}");
    let handler = one(&spans, "price_of");
    let clients: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.span.name == "GET").collect();
    assert_eq!(clients.len(), 2);
    let client_a = clients
        .iter()
        .find(|c| c.attr("server.port") == Some(a.port().to_string()))
        .unwrap();
    let client_b = clients
        .iter()
        .find(|c| c.attr("server.port") == Some(b.port().to_string()))
        .unwrap();

    let trace = customer.trace_id();
    for s in &spans {
        assert_eq!(s.trace_id(), trace, "{} is in the one trace", s.span.name);
        assert_eq!(s.resource_attr("service.name").as_deref(), Some("shop"));
    }
    // The exact parent chain.
    assert_eq!(client_a.parent_span_id(), customer.span_id());
    assert_eq!(server_a.parent_span_id(), client_a.span_id());
    assert_eq!(client_b.parent_span_id(), server_a.span_id());
    assert_eq!(server_b.parent_span_id(), client_b.span_id());
    assert_eq!(handler.parent_span_id(), server_b.span_id());

    // Kinds: 2 = SERVER, 3 = CLIENT.
    assert_eq!((server_a.span.kind, client_a.span.kind), (2, 3));
    assert_eq!(server_a.attr("http.route").as_deref(), Some("/orders/{id}"));
    assert_eq!(
        server_a.attr("url.query").as_deref(),
        Some("token=REDACTED")
    );
    assert_eq!(server_a.attr("server.port"), Some(a.port().to_string()));
    assert_eq!(
        server_a.attr("client.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        server_a.attr("http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        client_a.attr("url.full"),
        Some(format!("http://{a}/orders/7?token=REDACTED"))
    );
    assert_eq!(
        client_b.attr("server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert!(
        handler
            .span
            .events
            .iter()
            .any(|e| e.name == "pricing is slow today")
    );
}
