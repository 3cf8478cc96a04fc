//! Several services in one process (`TelemetryGuard::service`), exported to
//! a real OTLP receiver over both protocols: each span arrives under its own
//! service's resource, in one trace across them, counted in the guard's
//! stats and flushed at its shutdown; log lines carry each service's name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use observability_core::opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use observability_tests::OtlpReceiver;

use observability_tests::MemoryLog as Lines;

fn run(protocol: &str) {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.endpoint(protocol);
    let vars: HashMap<String, String> = [
        ("OTEL_SERVICE_NAME", "shop"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test",
        ),
        ("OTEL_LOG_FORMAT", "json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let lines = Lines::default();
    let writer = lines.clone();
    let guard = observability_core::builder()
        .env_lookup(move |name| vars.get(name).cloned())
        .log_writer(move || writer.clone())
        .build()
        .unwrap();
    let api = guard.service("shop-api");
    let worker = guard.service("shop-worker");

    // The API's span (OpenTelemetry API, its provider), a `tracing` span
    // under it through its dispatcher, and the worker's span continuing it.
    let api_tracer = api.tracer_provider().unwrap().tracer("test");
    let root = api_tracer.start("POST /orders");
    let cx = observability_core::Context::current_with_span(root);
    {
        let _attached = cx.clone().attach();
        tracing::dispatcher::with_default(api.dispatch(), || {
            let _span = tracing::info_span!("price").entered();
            tracing::info!("priced");
        });
    }
    let worker_tracer = worker.tracer_provider().unwrap().tracer("test");
    let process = worker_tracer.start_with_context("process orders", &cx);
    let worker_cx = cx.with_span(process);
    {
        let _attached = worker_cx.clone().attach();
        tracing::dispatcher::with_default(worker.dispatch(), || {
            tracing::info!("charged");
        });
    }
    worker_cx.span().end();
    cx.span().end();
    // And one of the main service.
    tracing::dispatcher::with_default(guard.dispatch(), || {
        let _span = tracing::info_span!("main work").entered();
    });

    let stats = guard.shutdown_blocking().unwrap();
    assert_eq!(stats.exported, 4, "{stats:?}");
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    let spans = receiver.wait_for_spans(4, Duration::from_secs(10));
    let service_of = |name: &str| {
        let span = spans
            .iter()
            .find(|s| s.span.name == name)
            .unwrap_or_else(|| panic!("{protocol}: no {name}"));
        (
            span.resource_attr("service.name").unwrap_or_default(),
            span.resource_attr("deployment.environment.name"),
            span.trace_id(),
        )
    };
    let (api_service, environment, trace) = service_of("POST /orders");
    assert_eq!(api_service, "shop-api", "{protocol}");
    assert_eq!(
        environment.as_deref(),
        Some("test"),
        "the rest of the resource is kept"
    );
    let (price_service, _, price_trace) = service_of("price");
    assert_eq!(
        price_service, "shop-api",
        "{protocol}: a tracing span of the API"
    );
    assert_eq!(price_trace, trace);
    let (worker_service, _, worker_trace) = service_of("process orders");
    assert_eq!(worker_service, "shop-worker", "{protocol}");
    assert_eq!(worker_trace, trace, "one trace across the services");
    assert_eq!(service_of("main work").0, "shop");

    let text = lines.text();
    let logged: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let line = |message: &str| {
        logged
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in {text}"))
    };
    assert_eq!(line("priced")["service.name"], "shop-api");
    assert_eq!(line("priced")["trace_id"], trace.as_str());
    assert_eq!(line("charged")["service.name"], "shop-worker");
    assert_eq!(line("charged")["trace_id"], trace.as_str());
}

#[test]
fn services_export_under_their_own_name_over_http() {
    run("http/protobuf");
}

#[test]
fn services_export_under_their_own_name_over_grpc() {
    run("grpc");
}

#[test]
fn a_service_without_the_sdk_still_logs_under_its_name() {
    let lines = Lines::default();
    let writer = lines.clone();
    let guard = observability_core::builder()
        .env_lookup(|name| match name {
            "OTEL_SDK_DISABLED" => Some("true".into()),
            "OTEL_LOG_FORMAT" => Some("json".into()),
            _ => None,
        })
        .log_writer(move || writer.clone())
        .build()
        .unwrap();
    let api = guard.service("shop-api");
    assert!(api.tracer_provider().is_none());
    tracing::dispatcher::with_default(api.dispatch(), || tracing::info!("hello"));
    let text = lines.text();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["service.name"], "shop-api");
    assert_eq!(guard.shutdown_blocking().unwrap().exported, 0);
}
