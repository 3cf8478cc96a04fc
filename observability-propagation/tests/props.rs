//! Property tests of the B3, Jaeger, X-Ray and OT propagators: no input
//! panics, valid input round-trips with the same ids and sampling decision.
#![cfg(all(
    feature = "b3",
    feature = "jaeger",
    feature = "xray",
    feature = "ottrace"
))]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use observability_propagation::{
    B3Encoding, B3Propagator, JaegerPropagator, OtTracePropagator, XrayPropagator,
};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use proptest::prelude::*;

fn extract(p: &dyn TextMapPropagator, headers: &[(&str, String)]) -> SpanContext {
    let map: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    p.extract(&map).span().span_context().clone()
}

fn propagators() -> Vec<(Box<dyn TextMapPropagator>, &'static [&'static str])> {
    vec![
        (
            Box::new(B3Propagator::new(B3Encoding::SingleHeader)),
            &["b3"],
        ),
        (
            Box::new(B3Propagator::new(B3Encoding::MultipleHeaders)),
            &[
                "x-b3-traceid",
                "x-b3-spanid",
                "x-b3-sampled",
                "x-b3-flags",
                "x-b3-parentspanid",
            ],
        ),
        (
            Box::new(JaegerPropagator::new()),
            &["uber-trace-id", "uberctx-a"],
        ),
        (Box::new(XrayPropagator::new()), &["x-amzn-trace-id"]),
        (
            Box::new(OtTracePropagator::new()),
            &[
                "ot-tracer-traceid",
                "ot-tracer-spanid",
                "ot-tracer-sampled",
                "ot-baggage-a",
            ],
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_header_is_safe(values in proptest::collection::vec(".{0,80}", 5)) {
        for (propagator, names) in propagators() {
            let headers: Vec<(&str, String)> = names.iter().copied().zip(values.iter().cloned()).collect();
            let sc = extract(propagator.as_ref(), &headers);
            let _ = sc.is_valid();
        }
    }

    #[test]
    fn valid_contexts_round_trip(trace in 1u128.., span in 1u64.., sampled: bool) {
        // OT keeps only the lower 64 bits: they must not be all zeros.
        prop_assume!(trace & u128::from(u64::MAX) != 0);
        let sc = SpanContext::new(
            trace.into(),
            span.into(),
            if sampled { opentelemetry::trace::TraceFlags::SAMPLED } else { Default::default() },
            true,
            Default::default(),
        );
        let cx = opentelemetry::Context::new().with_remote_span_context(sc);
        for (propagator, _) in propagators() {
            let mut out: HashMap<String, String> = HashMap::new();
            propagator.inject_context(&cx, &mut out);
            let back = propagator.extract(&out);
            let back = back.span().span_context().clone();
            prop_assert!(back.is_valid());
            prop_assert_eq!(back.span_id(), span.into());
            prop_assert_eq!(back.is_sampled(), sampled);
            // OT carries 64-bit trace ids: the lower half survives.
            let expected = if out.contains_key("ot-tracer-traceid") {
                trace & u128::from(u64::MAX)
            } else {
                trace
            };
            prop_assert_eq!(back.trace_id(), expected.into());
        }
    }
}
