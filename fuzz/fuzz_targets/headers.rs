//! Fuzzes the header parsers with arbitrary bytes: `traceparent`,
//! `tracestate` and `baggage`, alone, repeated and combined, and the B3,
//! Jaeger, X-Ray and OT headers.
//!
//! ```sh
//! cargo install cargo-fuzz
//! cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run headers -- -max_total_time=60
//! ```
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use observability_core::opentelemetry::propagation::{Extractor, TextMapPropagator};
use observability_core::propagation::{
    B3Encoding, B3Propagator, BaggagePropagator, JaegerPropagator, OtTracePropagator,
    TraceContextPropagator, XrayPropagator,
};

/// Headers with repeated names, as HTTP allows.
struct Headers(Vec<(&'static str, String)>);

impl Extractor for Headers {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let all: Vec<&str> = self.0.iter().filter(|(k, _)| *k == key).map(|(_, v)| v.as_str()).collect();
        (!all.is_empty()).then_some(all)
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Split the input into up to four header values.
    let parts: Vec<String> = text.splitn(4, '\n').map(str::to_owned).collect();
    let names = ["traceparent", "tracestate", "baggage", "tracestate"];
    let headers = Headers(names.iter().copied().zip(parts.iter().cloned()).collect());
    let cx = TraceContextPropagator::new().extract(&headers);
    let cx = BaggagePropagator::new().extract_with_context(&cx, &headers);
    let mut out: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut out);
    BaggagePropagator::new().inject_context(&cx, &mut out);
    // Whatever was accepted must be accepted again, unchanged.
    let again = TraceContextPropagator::new().extract(&out);
    let mut out2: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&again, &mut out2);
    assert_eq!(out.get("traceparent"), out2.get("traceparent"));
    assert_eq!(out.get("tracestate"), out2.get("tracestate"));

    // The other formats: the same bytes under each of their headers.
    let others: [(&dyn TextMapPropagator, &[&'static str]); 5] = [
        (&B3Propagator::new(B3Encoding::SingleHeader), &["b3"]),
        (
            &B3Propagator::new(B3Encoding::MultipleHeaders),
            &["x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"],
        ),
        (&JaegerPropagator::new(), &["uber-trace-id", "uberctx-k"]),
        (&XrayPropagator::new(), &["x-amzn-trace-id"]),
        (&OtTracePropagator::new(), &["ot-tracer-traceid", "ot-tracer-spanid", "ot-tracer-sampled", "ot-baggage-k"]),
    ];
    for (propagator, names) in others {
        let headers = Headers(names.iter().copied().zip(parts.iter().cloned()).collect());
        let cx = propagator.extract(&headers);
        let mut out: HashMap<String, String> = HashMap::new();
        propagator.inject_context(&cx, &mut out);
        let again = propagator.extract(&out);
        let mut out2: HashMap<String, String> = HashMap::new();
        propagator.inject_context(&again, &mut out2);
        assert_eq!(out, out2, "what was accepted is accepted again, unchanged");
    }
});
