//! The server and client layers driven with `tower::ServiceExt::oneshot`,
//! spans read from an in-memory capture.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use observability_core::opentelemetry::trace::{SpanKind, Status};
use observability_core::testing::SpanCapture;
use observability_core::{Exporter, TelemetryGuard};
use observability_http::{ClientLayer, ServerLayer};
use opentelemetry_sdk::trace::SpanData;
use tower::{Layer, ServiceExt};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Telemetry that records into `capture` and exports nothing; the strict
/// propagators installed globally (the layers use the global propagator).
fn setup() -> (TelemetryGuard, SpanCapture) {
    let capture = SpanCapture::new();
    let guard = observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .env_lookup(|_| None)
        .exporter(Exporter::None)
        .span_event_level(tracing::Level::INFO)
        .span_capture(&capture)
        .build()
        .unwrap();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry::propagation::TextMapCompositePropagator::new(vec![
            Box::new(observability_core::propagation::TraceContextPropagator::new()),
            Box::new(observability_core::propagation::BaggagePropagator::new()),
        ]),
    );
    (guard, capture)
}

fn server_layer(guard: &TelemetryGuard) -> ServerLayer {
    ServerLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .build()
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tracing::instrument]
async fn load_order(id: u64) -> String {
    tracing::info!("loading");
    format!("order {id}")
}

fn app(guard: &TelemetryGuard) -> Router {
    Router::new()
        .route(
            "/orders/{id}",
            get(|axum::extract::Path(id): axum::extract::Path<u64>| async move {
                load_order(id).await
            }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/health", get(|| async { "ok" }))
        .layer(server_layer(guard))
}

async fn call(router: Router, request: Request<Body>) -> Response<Bytes> {
    let response = router.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, body)
}

#[tokio::test]
async fn server_span_follows_the_http_conventions_and_continues_the_caller() {
    let (guard, capture) = setup();
    let _d = tracing::dispatcher::set_default(guard.dispatch());
    let request = Request::get("/orders/42?q=shoes&token=s3cret")
        .header("host", "shop.example:8080")
        .header("user-agent", "curl/8.5")
        .header("traceparent", TP)
        .header("x-forwarded-for", "203.0.113.9, 10.0.0.1")
        .body(Body::empty())
        .unwrap();
    let response = call(app(&guard), request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), "order 42");
    assert!(
        response.headers().get("traceresponse").is_none(),
        "off by default"
    );

    let server = capture.span("GET /orders/{id}").expect("server span");
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(server.span_context.trace_id().to_string(), TRACE);
    assert_eq!(server.parent_span_id.to_string(), PARENT);
    assert!(server.parent_span_is_remote);
    for (key, value) in [
        ("http.request.method", "GET"),
        ("http.route", "/orders/{id}"),
        ("url.path", "/orders/42"),
        ("url.query", "q=shoes&token=REDACTED"),
        ("url.scheme", "http"),
        ("server.address", "shop.example"),
        ("server.port", "8080"),
        ("client.address", "203.0.113.9"),
        ("user_agent.original", "curl/8.5"),
        ("network.protocol.version", "1.1"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(attr(&server, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(server.status, Status::Unset);

    // The handler's #[instrument] span nests under the server span, with its log line.
    let handler = capture.span("load_order").expect("handler span");
    assert_eq!(handler.span_context.trace_id().to_string(), TRACE);
    assert_eq!(handler.parent_span_id, server.span_context.span_id());
    assert!(handler.events.iter().any(|e| e.name == "loading"));
}

#[tokio::test]
async fn five_hundreds_are_errors_four_hundreds_are_not() {
    let (guard, capture) = setup();
    call(
        app(&guard),
        Request::get("/fail").body(Body::empty()).unwrap(),
    )
    .await;
    call(
        app(&guard),
        Request::get("/missing").body(Body::empty()).unwrap(),
    )
    .await;
    let fail = capture.span("GET /fail").unwrap();
    assert!(matches!(fail.status, Status::Error { .. }));
    assert_eq!(attr(&fail, "error.type").as_deref(), Some("500"));
    let missing = capture.span("GET /missing").unwrap();
    assert_eq!(missing.status, Status::Unset);
    assert_eq!(
        attr(&missing, "http.response.status_code").as_deref(),
        Some("404")
    );
    assert_eq!(attr(&missing, "error.type"), None);
}

#[tokio::test]
async fn unknown_methods_and_unrouted_requests() {
    let (guard, capture) = setup();
    let purge = Method::from_bytes(b"PURGE").unwrap();
    let service = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let traced = server_layer(&guard).layer(service);
    let request = Request::builder()
        .method(purge)
        .uri("/cache/7")
        .body(Body::empty())
        .unwrap();
    traced
        .oneshot(request)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    let span = capture
        .span("HTTP")
        .expect("no route: the name is the method, HTTP for _OTHER");
    assert_eq!(
        attr(&span, "http.request.method").as_deref(),
        Some("_OTHER")
    );
    assert_eq!(
        attr(&span, "http.request.method_original").as_deref(),
        Some("PURGE")
    );
    assert_eq!(attr(&span, "http.route"), None, "never the raw path");
}

#[tokio::test]
async fn health_checks_are_skipped_and_skip_paths_configurable() {
    let (guard, capture) = setup();
    call(
        app(&guard),
        Request::get("/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(capture.spans().is_empty());
    let layer = ServerLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .skip_paths(["/orders/1"])
        .build();
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/orders/{id}", get(|| async { "x" }))
        .layer(layer);
    call(
        router.clone(),
        Request::get("/orders/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(capture.spans().is_empty());
    call(router, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert!(capture.span("GET /health").is_some());
}

#[tokio::test]
async fn headers_recorded_on_request_never_credentials_and_context_written_back() {
    let (guard, capture) = setup();
    let layer = ServerLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .record_request_header(http::HeaderName::from_static("x-request-id"))
        .record_request_header(http::header::AUTHORIZATION)
        .record_response_header(http::HeaderName::from_static("x-cache"))
        .write_traceresponse(true)
        .write_server_timing(true)
        .build();
    let router = Router::new()
        .route("/r", get(|| async { ([("x-cache", "HIT")], "ok") }))
        .layer(layer);
    let request = Request::get("/r")
        .header("x-request-id", "req-1")
        .header("authorization", "Bearer secret")
        .header("traceparent", TP)
        .body(Body::empty())
        .unwrap();
    let response = call(router, request).await;
    let span = capture.span("GET /r").unwrap();
    assert_eq!(
        attr(&span, "http.request.header.x-request-id").as_deref(),
        Some(r#"["req-1"]"#)
    );
    assert_eq!(
        attr(&span, "http.response.header.x-cache").as_deref(),
        Some(r#"["HIT"]"#)
    );
    assert!(
        span.attributes
            .iter()
            .all(|kv| !kv.key.as_str().contains("authorization"))
    );
    let expected = format!("00-{TRACE}-{}-01", span.span_context.span_id());
    assert_eq!(response.headers()["traceresponse"], expected.as_str());
    assert_eq!(
        response.headers()["server-timing"],
        format!("traceparent;desc=\"{expected}\"").as_str()
    );
}

/// A body that yields two chunks with a pause between, then ends.
struct Slow {
    step: u8,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Slow {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        match self.step {
            0 => {
                self.step = 1;
                Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from("a")))))
            }
            1 => {
                std::task::ready!(self.sleep.as_mut().poll(cx));
                self.step = 2;
                Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from("b")))))
            }
            _ => Poll::Ready(None),
        }
    }
}

use std::future::Future as _;

impl Slow {
    /// "a", then "b" 150 ms later.
    fn new() -> Self {
        Self {
            step: 0,
            sleep: Box::pin(tokio::time::sleep(Duration::from_millis(150))),
        }
    }
}

/// The span `name` of the [`Slow`] response `response`, checked to end
/// with its body, not with its headers.
async fn timed_with_its_body<B>(
    capture: &SpanCapture,
    response: Response<B>,
    name: &str,
) -> SpanData
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    assert!(
        capture.spans().is_empty(),
        "not ended when headers are ready"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let finished = SystemTime::now();
    assert_eq!(body, "ab");
    let span = capture.span(name).expect("ended with the body");
    assert!(span.end_time <= finished);
    assert!(
        span.end_time.duration_since(span.start_time).unwrap() >= Duration::from_millis(150),
        "the span covers the whole stream"
    );
    span
}

#[tokio::test]
async fn a_streamed_response_is_timed_whole() {
    let (guard, capture) = setup();
    let service = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Slow::new()))
    });
    let response = server_layer(&guard)
        .layer(service)
        .oneshot(Request::get("/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    timed_with_its_body(&capture, response, "GET").await;
}

#[tokio::test]
async fn a_cancelled_request_still_ends_its_span() {
    let (guard, capture) = setup();
    let service = tower::service_fn(|_req: Request<Body>| async {
        std::future::pending::<()>().await;
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let future = server_layer(&guard)
        .layer(service)
        .oneshot(Request::get("/slow").body(Body::empty()).unwrap());
    let timed_out = tokio::time::timeout(Duration::from_millis(20), future).await;
    assert!(timed_out.is_err());
    let span = capture.span("GET").expect("ended on drop");
    assert_eq!(attr(&span, "http.response.status_code"), None);
}

/// Under `Router::layer`, `for_axum` answers with the router's own body: a
/// traced response's span still ends with its streamed body, and a
/// sampled-out request runs in the caller's unsampled context with its body
/// as the handler made it.
#[tokio::test]
async fn for_axum_keeps_the_routers_body_and_times_streams_whole() {
    use observability_core::opentelemetry::Context;
    use observability_core::opentelemetry::trace::TraceContextExt;
    use observability_http::server::AxumBody;

    // The service answers with axum's body, not a wrapper the router boxes.
    fn answers_with_axum_body<S>(_: &S)
    where
        S: tower::Service<Request<Body>, Response = Response<Body>>,
    {
    }
    let (guard, capture) = setup();
    let layer: ServerLayer<AxumBody> = server_layer(&guard).for_axum();
    answers_with_axum_body(&layer.layer(tower::service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    })));

    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let router = Router::new()
        .route("/stream", get(|| async { Body::new(Slow::new()) }))
        .route(
            "/context",
            get({
                let seen = std::sync::Arc::clone(&seen);
                move || async move {
                    let cx = Context::current();
                    let sc = cx.span().span_context().clone();
                    *seen.lock().unwrap() = Some(sc);
                    "seen"
                }
            }),
        )
        .layer(layer);

    let response = router
        .clone()
        .oneshot(
            Request::get("/stream")
                .header("traceparent", TP)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let span = timed_with_its_body(&capture, response, "GET /stream").await;
    assert_eq!(span.span_context.trace_id().to_string(), TRACE);
    assert_eq!(span.parent_span_id.to_string(), PARENT);

    let unsampled = TP.replace("-01", "-00");
    let response = call(
        router,
        Request::get("/context")
            .header("traceparent", unsampled.as_str())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.body(), "seen");
    let sc = seen.lock().unwrap().take().expect("the handler ran");
    assert_eq!(sc.trace_id().to_string(), TRACE);
    assert_ne!(sc.span_id().to_string(), PARENT, "a child of the caller");
    assert!(sc.is_valid() && !sc.is_sampled());
    assert_eq!(
        capture.spans().len(),
        1,
        "the sampled-out request has no span"
    );
}

/// A service that records the context current when it is called, then
/// calls the service it wraps.
#[derive(Clone)]
struct ContextInCall<S> {
    inner: S,
    seen: std::sync::Arc<std::sync::Mutex<Vec<opentelemetry::trace::SpanContext>>>,
}

impl<S, B> tower::Service<Request<B>> for ContextInCall<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        use observability_core::opentelemetry::trace::TraceContextExt;
        let cx = observability_core::opentelemetry::Context::current();
        self.seen
            .lock()
            .unwrap()
            .push(cx.span().span_context().clone());
        self.inner.call(request)
    }
}

/// Under `Router::layer` the server layer wraps axum's `Route`, which it
/// calls without making the context current (a `Route` calls the service
/// inside it only when its future is polled, with the context current).
/// What runs inside, a layer's `call` and the handler, sees the request's
/// context, sampled or not; a service the layer wraps directly sees it in
/// its `call` too.
#[tokio::test]
async fn what_runs_inside_a_route_sees_the_requests_context() {
    use observability_core::opentelemetry::trace::TraceContextExt;
    let (guard, _capture) = setup();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let probe = {
        let seen = std::sync::Arc::clone(&seen);
        tower::layer::layer_fn(move |inner| ContextInCall {
            inner,
            seen: std::sync::Arc::clone(&seen),
        })
    };
    let in_handler = std::sync::Arc::clone(&seen);
    let handler = move || async move {
        let cx = observability_core::opentelemetry::Context::current();
        in_handler
            .lock()
            .unwrap()
            .push(cx.span().span_context().clone());
        "seen"
    };
    let routed = Router::new()
        .route("/", get(handler.clone()))
        .layer(probe)
        .layer(server_layer(&guard).for_axum());
    let direct = server_layer(&guard).for_axum().layer(ContextInCall {
        inner: Router::new().route("/", get(handler)),
        seen: std::sync::Arc::clone(&seen),
    });
    for flags in ["01", "00"] {
        let traceparent = TP.replace("-01", &format!("-{flags}"));
        let request = || {
            Request::get("/")
                .header("traceparent", traceparent.as_str())
                .body(Body::empty())
                .unwrap()
        };
        let response = call(routed.clone(), request()).await;
        assert_eq!(response.body(), "seen");
        let response = direct.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let seen: Vec<_> = seen.lock().unwrap().drain(..).collect();
        // The probe's call and the handler, through the router, then directly.
        assert_eq!(seen.len(), 4, "{seen:?}");
        for sc in &seen {
            assert_eq!(sc.trace_id().to_string(), TRACE, "flags {flags}");
            assert_ne!(sc.span_id().to_string(), PARENT, "a child of the caller");
            assert_eq!(sc.is_sampled(), flags == "01");
        }
        assert_eq!(
            seen[0].span_id(),
            seen[1].span_id(),
            "one request, one context"
        );
        assert_eq!(
            seen[2].span_id(),
            seen[3].span_id(),
            "one request, one context"
        );
    }
}

/// A sampled-out gRPC call under `for_axum` is still timed until its body's
/// trailers, with their status.
#[tokio::test]
async fn for_axum_times_a_sampled_out_grpc_call_to_its_trailers() {
    use observability_metrics::Data;
    let (guard, capture) = setup();
    let (server, meters) = metered_server_layer(&guard);
    let server = server.for_axum().layer(
        tower::ServiceBuilder::new()
            .map_response(|r: Response<GrpcBody>| r.map(Body::new))
            .service(grpc_service("14")),
    );
    let mut request = grpc_request();
    request.headers_mut().insert(
        "traceparent",
        HeaderValue::from_str(&TP.replace("-01", "-00")).unwrap(),
    );
    let response = server.oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();

    assert!(capture.spans().is_empty(), "sampled out");
    let collected = meters.collect();
    let metric = collected.metric("rpc.server.duration").expect("timed");
    let Data::Histogram { points, .. } = &metric.data else {
        panic!("not a histogram")
    };
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(points[0].count, 1);
    assert!(
        point_attrs(&points[0].attributes)
            .contains(&("rpc.grpc.status_code".to_owned(), "14".to_owned())),
        "the trailers' status: {:?}",
        points[0].attributes
    );
}

// ---- W3C Trace Context, through the server layer ----

enum Expect {
    Continue,
    NewTrace,
}

async fn server_sees(headers: &[(&str, &str)]) -> SpanData {
    let (guard, capture) = setup();
    let mut request = Request::get("/orders/1");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = call(app(&guard), request.body(Body::empty()).unwrap()).await;
    assert_eq!(
        response.status(),
        200,
        "a malformed header never fails the request"
    );
    capture.span("GET /orders/{id}").unwrap()
}

#[tokio::test]
async fn w3c_traceparent_rules() {
    use Expect::*;
    let cases: &[(&str, &[&str], Expect)] = &[
        ("valid", &[TP], Continue),
        (
            "future version",
            &[
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like",
            ],
            Continue,
        ),
        (
            "future version, bad separator",
            &["cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.future"],
            NewTrace,
        ),
        (
            "version ff",
            &["ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
            NewTrace,
        ),
        (
            "version 00 with extra",
            &["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"],
            NewTrace,
        ),
        ("duplicated", &[TP, TP], NewTrace),
        (
            "uppercase",
            &["00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"],
            NewTrace,
        ),
        (
            "short trace id",
            &["00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"],
            NewTrace,
        ),
        (
            "short parent id",
            &["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01"],
            NewTrace,
        ),
        (
            "short version",
            &["0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
            NewTrace,
        ),
        (
            "zero trace id",
            &["00-00000000000000000000000000000000-00f067aa0ba902b7-01"],
            NewTrace,
        ),
        (
            "zero parent id",
            &["00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"],
            NewTrace,
        ),
        ("garbage", &["not a traceparent"], NewTrace),
        (
            "illegal flags",
            &["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x"],
            NewTrace,
        ),
    ];
    for (name, values, expect) in cases {
        let headers: Vec<(&str, &str)> = values.iter().map(|v| ("traceparent", *v)).collect();
        let span = server_sees(&headers).await;
        match expect {
            Continue => {
                assert_eq!(span.span_context.trace_id().to_string(), TRACE, "{name}");
                assert_eq!(span.parent_span_id.to_string(), PARENT, "{name}");
            }
            NewTrace => {
                assert_ne!(span.span_context.trace_id().to_string(), TRACE, "{name}");
                assert_eq!(
                    span.parent_span_id,
                    opentelemetry::trace::SpanId::INVALID,
                    "{name}"
                );
            }
        }
    }
}

#[tokio::test]
async fn w3c_flags_are_passed_on() {
    let span = server_sees(&[(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
    )])
    .await;
    assert_eq!(
        span.span_context.trace_flags().to_u8(),
        0x03,
        "sampled and random"
    );
}

#[tokio::test]
async fn w3c_tracestate_rules() {
    let members = |n: usize| {
        (0..n)
            .map(|i| format!("k{i}=v{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let m32 = members(32);
    let m33 = members(33);
    let long_key = format!("{}=v", "k".repeat(256));
    let too_long_key = format!("{}=v", "k".repeat(257));
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("one header", vec!["a=1,b=2"], "a=1,b=2"),
        ("repeated headers are joined", vec!["a=1", "b=2"], "a=1,b=2"),
        ("empty header", vec![""], ""),
        ("32 members", vec![m32.as_str()], m32.as_str()),
        ("33 members are dropped", vec![m33.as_str()], ""),
        (
            "256-character key",
            vec![long_key.as_str()],
            long_key.as_str(),
        ),
        ("257-character key", vec![too_long_key.as_str()], ""),
        ("@ key", vec!["tenant@vendor=v"], "tenant@vendor=v"),
        ("bad @ key", vec!["@vendor=v"], ""),
        // Duplicated keys are passed on: the first member of each key kept.
        ("duplicate keys", vec!["a=1,a=2"], "a=1"),
        (
            "duplicate keys across headers",
            vec!["a=1,b=2", "a=3"],
            "a=1,b=2",
        ),
        // The current key grammar: a leading digit, `@` after the first character.
        ("key ending in @", vec!["foo@=1"], "foo@=1"),
        ("key starting with a digit", vec!["1foo=1"], "1foo=1"),
        ("empty value", vec!["a="], ""),
    ];
    for (name, values, expected) in cases {
        let mut headers = vec![("traceparent", TP)];
        headers.extend(values.iter().map(|v| ("tracestate", *v)));
        let span = server_sees(&headers).await;
        assert_eq!(
            span.span_context.trace_id().to_string(),
            TRACE,
            "{name}: parent kept"
        );
        assert_eq!(span.span_context.trace_state().header(), expected, "{name}");
    }
}

// ---- gRPC ----

/// A gRPC-like response body: one message, then trailers.
struct GrpcBody {
    status: Option<&'static str>,
    sent: bool,
}

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if !self.sent {
            self.sent = true;
            return Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
                b"\0\0\0\0\0",
            )))));
        }
        match self.status.take() {
            Some(code) => {
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static(code));
                trailers.insert("grpc-message", HeaderValue::from_static("boom"));
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
            None => Poll::Ready(None),
        }
    }
}

async fn grpc_server_span(code: &'static str) -> SpanData {
    let (guard, capture) = setup();
    let service = grpc_service(code);
    let request = Request::post("/shop.v1.Orders/Get")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .version(http::Version::HTTP_2)
        .body(Body::empty())
        .unwrap();
    let response = server_layer(&guard)
        .layer(service)
        .oneshot(request)
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    capture
        .span("shop.v1.Orders/Get")
        .expect("gRPC span named {package.Service}/{Method}")
}

#[tokio::test]
async fn grpc_through_the_server_layer() {
    let ok = grpc_server_span("0").await;
    assert_eq!(attr(&ok, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(attr(&ok, "rpc.service").as_deref(), Some("shop.v1.Orders"));
    assert_eq!(attr(&ok, "rpc.method").as_deref(), Some("Get"));
    assert_eq!(attr(&ok, "rpc.grpc.status_code").as_deref(), Some("0"));
    assert_eq!(attr(&ok, "network.protocol.version").as_deref(), Some("2"));
    assert_eq!(ok.status, Status::Unset);
    let not_found = grpc_server_span("5").await;
    assert_eq!(
        attr(&not_found, "rpc.grpc.status_code").as_deref(),
        Some("5")
    );
    assert_eq!(
        not_found.status,
        Status::Unset,
        "NOT_FOUND is not a server error"
    );
    let internal = grpc_server_span("13").await;
    assert_eq!(internal.status, Status::error("boom"), "INTERNAL is");
}

#[tokio::test]
async fn a_client_cannot_name_the_server_span() {
    let (guard, capture) = setup();
    // `content-type: application/grpc` on paths that are not a gRPC method:
    // the span is named by the HTTP method, whatever the path says.
    let long = format!("/{}/{}", "a".repeat(20_000), "b".repeat(100));
    for path in [
        long.as_str(),
        "/not-a-method/x",
        "/a/b/c/d",
        "/index.html",
        "/pkg.Svc/Method%20x",
    ] {
        capture.clear();
        let service = tower::service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        });
        let request = Request::post(path)
            .header("content-type", "application/grpc")
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("{path:.60}: {e}"));
        let _ = server_layer(&guard)
            .layer(service)
            .oneshot(request)
            .await
            .unwrap()
            .into_body()
            .collect()
            .await;
        let spans = capture.spans();
        assert_eq!(spans.len(), 1, "{path:.60}");
        assert_eq!(spans[0].name, "POST", "{path:.60}");
        assert_eq!(attr(&spans[0], "rpc.method"), None, "{path:.60}");
        assert_eq!(attr(&spans[0], "rpc.system").as_deref(), Some("grpc"));
    }
    // An unmatched plain HTTP request is named by its method alone too.
    capture.clear();
    let service = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let _ = server_layer(&guard)
        .layer(service)
        .oneshot(
            Request::get("/any/client/text")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
        .into_body()
        .collect()
        .await;
    assert_eq!(capture.spans()[0].name, "GET");
}

// ---- client ----

#[tokio::test]
async fn client_span_injects_its_context_and_redacts_the_url() {
    let (guard, capture) = setup();
    let _d = tracing::dispatcher::set_default(guard.dispatch());
    let upstream = tower::service_fn(|req: Request<Body>| async move {
        let traceparent = req.headers()["traceparent"].to_str().unwrap().to_owned();
        let status = if req.uri().path() == "/missing" {
            404
        } else {
            200
        };
        Ok::<_, Infallible>(
            Response::builder()
                .status(status)
                .body(Body::from(traceparent))
                .unwrap(),
        )
    });
    let client = ClientLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .build()
        .layer(upstream);

    let parent = tracing::info_span!("checkout");
    let sent = {
        let _e = parent.enter();
        let request = Request::get("http://user:pw@inventory.internal:9000/items/7?api_key=k&x=1")
            .body(Body::empty())
            .unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap().to_bytes()
    };
    drop(parent);
    let span = capture.span("GET").expect("client span");
    let checkout = capture.span("checkout").unwrap();
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.parent_span_id, checkout.span_context.span_id());
    assert_eq!(
        span.span_context.trace_id(),
        checkout.span_context.trace_id()
    );
    assert_eq!(
        String::from_utf8(sent.to_vec()).unwrap(),
        format!(
            "00-{}-{}-01",
            span.span_context.trace_id(),
            span.span_context.span_id()
        ),
        "the upstream received the client span as parent"
    );
    assert_eq!(
        attr(&span, "url.full").as_deref(),
        Some("http://REDACTED:REDACTED@inventory.internal:9000/items/7?api_key=REDACTED&x=1")
    );
    assert_eq!(
        attr(&span, "server.address").as_deref(),
        Some("inventory.internal")
    );
    assert_eq!(attr(&span, "server.port").as_deref(), Some("9000"));
    assert_eq!(
        attr(&span, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(span.status, Status::Unset);
    let address = |span: &SpanData| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "server.address")
            .map(|kv| kv.value.clone())
            .expect("server.address")
    };
    let first_address = address(&span);

    capture.clear();
    let request = Request::get("http://inventory.internal/missing")
        .body(Body::empty())
        .unwrap();
    client
        .oneshot(request)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    let span = capture.span("GET").unwrap();
    assert!(
        matches!(span.status, Status::Error { .. }),
        "4xx is a client error"
    );
    assert_eq!(attr(&span, "error.type").as_deref(), Some("404"));
    assert_eq!(attr(&span, "server.port").as_deref(), Some("80"));
    // Calls to the same address share its text instead of copying it.
    assert!(
        std::ptr::eq(
            first_address.as_str().as_ptr(),
            address(&span).as_str().as_ptr()
        ),
        "server.address shared between calls"
    );
}

#[tokio::test]
async fn client_transport_errors_set_error_type() {
    let (guard, capture) = setup();
    let failing = tower::service_fn(|_req: Request<Body>| async {
        Err::<Response<Body>, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ))
    });
    let client = ClientLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .build()
        .layer(failing);
    let result = client
        .oneshot(
            Request::get("http://127.0.0.1:1/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(result.is_err());
    let span = capture.span("GET").unwrap();
    assert_eq!(
        attr(&span, "error.type").as_deref(),
        Some("connection_refused")
    );
    assert_eq!(span.status, Status::error("connection refused"));
}

#[test]
fn inject_context_into_any_header_map() {
    let (guard, capture) = setup();
    let mut headers = HeaderMap::new();
    tracing::dispatcher::with_default(guard.dispatch(), || {
        let _s = tracing::info_span!("outgoing").entered();
        observability_http::inject_current_context(&mut headers);
    });
    let span = capture.span("outgoing").unwrap();
    assert_eq!(
        headers["traceparent"],
        format!(
            "00-{}-{}-01",
            span.span_context.trace_id(),
            span.span_context.span_id()
        )
        .as_str()
    );
}

/// A sampler that answers from a script and notes, for each decision,
/// whether the request's attributes were offered to it.
#[derive(Clone, Debug, Default)]
struct Scripted {
    answers: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<bool>>>,
    saw_attributes: std::sync::Arc<std::sync::Mutex<Vec<bool>>>,
}

impl opentelemetry_sdk::trace::ShouldSample for Scripted {
    fn should_sample(
        &self,
        _: Option<&opentelemetry::Context>,
        _: opentelemetry::trace::TraceId,
        _: &str,
        _: &SpanKind,
        attributes: &[opentelemetry::KeyValue],
        _: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        self.saw_attributes
            .lock()
            .unwrap()
            .push(attributes.iter().any(|kv| kv.key.as_str() == "url.path"));
        let record = self.answers.lock().unwrap().pop_front().unwrap_or(false);
        opentelemetry_sdk::trace::SamplingResult {
            decision: if record {
                opentelemetry_sdk::trace::SamplingDecision::RecordAndSample
            } else {
                opentelemetry_sdk::trace::SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state: Default::default(),
        }
    }
}

/// A provider whose sampler answers from a script and whose ended spans
/// are collected (the strict propagators installed globally, as in
/// [`setup`]).
fn scripted_provider() -> (
    Scripted,
    Collect,
    opentelemetry_sdk::trace::SdkTracerProvider,
) {
    let _ = setup();
    let sampler = Scripted::default();
    let spans = Collect::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(sampler.clone())
        .with_span_processor(spans.clone())
        .build();
    (sampler, spans, provider)
}

/// Collects ended spans.
#[derive(Clone, Debug, Default)]
struct Collect(std::sync::Arc<std::sync::Mutex<Vec<SpanData>>>);

impl opentelemetry_sdk::trace::SpanProcessor for Collect {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: SpanData) {
        self.0.lock().unwrap().push(span);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// Whatever the sampler decides, and whether or not the layer expected it
/// (it guesses from its last decision under the same kind of parent: none,
/// a sampled caller, an unsampled caller), a recorded span has its full name
/// and attributes and a dropped one leaves nothing.
#[tokio::test]
async fn every_sampler_decision_gives_a_complete_span_or_none() {
    let (sampler, spans, provider) = scripted_provider();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .layer(ServerLayer::builder().tracer_provider(&provider).build());
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    // (traceparent, the sampler's answer)
    let script: [(Option<&str>, bool); 13] = [
        (None, true),
        (None, false),
        (None, false),
        (None, true),
        (None, true),
        // A sampler that ignores the caller's flag (`always_off`, a ratio).
        (Some(TP), false),
        (Some(TP), false),
        (Some(TP), true),
        (Some(TP), true),
        (Some(unsampled), true),
        (Some(unsampled), true),
        (Some(unsampled), false),
        (None, false),
    ];
    sampler
        .answers
        .lock()
        .unwrap()
        .extend(script.iter().map(|(_, answer)| *answer));
    for (n, (traceparent, _)) in script.iter().enumerate() {
        let mut request = Request::get(format!("/orders/{n}")).header("host", "shop.example");
        if let Some(tp) = traceparent {
            request = request.header("traceparent", *tp);
        }
        let response = call(app.clone(), request.body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), 200);
    }
    let recorded = spans.0.lock().unwrap().clone();
    let paths: Vec<String> = recorded
        .iter()
        .map(|s| attr(s, "url.path").unwrap_or_default())
        .collect();
    let expected: Vec<String> = script
        .iter()
        .enumerate()
        .filter(|(_, (_, answer))| *answer)
        .map(|(n, _)| format!("/orders/{n}"))
        .collect();
    assert_eq!(paths, expected);
    for span in &recorded {
        assert_eq!(span.name, "GET /orders/{id}");
        assert_eq!(span.span_kind, SpanKind::Server);
        for (key, value) in [
            ("http.request.method", "GET"),
            ("http.route", "/orders/{id}"),
            ("url.scheme", "http"),
            ("server.address", "shop.example"),
            ("server.port", "80"),
            ("http.response.status_code", "200"),
        ] {
            assert_eq!(attr(span, key).as_deref(), Some(value), "{key}");
        }
    }
    // The attributes are offered to the sampler when the last decision
    // under the same kind of parent recorded (at first: a root or a sampled
    // caller, not an unsampled one); requests under other kinds of parent
    // in between do not count.
    let saw = sampler.saw_attributes.lock().unwrap().clone();
    assert_eq!(
        saw,
        [
            true, true, false, false, true, // roots
            true, false, false, true, // sampled caller
            false, true, true, // unsampled caller
            true, // a root again, after the recorded fifth request
        ]
    );
}

/// The client layer under every sampler decision: the upstream always
/// receives the client span's context (sampled flag as decided), the
/// response body arrives whole, and only recorded spans are ended, each with
/// its status code.
#[tokio::test]
async fn client_spans_recorded_or_dropped_as_the_sampler_decides() {
    let (sampler, spans, provider) = scripted_provider();
    let upstream = tower::service_fn(|req: Request<Body>| async move {
        let traceparent = req.headers()["traceparent"].to_str().unwrap().to_owned();
        Ok::<_, Infallible>(Response::new(Body::from(traceparent)))
    });
    let client = ClientLayer::builder()
        .tracer_provider(&provider)
        .build()
        .layer(upstream);
    let script = [false, true, false, true];
    sampler.answers.lock().unwrap().extend(script);
    let mut received = Vec::new();
    for n in 0..script.len() {
        let request = Request::get(format!("http://inventory.internal/items/{n}"))
            .body(Body::empty())
            .unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        received.push(String::from_utf8(body.to_vec()).unwrap());
    }
    for (sent, recorded) in received.iter().zip(script) {
        let flags = if recorded { "-01" } else { "-00" };
        assert!(
            sent.ends_with(flags),
            "{sent} for a recorded={recorded} span"
        );
        assert_eq!(sent.len(), 55, "{sent}");
    }
    let ended = spans.0.lock().unwrap().clone();
    let urls: Vec<String> = ended
        .iter()
        .map(|s| attr(s, "url.full").unwrap_or_default())
        .collect();
    assert_eq!(
        urls,
        [
            "http://inventory.internal/items/1",
            "http://inventory.internal/items/3"
        ]
    );
    for (span, sent) in ended.iter().zip([&received[1], &received[3]]) {
        assert_eq!(span.span_kind, SpanKind::Client);
        assert_eq!(
            attr(span, "http.response.status_code").as_deref(),
            Some("200")
        );
        assert_eq!(
            *sent,
            format!(
                "00-{}-{}-01",
                span.span_context.trace_id(),
                span.span_context.span_id()
            )
        );
    }
}

#[tokio::test]
async fn query_keys_are_redacted_as_the_server_reads_them() {
    let (guard, capture) = setup();
    let layer = ServerLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .redact_query_keys(["Tenant"])
        .build();
    let service = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let request = Request::get("/search?q=shoes&tok%65n=s1&Signature=s2&jwt=s3&tenant=acme")
        .body(Body::empty())
        .unwrap();
    let _ = layer
        .layer(service)
        .oneshot(request)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await;
    let span = &capture.spans()[0];
    assert_eq!(
        attr(span, "url.query").as_deref(),
        Some("q=shoes&tok%65n=REDACTED&Signature=REDACTED&jwt=REDACTED&tenant=REDACTED")
    );
}

#[tokio::test]
async fn a_hook_renames_the_span_and_adds_attributes_from_the_request() {
    let (guard, capture) = setup();
    let layer = ServerLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .on_request(|request, span| {
            assert_eq!(span.name(), "GET");
            if let Some(tenant) = request.headers().get("x-tenant") {
                span.set_attribute(opentelemetry::KeyValue::new(
                    "tenant.id",
                    tenant.to_str().unwrap().to_owned(),
                ));
            }
            if request.uri().path().starts_with("/admin") {
                span.set_name("admin");
            }
        })
        .build();
    let service = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    });
    let request = Request::get("/admin/users")
        .header("x-tenant", "acme")
        .body(Body::empty())
        .unwrap();
    let _ = layer
        .layer(service)
        .oneshot(request)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await;
    let span = capture.span("admin").expect("renamed by the hook");
    assert_eq!(attr(&span, "tenant.id").as_deref(), Some("acme"));
    assert_eq!(attr(&span, "http.request.method").as_deref(), Some("GET"));
}

/// The attributes of a point, as text.
fn point_attrs(attributes: &[opentelemetry::KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

fn grpc_service(
    code: &'static str,
) -> impl tower::Service<
    Request<Body>,
    Response = Response<GrpcBody>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |_req: Request<Body>| async move {
        let mut response = Response::new(GrpcBody {
            status: Some(code),
            sent: false,
        });
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/grpc"));
        Ok::<_, Infallible>(response)
    })
}

/// A server layer on `guard`'s tracer provider, with its instruments on a
/// meter provider of its own.
fn metered_server_layer(
    guard: &TelemetryGuard,
) -> (ServerLayer, observability_metrics::MeterProvider) {
    let meters = observability_metrics::MeterProvider::new(Default::default());
    let layer = ServerLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .meter_provider(&meters)
        .build();
    (layer, meters)
}

fn grpc_request() -> Request<Body> {
    Request::post("http://127.0.0.1:50051/shop.v1.Orders/Get")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .version(http::Version::HTTP_2)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn grpc_calls_are_timed_with_their_status_on_both_sides() {
    use observability_metrics::Data;
    let (guard, capture) = setup();
    let (server, meters) = metered_server_layer(&guard);
    let server = server.layer(grpc_service("5"));
    let response = server.oneshot(grpc_request()).await.unwrap();
    response.into_body().collect().await.unwrap();
    let client = ClientLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .meter_provider(&meters)
        .build()
        .layer(grpc_service("0"));
    let response = client.oneshot(grpc_request()).await.unwrap();
    response.into_body().collect().await.unwrap();

    let collected = meters.collect();
    let server_span = capture
        .spans()
        .into_iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .unwrap();
    for (name, code) in [("rpc.server.duration", "5"), ("rpc.client.duration", "0")] {
        let metric = collected.metric(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(metric.unit, "ms");
        let Data::Histogram { points, .. } = &metric.data else {
            panic!("{name}: not a histogram")
        };
        assert_eq!(points.len(), 1, "{name}: {points:?}");
        assert_eq!(points[0].count, 1);
        let attrs = point_attrs(&points[0].attributes);
        for expected in [
            ("rpc.system", "grpc"),
            ("rpc.service", "shop.v1.Orders"),
            ("rpc.method", "Get"),
            ("rpc.grpc.status_code", code),
        ] {
            assert!(
                attrs.contains(&(expected.0.to_owned(), expected.1.to_owned())),
                "{name}: {expected:?} not in {attrs:?}"
            );
        }
        assert_eq!(points[0].exemplars.len(), 1, "{name}: the call's span");
    }
    let Data::Histogram { points, .. } = &collected.metric("rpc.server.duration").unwrap().data
    else {
        unreachable!()
    };
    assert_eq!(
        points[0].exemplars[0].span_id,
        server_span.span_context.span_id()
    );
    assert!(
        collected.metric("http.server.request.duration").is_none()
            && collected.metric("http.client.request.duration").is_none(),
        "gRPC calls are RPC metrics only"
    );
}
