//! SQS and AMQP inject/extract.
//!
//! ```sh
//! cargo bench -p observability-messaging --all-features --bench carriers
//! ```
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;

use aws_sdk_sqs::types::Message;
use criterion::{Criterion, criterion_group, criterion_main};
use lapin::types::FieldTable;
use observability_core::opentelemetry::propagation::TextMapPropagator;
use observability_core::propagation::TraceContextPropagator;
use observability_messaging::amqp::{AmqpHeadersExtractor, AmqpHeadersInjector};
use observability_messaging::sqs;

fn carriers(c: &mut Criterion) {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut map: HashMap<String, String> = HashMap::new();
    map.insert(
        "traceparent".into(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
    );
    let cx = TraceContextPropagator::new().extract(&map);
    let propagator = TraceContextPropagator::new();

    let mut group = c.benchmark_group("carriers");
    group.bench_function("sqs_inject", |b| {
        b.iter(|| {
            let mut attributes = HashMap::new();
            sqs::inject_attributes(&cx, &mut attributes);
            attributes
        })
    });
    let mut attributes = HashMap::new();
    sqs::inject_attributes(&cx, &mut attributes);
    let message = Message::builder()
        .set_message_attributes(Some(attributes))
        .build();
    group.bench_function("sqs_extract", |b| b.iter(|| sqs::extract(&message)));
    group.bench_function("amqp_inject", |b| {
        b.iter(|| {
            let mut table = FieldTable::default();
            propagator.inject_context(&cx, &mut AmqpHeadersInjector(&mut table));
            table
        })
    });
    let mut table = FieldTable::default();
    propagator.inject_context(&cx, &mut AmqpHeadersInjector(&mut table));
    group.bench_function("amqp_extract", |b| {
        b.iter(|| propagator.extract(&AmqpHeadersExtractor(Some(&table))))
    });
    group.finish();
}

criterion_group!(benches, carriers);
criterion_main!(benches);
