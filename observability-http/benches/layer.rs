//! Per-request cost of the server layer, against a bare service and against
//! the `tracing`-span approach (what middleware built on
//! tracing-opentelemetry does per request); and of the client layer, HTTP
//! and gRPC, against a bare client service.
//!
//! ```sh
//! cargo bench -p observability-http --bench layer
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use observability_core::{Exporter, OpenTelemetrySpanExt, TelemetryGuard};
use observability_http::{ClientLayer, ServerLayer};
use tower::{Layer, Service};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UNSAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

/// Polls a future that completes without waiting (every service here does).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn drain<B: http_body::Body>(body: B) {
    let mut body = pin!(body);
    let mut cx = Context::from_waker(Waker::noop());
    while let Poll::Ready(Some(_)) = body.as_mut().poll_frame(&mut cx) {}
}

fn request(traceparent: bool) -> Request<Full<Bytes>> {
    request_with(traceparent.then_some(TRACEPARENT))
}

fn request_with(traceparent: Option<&str>) -> Request<Full<Bytes>> {
    let mut builder = Request::get("/hello")
        .header("host", "127.0.0.1:3000")
        .header("user-agent", "wrk");
    if let Some(traceparent) = traceparent {
        builder = builder.header("traceparent", traceparent);
    }
    builder.body(Full::new(Bytes::new())).unwrap()
}

async fn hello(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!",
    ))))
}

fn telemetry(ratio: f64) -> TelemetryGuard {
    let guard = observability_core::builder()
        .env_lookup(|_| None)
        .exporter(Exporter::None)
        .sample_ratio(ratio)
        .build()
        .unwrap();
    opentelemetry::global::set_text_map_propagator(
        observability_core::propagation::TraceContextPropagator::new(),
    );
    guard
}

/// Benchmarks one request through `service`, its response body drained.
fn bench_call<S, B>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut service: S,
    request: impl Fn() -> Request<Full<Bytes>>,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
{
    group.bench_function(name, |b| {
        b.iter(|| {
            let response = ready(service.call(request())).unwrap();
            drain(response.into_body());
        })
    });
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("server_layer");

    bench_call(&mut group, "bare", tower::service_fn(hello), || {
        request(false)
    });

    for (name, ratio, traceparent) in [
        ("sampled", 1.0, false),
        ("sampled_with_traceparent", 1.0, true),
        ("sampled_out", 0.0, false),
    ] {
        let guard = telemetry(ratio);
        let _dispatch = tracing::dispatcher::set_default(guard.dispatch());
        let traced = ServerLayer::builder()
            .tracer_provider(guard.tracer_provider().unwrap())
            .build()
            .layer(tower::service_fn(hello));
        bench_call(&mut group, name, traced, || request(traceparent));
    }

    // A caller that did not sample, through the global tracer provider and
    // propagator: as the layer did before `init()` registered what its
    // sampler drops unseen (the SDK's non-recording span, the generic
    // propagator), and with the shortcut `init()` sets up.
    {
        use observability_core::propagation::W3cPropagator;
        use observability_core::propagation::sampling::{self, DropRule};
        let guard = telemetry(1.0);
        let _dispatch = tracing::dispatcher::set_default(guard.dispatch());
        opentelemetry::global::set_tracer_provider(guard.tracer_provider().unwrap().clone());
        sampling::set_global_drop_rule(None);
        let through_sdk = ServerLayer::new().layer(tower::service_fn(hello));
        bench_call(
            &mut group,
            "sampled_out_by_caller_through_sdk",
            through_sdk,
            || request_with(Some(UNSAMPLED)),
        );
        opentelemetry::global::set_text_map_propagator(W3cPropagator::new());
        sampling::set_global_drop_rule(Some(DropRule::parent_based(std::sync::Arc::new(|| {}))));
        let shortcut = ServerLayer::new().layer(tower::service_fn(hello));
        bench_call(&mut group, "sampled_out_by_caller", shortcut, || {
            request_with(Some(UNSAMPLED))
        });
        sampling::set_global_drop_rule(None);
    }

    // The approach of tracing-span middleware: one `tracing` span per request,
    // bridged by tracing-opentelemetry, with the same attributes.
    for (name, ratio) in [
        ("tracing_bridge_sampled", 1.0),
        ("tracing_bridge_sampled_out", 0.0),
    ] {
        let guard = telemetry(ratio);
        let _dispatch = tracing::dispatcher::set_default(guard.dispatch());
        group.bench_function(name, |b| {
            b.iter(|| {
                let req = request(true);
                let parent = observability_http::extract_context(req.headers());
                let span = tracing::info_span!(
                    "GET /hello",
                    otel.kind = "server",
                    http.request.method = "GET",
                    url.path = "/hello",
                    url.scheme = "http",
                    server.address = "127.0.0.1",
                    server.port = 3000,
                    user_agent.original = "wrk",
                    network.protocol.version = "1.1",
                    http.response.status_code = tracing::field::Empty,
                );
                let _ = span.set_parent(parent);
                let response = {
                    let _e = span.enter();
                    ready(hello(req)).unwrap()
                };
                span.record("http.response.status_code", 200);
                drain(response.into_body());
                drop(span);
            })
        });
    }
    group.finish();
}

fn client_request(grpc: bool) -> Request<Full<Bytes>> {
    let builder = if grpc {
        Request::post("http://orders.internal:50051/shop.v1.Orders/Get")
            .header("content-type", "application/grpc")
    } else {
        Request::get("http://orders.internal:8080/orders/42?expand=items")
    };
    builder.body(Full::new(Bytes::new())).unwrap()
}

fn client_bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_layer");

    bench_call(&mut group, "bare", tower::service_fn(hello), || {
        client_request(false)
    });

    for (name, ratio, grpc) in [
        ("sampled", 1.0, false),
        ("sampled_out", 0.0, false),
        ("grpc_sampled", 1.0, true),
    ] {
        let guard = telemetry(ratio);
        let _dispatch = tracing::dispatcher::set_default(guard.dispatch());
        let traced = ClientLayer::builder()
            .tracer_provider(guard.tracer_provider().unwrap())
            .build()
            .layer(tower::service_fn(hello));
        bench_call(&mut group, name, traced, || client_request(grpc));
    }

    // A call made while handling a request whose caller did not sample,
    // through the global tracer provider: through the SDK, and with the
    // shortcut `init()` sets up.
    {
        use observability_core::opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
        };
        use observability_core::propagation::sampling::{self, DropRule};
        let guard = telemetry(1.0);
        let _dispatch = tracing::dispatcher::set_default(guard.dispatch());
        opentelemetry::global::set_tracer_provider(guard.tracer_provider().unwrap().clone());
        let caller = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::default(),
            true,
            TraceState::NONE,
        );
        let _attached = opentelemetry::Context::new()
            .with_remote_span_context(caller)
            .attach();
        sampling::set_global_drop_rule(None);
        let through_sdk = ClientLayer::new().layer(tower::service_fn(hello));
        bench_call(
            &mut group,
            "in_sampled_out_request_through_sdk",
            through_sdk,
            || client_request(false),
        );
        sampling::set_global_drop_rule(Some(DropRule::parent_based(std::sync::Arc::new(|| {}))));
        let shortcut = ClientLayer::new().layer(tower::service_fn(hello));
        bench_call(&mut group, "in_sampled_out_request", shortcut, || {
            client_request(false)
        });
        sampling::set_global_drop_rule(None);
    }
    group.finish();
}

/// An axum router answering a caller that did not sample, with `init()`'s
/// shortcut: bare, under `ServerLayer::new()` (whose `ResponseBody` the
/// router boxes) and under `ServerLayer::new().for_axum()` (which hands the
/// router its own body).
fn router_bench(c: &mut Criterion) {
    use axum::Router;
    use axum::routing::get;
    use observability_core::propagation::W3cPropagator;
    use observability_core::propagation::sampling::{self, DropRule};

    fn router_request() -> Request<axum::body::Body> {
        Request::get("/hello")
            .header("host", "127.0.0.1:3000")
            .header("user-agent", "wrk")
            .header("traceparent", UNSAMPLED)
            .body(axum::body::Body::empty())
            .unwrap()
    }
    fn bench_router(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut router: Router) {
        group.bench_function(name, |b| {
            b.iter(|| {
                let response = ready(router.call(router_request())).unwrap();
                drain(response.into_body());
            })
        });
    }

    let mut group = c.benchmark_group("axum_router_sampled_out");
    let guard = telemetry(1.0);
    let _dispatch = tracing::dispatcher::set_default(guard.dispatch());
    opentelemetry::global::set_tracer_provider(guard.tracer_provider().unwrap().clone());
    opentelemetry::global::set_text_map_propagator(W3cPropagator::new());
    sampling::set_global_drop_rule(Some(DropRule::parent_based(std::sync::Arc::new(|| {}))));
    let router = || Router::new().route("/hello", get(|| async { "Hello, World!" }));
    bench_router(&mut group, "bare", router());
    bench_router(&mut group, "layer", router().layer(ServerLayer::new()));
    bench_router(
        &mut group,
        "layer_for_axum",
        router().layer(ServerLayer::new().for_axum()),
    );
    sampling::set_global_drop_rule(None);
    group.finish();
}

/// A request under `init()`'s globals, the way an application gets it:
/// `ServerLayer::new()` after `try_init()`, with a sampled caller (the span
/// started without the SDK's tracer, `observability_propagation::starter`),
/// with a caller that did not sample (`init()`'s shortcut, no span), and
/// with no caller (a root span, sampled). Beside them, the same provider
/// given to the layer, which goes through the tracer. Last, as it installs
/// the globals for the rest of the process.
fn init_bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("server_layer_init");
    let guard = observability_core::builder()
        .env_lookup(|_| None)
        .exporter(Exporter::None)
        .log_writer(std::io::sink)
        .try_init()
        .unwrap();
    let through_tracer = ServerLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .build()
        .layer(tower::service_fn(hello));
    bench_call(&mut group, "sampled_through_tracer", through_tracer, || {
        request(true)
    });
    let direct = ServerLayer::new().layer(tower::service_fn(hello));
    bench_call(&mut group, "sampled_started_directly", direct, || {
        request(true)
    });
    let root = ServerLayer::new().layer(tower::service_fn(hello));
    bench_call(&mut group, "root_sampled", root, || request(false));
    let unsampled = ServerLayer::new().layer(tower::service_fn(hello));
    bench_call(&mut group, "sampled_out_by_caller", unsampled, || {
        request_with(Some(UNSAMPLED))
    });
    group.finish();
}

criterion_group!(benches, bench, client_bench, router_bench, init_bench);
criterion_main!(benches);
