//! Span cost (sampled and sampled out, through the OpenTelemetry API and
//! through a bridged `tracing` span under `init()`'s subscriber, with one
//! field and with eight, with the log output off and on, beside
//! `tracing-opentelemetry`'s bridge alone on the same provider) and
//! propagation inject/extract.
//!
//! ```sh
//! cargo bench -p observability-core --bench spans
//! ```
#![allow(missing_docs, clippy::unwrap_used)]

mod workload;

use std::collections::HashMap;

use criterion::{Criterion, criterion_group, criterion_main};
use observability_core::opentelemetry::propagation::TextMapPropagator;
use observability_core::opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
use observability_core::propagation::{BaggagePropagator, TraceContextPropagator};
use observability_core::{Exporter, TelemetryGuard};

fn telemetry(ratio: f64, log_filter: &str) -> TelemetryGuard {
    observability_core::builder()
        .env_lookup(|_| None)
        .exporter(Exporter::None)
        .sample_ratio(ratio)
        .log_filter(log_filter)
        .log_writer(std::io::sink)
        .build()
        .unwrap()
}

/// `tracing-opentelemetry`'s layer alone on `guard`'s provider.
fn bridge_alone(guard: &TelemetryGuard) -> tracing::Dispatch {
    use observability_core::tracing_opentelemetry;
    use tracing_subscriber::layer::SubscriberExt;
    let tracer = guard.tracer_provider().unwrap().tracer("bench");
    tracing::Dispatch::new(
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer)),
    )
}

fn spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("span");
    for (name, ratio) in [("sampled", 1.0), ("sampled_out", 0.0)] {
        let guard = telemetry(ratio, "off");
        let tracer = guard.tracer_provider().unwrap().tracer("bench");
        group.bench_function(format!("otel_api_{name}"), |b| {
            b.iter(|| {
                let mut span = tracer.start("work");
                span.set_attribute(observability_core::KeyValue::new("order.id", 7));
                span.end();
            })
        });
        let logging = telemetry(ratio, "info");
        let cases = [
            ("init", guard.dispatch().clone()),
            ("init_logs_on", logging.dispatch().clone()),
            ("bridge_alone", bridge_alone(&guard)),
        ];
        for (setup, dispatch) in &cases {
            tracing::dispatcher::with_default(dispatch, || {
                group.bench_function(format!("tracing_{setup}_{name}"), |b| {
                    b.iter(|| workload::one_field(7))
                });
                group.bench_function(format!("tracing_{setup}_{name}_8_fields"), |b| {
                    b.iter(|| workload::eight_fields(7))
                });
            });
        }
    }
    group.finish();
}

fn propagation(c: &mut Criterion) {
    let mut group = c.benchmark_group("propagation");
    let mut headers: HashMap<String, String> = HashMap::new();
    headers.insert(
        "traceparent".into(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
    );
    headers.insert("tracestate".into(), "vendor=abc,other=def".into());
    headers.insert("baggage".into(), "user=alice,tenant=acme".into());
    let tc = TraceContextPropagator::new();
    let bg = BaggagePropagator::new();
    group.bench_function("extract_traceparent_tracestate", |b| {
        b.iter(|| tc.extract(&headers))
    });
    group.bench_function("extract_baggage", |b| b.iter(|| bg.extract(&headers)));
    let cx = tc.extract(&headers);
    assert!(cx.span().span_context().is_valid());
    group.bench_function("inject_traceparent_tracestate", |b| {
        b.iter(|| {
            let mut out: HashMap<String, String> = HashMap::new();
            tc.inject_context(&cx, &mut out);
            out
        })
    });
    // The random flag set (opentelemetry-python's default `03`): kept
    // beside the context so a dropped span does not lose it.
    let mut random = headers.clone();
    random.insert(
        "traceparent".into(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".into(),
    );
    group.bench_function("extract_traceparent_random", |b| {
        b.iter(|| tc.extract(&random))
    });
    let cx = tc.extract(&random);
    group.bench_function("inject_traceparent_random", |b| {
        b.iter(|| {
            let mut out: HashMap<String, String> = HashMap::new();
            tc.inject_context(&cx, &mut out);
            out
        })
    });
    group.finish();
}

criterion_group!(benches, spans, propagation);
criterion_main!(benches);
