//! Every messaging carrier follows the W3C Trace Context rules of the
//! propagator it goes through: the random flag survives a consumer span the
//! sampler dropped, and a `tracestate` holding keys of the current grammar
//! (which the OpenTelemetry API's `TraceState` cannot hold) is passed on
//! with the first member of a duplicated key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use observability_messaging::{extract_json, extract_map, inject_json, inject_map};
use opentelemetry::Context;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02";
const TRACESTATE: &str = "foo@@bar=1,a=2,foo@@bar=3";
const PASSED_ON: &str = "foo@@bar=1,a=2";

/// A consumer span under `parent` that the sampler drops (the SDK resets
/// its flags), as the context a handler would inject from.
fn dropped_child(parent: &Context) -> Context {
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let span = provider.tracer("w3c").start_with_context("process", parent);
    assert!(!span.span_context().is_sampled());
    parent.with_span(span)
}

fn check(what: &str, traceparent: Option<String>, tracestate: Option<String>) {
    let traceparent = traceparent.unwrap_or_else(|| panic!("{what}: no traceparent"));
    assert!(
        traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
        "{what}: {traceparent}"
    );
    assert!(traceparent.ends_with("-02"), "{what}: {traceparent}");
    assert_eq!(tracestate.as_deref(), Some(PASSED_ON), "{what}");
}

#[test]
fn every_carrier_follows_the_trace_context_rules() {
    opentelemetry::global::set_text_map_propagator(
        observability_core::propagation::TraceContextPropagator::new(),
    );

    // The string map (in-process queues, any transport with text headers).
    let map: HashMap<String, String> = [
        ("traceparent".to_owned(), TRACEPARENT.to_owned()),
        ("tracestate".to_owned(), TRACESTATE.to_owned()),
    ]
    .into();
    let cx = dropped_child(&extract_map(&map));
    let mut out = HashMap::new();
    inject_map(&cx, &mut out);
    check(
        "map",
        out.get("traceparent").cloned(),
        out.get("tracestate").cloned(),
    );

    // The JSON payload field.
    let payload = serde_json::json!({
        "traceContext": {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    });
    let cx = dropped_child(&extract_json(&payload));
    let mut out = serde_json::json!({});
    inject_json(&cx, &mut out);
    let field = |k: &str| out["traceContext"][k].as_str().map(str::to_owned);
    check("json", field("traceparent"), field("tracestate"));

    #[cfg(feature = "amqp")]
    {
        use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
        use observability_messaging::amqp::{AmqpHeadersExtractor, AmqpHeadersInjector};
        let mut headers = FieldTable::default();
        for (k, v) in [("traceparent", TRACEPARENT), ("tracestate", TRACESTATE)] {
            headers.insert(
                ShortString::from(k),
                AMQPValue::LongString(LongString::from(v)),
            );
        }
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&AmqpHeadersExtractor(Some(&headers)))
        });
        let cx = dropped_child(&parent);
        let mut out = FieldTable::default();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut AmqpHeadersInjector(&mut out))
        });
        let read = |k: &str| {
            opentelemetry::propagation::Extractor::get(&AmqpHeadersExtractor(Some(&out)), k)
                .map(str::to_owned)
        };
        check("amqp", read("traceparent"), read("tracestate"));
    }

    #[cfg(feature = "sqs")]
    {
        use aws_sdk_sqs::types::MessageAttributeValue;
        use observability_messaging::sqs::{SqsAttributesExtractor, inject_attributes};
        let mut attributes = HashMap::new();
        for (k, v) in [("traceparent", TRACEPARENT), ("tracestate", TRACESTATE)] {
            attributes.insert(
                k.to_owned(),
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(v)
                    .build()
                    .unwrap(),
            );
        }
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&SqsAttributesExtractor(Some(&attributes)))
        });
        let cx = dropped_child(&parent);
        let mut out = HashMap::new();
        assert!(inject_attributes(&cx, &mut out));
        let read = |k: &str| {
            opentelemetry::propagation::Extractor::get(&SqsAttributesExtractor(Some(&out)), k)
                .map(str::to_owned)
        };
        check("sqs", read("traceparent"), read("tracestate"));
    }
}
