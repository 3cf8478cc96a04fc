//! Property tests of the propagators: no input panics, valid input
//! round-trips, invalid input yields no parent (a new trace).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use observability_core::opentelemetry::baggage::BaggageExt;
use observability_core::opentelemetry::propagation::TextMapPropagator;
use observability_core::opentelemetry::trace::TraceContextExt;
use observability_core::propagation::{BaggagePropagator, TraceContextPropagator};
use proptest::prelude::*;

fn extract(headers: &[(&str, &str)]) -> observability_core::Context {
    let map: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    TraceContextPropagator::new().extract(&map)
}

fn traceparent(trace: u128, span: u64, flags: u8) -> String {
    format!("00-{trace:032x}-{span:016x}-{flags:02x}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_traceparent_or_tracestate_is_safe(tp in ".{0,120}", ts in ".{0,300}") {
        let cx = extract(&[("traceparent", &tp), ("tracestate", &ts)]);
        let _ = cx.span().span_context().trace_state().header();
    }

    #[test]
    fn valid_traceparents_round_trip(trace in 1u128.., span in 1u64.., flags in 0u8..=3) {
        let tp = traceparent(trace, span, flags);
        let cx = extract(&[("traceparent", &tp)]);
        prop_assert!(cx.span().span_context().is_valid());
        let mut out: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut out);
        prop_assert_eq!(out.get("traceparent"), Some(&tp));
    }

    #[test]
    fn a_corrupted_traceparent_starts_a_new_trace(
        trace in 1u128.., span in 1u64.., position in 0usize..55, replacement in "[G-Zg-z_ .]",
    ) {
        let mut tp = traceparent(trace, span, 1).into_bytes();
        tp[position] = replacement.as_bytes()[0];
        let tp = String::from_utf8(tp).unwrap();
        let cx = extract(&[("traceparent", &tp)]);
        prop_assert!(!cx.span().span_context().is_valid(), "{} was accepted", tp);
    }

    #[test]
    fn valid_tracestates_round_trip(
        members in proptest::collection::btree_map("[a-z][a-z0-9_*/-]{0,15}", "[\\x21-\\x2b\\x2d-\\x3c\\x3e-\\x7e]{1,16}", 1..=32),
    ) {
        let header: Vec<String> = members.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let header = header.join(",");
        let cx = extract(&[("traceparent", &traceparent(7, 7, 1)), ("tracestate", &header)]);
        prop_assert_eq!(cx.span().span_context().trace_state().header(), header);
    }

    /// Every key of the current grammar, `( lcalpha / DIGIT ) 0*255
    /// ( keychar )` with `@` a keychar, is passed on as received, including
    /// those the API's `TraceState` cannot hold.
    #[test]
    fn tracestate_keys_of_the_current_grammar_are_passed_on(
        key in "[a-z0-9][a-z0-9_*/@-]{0,255}",
        value in "[\\x21-\\x2b\\x2d-\\x3c\\x3e-\\x7e]{1,16}",
    ) {
        prop_assume!(key != "other");
        let header = format!("{key}={value},other=1");
        let cx = extract(&[("traceparent", &traceparent(7, 7, 0)), ("tracestate", &header)]);
        let mut out: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut out);
        prop_assert_eq!(out.get("tracestate"), Some(&header));
    }

    #[test]
    fn any_baggage_is_safe(value in ".{0,2000}") {
        let map: HashMap<String, String> = [("baggage".to_owned(), value)].into();
        let cx = BaggagePropagator::new().extract(&map);
        prop_assert!(cx.baggage().len() <= 64);
    }

    #[test]
    fn baggage_round_trips(pairs in proptest::collection::btree_map("[A-Za-z0-9!#$&'*+.^_`|~-]{1,12}", "[ -~]{0,30}", 1..20)) {
        let kvs: Vec<observability_core::KeyValue> = pairs
            .iter()
            .map(|(k, v)| observability_core::KeyValue::new(k.clone(), v.clone()))
            .collect();
        let cx = observability_core::Context::new().with_baggage(kvs);
        let mut out: HashMap<String, String> = HashMap::new();
        BaggagePropagator::new().inject_context(&cx, &mut out);
        let back = BaggagePropagator::new().extract(&out);
        for (k, v) in &pairs {
            prop_assert_eq!(back.baggage().get(k.as_str()).map(|s| s.as_str().to_owned()), Some(v.clone()));
        }
    }
}
