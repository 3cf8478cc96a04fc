//! Fuzzes the header parsers with arbitrary bytes: `traceparent`,
//! `tracestate` and `baggage`, alone, repeated and combined.
//!
//! ```sh
//! cargo install cargo-fuzz
//! cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run headers -- -max_total_time=60
//! ```
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use observability_core::opentelemetry::propagation::{Extractor, TextMapPropagator};
use observability_core::propagation::{BaggagePropagator, TraceContextPropagator};

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
});
