//! What the provider records and collects: sums, histograms with their
//! buckets, exemplars from the current span, the overflow series,
//! temporality, observable instruments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use observability_metrics::{
    Data, ExemplarFilter, MeterProvider, MetricsConfig, Number, TemporalityPreference,
};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};

fn in_span<T>(sampled: bool, f: impl FnOnce() -> T) -> (TraceId, SpanId, T) {
    let trace_id = TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736_u128);
    let span_id = SpanId::from(0x00f067aa0ba902b7_u64);
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let sc = SpanContext::new(trace_id, span_id, flags, false, TraceState::default());
    let _guard = Context::current().with_remote_span_context(sc).attach();
    (trace_id, span_id, f())
}

#[test]
fn a_histogram_counts_per_bucket_and_keeps_the_exemplar_of_a_sampled_span() {
    let provider = MeterProvider::new(MetricsConfig::default());
    let meter = provider.meter("test");
    let h = meter
        .f64_histogram("latency")
        .with_unit("s")
        .with_boundaries(vec![0.1, 1.0])
        .build();
    let route = [KeyValue::new("http.route", "/a"), KeyValue::new("m", "GET")];
    let reversed = [KeyValue::new("m", "GET"), KeyValue::new("http.route", "/a")];
    h.record(0.05, &route);
    let (trace_id, span_id, ()) = in_span(true, || h.record(0.5, &reversed));
    in_span(false, || h.record(2.0, &route));
    let collected = provider.collect();
    let Data::Histogram { points, .. } = &collected.metric("latency").unwrap().data else {
        panic!("not a histogram")
    };
    assert_eq!(points.len(), 1, "one series whatever the order: {points:?}");
    let p = &points[0];
    assert_eq!(p.counts, vec![1, 1, 1]);
    assert_eq!((p.count, p.min, p.max), (3, Some(0.05), Some(2.0)));
    assert!((p.sum - 2.55).abs() < 1e-9);
    assert_eq!(
        p.exemplars.len(),
        1,
        "only the sampled one: {:?}",
        p.exemplars
    );
    let e = p.exemplars[0];
    assert_eq!(
        (e.trace_id, e.span_id, e.value),
        (trace_id, span_id, Number::F64(0.5))
    );
}

#[test]
fn the_exemplar_filter_decides() {
    for (filter, expected) in [
        (ExemplarFilter::TraceBased, 0),
        (ExemplarFilter::AlwaysOn, 1),
        (ExemplarFilter::AlwaysOff, 0),
    ] {
        let provider = MeterProvider::new(MetricsConfig::default().with_exemplar_filter(filter));
        let c = provider.meter("test").u64_counter("c").build();
        in_span(false, || c.add(1, &[]));
        let collected = provider.collect();
        let Data::Sum { points, .. } = &collected.metric("c").unwrap().data else {
            panic!()
        };
        assert_eq!(points[0].exemplars.len(), expected, "{filter:?}");
    }
}

#[test]
fn attribute_sets_past_the_limit_go_to_the_overflow_series() {
    let provider = MeterProvider::new(MetricsConfig::default().with_cardinality_limit(10));
    let c = provider.meter("test").u64_counter("c").build();
    for i in 0..100 {
        c.add(1, &[KeyValue::new("user", i)]);
    }
    let collected = provider.collect();
    let Data::Sum { points, .. } = &collected.metric("c").unwrap().data else {
        panic!()
    };
    assert_eq!(points.len(), 10, "nine sets and the overflow");
    let overflow = points
        .iter()
        .find(|p| p.attributes == [KeyValue::new("otel.metric.overflow", true)])
        .unwrap();
    assert_eq!(overflow.value, Number::I64(91));
    let total: i64 = points
        .iter()
        .map(|p| match p.value {
            Number::I64(v) => v,
            Number::F64(_) => 0,
        })
        .sum();
    assert_eq!(total, 100, "nothing lost");
}

#[test]
fn delta_temporality_resets_and_cumulative_does_not() {
    for (preference, second) in [
        (TemporalityPreference::Cumulative, 3),
        (TemporalityPreference::Delta, 1),
    ] {
        let provider = MeterProvider::new(MetricsConfig::default().with_temporality(preference));
        let meter = provider.meter("test");
        let c = meter.u64_counter("c").build();
        let up_down = meter.i64_up_down_counter("u").build();
        c.add(2, &[]);
        up_down.add(5, &[]);
        provider.collect();
        c.add(1, &[]);
        up_down.add(-1, &[]);
        let collected = provider.collect();
        let Data::Sum { points, .. } = &collected.metric("c").unwrap().data else {
            panic!()
        };
        assert_eq!(points[0].value, Number::I64(second), "{preference:?}");
        let Data::Sum { points, .. } = &collected.metric("u").unwrap().data else {
            panic!()
        };
        assert_eq!(points[0].value, Number::I64(4), "up-down stays cumulative");
    }
}

#[test]
fn observable_instruments_run_their_callbacks_at_collection() {
    let provider = MeterProvider::new(MetricsConfig::default());
    let _gauge = provider
        .meter("test")
        .u64_observable_gauge("queue.size")
        .with_callback(|o| o.observe(7, &[KeyValue::new("q", "spans")]))
        .build();
    let collected = provider.collect();
    let Data::Gauge { points } = &collected.metric("queue.size").unwrap().data else {
        panic!()
    };
    assert_eq!(points[0].value, Number::I64(7));
    assert_eq!(points[0].attributes, [KeyValue::new("q", "spans")]);
}

#[test]
fn asking_twice_gives_the_same_instrument() {
    let provider = MeterProvider::new(MetricsConfig::default());
    provider.meter("test").u64_counter("c").build().add(1, &[]);
    provider.meter("test").u64_counter("c").build().add(1, &[]);
    let collected = provider.collect();
    assert_eq!(collected.scopes[0].metrics.len(), 1);
    let Data::Sum { points, .. } = &collected.metric("c").unwrap().data else {
        panic!()
    };
    assert_eq!(points[0].value, Number::I64(2));
}
