//! The cost of recording: a histogram with the HTTP server's attributes,
//! outside any span and inside a sampled one (an exemplar is kept), and a
//! counter, beside the OpenTelemetry SDK's metrics (which keep no
//! exemplars) in the same run.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry::{Context, KeyValue};

fn attributes(route: &'static str) -> [KeyValue; 4] {
    [
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("http.route", route),
        KeyValue::new("http.response.status_code", 200),
    ]
}

fn sampled() -> Context {
    let sc = SpanContext::new(
        0x4bf92f3577b34da6a3ce929d0e0e4736_u128.into(),
        0x00f067aa0ba902b7_u64.into(),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    Context::current().with_remote_span_context(sc)
}

fn record(c: &mut Criterion) {
    let ours = observability_metrics::MeterProvider::new(Default::default());
    let sdk = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(opentelemetry_sdk::metrics::ManualReader::builder().build())
        .build();
    let bounds = vec![
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ];
    let attrs = attributes("/orders/{id}");
    for (name, meter) in [("ours", ours.meter("bench")), ("sdk", sdk.meter("bench"))] {
        let histogram = meter
            .f64_histogram("http.server.request.duration")
            .with_boundaries(bounds.clone())
            .build();
        let counter = meter.u64_counter("requests").build();
        c.bench_function(&format!("{name}/histogram, no span"), |b| {
            b.iter(|| histogram.record(0.042, &attrs))
        });
        let _in_span = sampled().attach();
        c.bench_function(&format!("{name}/histogram, sampled span"), |b| {
            b.iter(|| histogram.record(0.042, &attrs))
        });
        c.bench_function(&format!("{name}/counter, sampled span"), |b| {
            b.iter(|| counter.add(1, &attrs))
        });
    }
}

criterion_group!(benches, record);
criterion_main!(benches);
