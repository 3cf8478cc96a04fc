//! The messaging carriers carry whatever the installed propagators write:
//! with B3 and Jaeger installed beside W3C, a context crosses the string
//! map, the JSON payload field, AMQP headers and SQS attributes in all three
//! formats, and each one alone is enough to continue the trace. One test:
//! it installs the global propagator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use observability_core::propagation::{
    B3Encoding, B3Propagator, JaegerPropagator, TraceContextPropagator,
};
use observability_messaging::{extract_json, extract_map, inject_json, inject_map};
use opentelemetry::Context;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn context() -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        u128::from_str_radix(TRACE, 16).unwrap().into(),
        0x00f0_67aa_0ba9_02b7_u64.into(),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    ))
}

/// Each format's fields alone continue the trace.
fn check(what: &str, fields: &HashMap<String, String>) {
    for (name, keys) in [
        ("b3", &["b3"][..]),
        ("jaeger", &["uber-trace-id"][..]),
        ("w3c", &["traceparent"][..]),
    ] {
        let only: HashMap<String, String> = fields
            .iter()
            .filter(|(k, _)| keys.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(only.len(), keys.len(), "{what}: no {name} in {fields:?}");
        let cx = extract_map(&only);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            TRACE,
            "{what}: {name}"
        );
    }
}

#[test]
fn every_carrier_carries_every_installed_format() {
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(B3Propagator::new(B3Encoding::SingleHeader)),
        Box::new(JaegerPropagator::new()),
    ]));
    let cx = context();

    let mut map = HashMap::new();
    inject_map(&cx, &mut map);
    check("map", &map);

    let mut payload = serde_json::json!({});
    inject_json(&cx, &mut payload);
    let fields: HashMap<String, String> =
        serde_json::from_value(payload["traceContext"].clone()).unwrap();
    check("json", &fields);
    assert_eq!(
        extract_json(&payload)
            .span()
            .span_context()
            .trace_id()
            .to_string(),
        TRACE
    );

    #[cfg(feature = "amqp")]
    {
        use lapin::types::FieldTable;
        use observability_messaging::amqp::{AmqpHeadersExtractor, AmqpHeadersInjector};
        use opentelemetry::propagation::Extractor;
        let mut table = FieldTable::default();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut AmqpHeadersInjector(&mut table))
        });
        let extractor = AmqpHeadersExtractor(Some(&table));
        let fields: HashMap<String, String> = extractor
            .keys()
            .into_iter()
            .map(|k| (k.to_owned(), extractor.get(k).unwrap().to_owned()))
            .collect();
        check("amqp", &fields);
    }

    #[cfg(feature = "sqs")]
    {
        use observability_messaging::sqs::{SqsAttributesExtractor, inject_attributes};
        use opentelemetry::propagation::Extractor;
        let mut attributes = HashMap::new();
        assert!(inject_attributes(&cx, &mut attributes));
        let extractor = SqsAttributesExtractor(Some(&attributes));
        let fields: HashMap<String, String> = extractor
            .keys()
            .into_iter()
            .map(|k| (k.to_owned(), extractor.get(k).unwrap().to_owned()))
            .collect();
        check("sqs", &fields);
    }
}
