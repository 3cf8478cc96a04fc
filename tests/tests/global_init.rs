//! `init` with the real process environment (set and restored by a scoped
//! helper) and the globals it installs. One test: globals are per process.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use std::collections::HashMap;
use std::time::Duration;

use observability_core::opentelemetry::baggage::BaggageExt;
use observability_core::opentelemetry::propagation::Extractor;
use observability_core::opentelemetry::trace::TraceContextExt;
use observability_core::{Error, OpenTelemetrySpanExt};
use observability_tests::OtlpReceiver;

/// Sets variables for its lifetime and restores the previous values.
struct ScopedEnv(Vec<(String, Option<String>)>);

impl ScopedEnv {
    fn set(vars: &[(&str, &str)]) -> Self {
        let saved = vars
            .iter()
            .map(|(k, v)| {
                let old = std::env::var(k).ok();
                // SAFETY: this test binary has one test and sets variables
                // before any other thread of its own reads them.
                unsafe { std::env::set_var(k, v) };
                ((*k).to_owned(), old)
            })
            .collect();
        Self(saved)
    }
}

impl Drop for ScopedEnv {
    fn drop(&mut self) {
        for (k, old) in self.0.drain(..) {
            // SAFETY: as in `set`.
            unsafe {
                match old {
                    Some(v) => std::env::set_var(&k, v),
                    None => std::env::remove_var(&k),
                }
            }
        }
    }
}

/// Headers with repeated names, as HTTP allows.
struct Headers(Vec<(&'static str, String)>);

impl Extractor for Headers {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let all: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        (!all.is_empty()).then_some(all)
    }
}

fn extract(headers: Headers) -> observability_core::Context {
    observability_core::opentelemetry::global::get_text_map_propagator(|p| p.extract(&headers))
}

const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[test]
fn init_reads_the_process_environment_and_installs_the_globals() {
    let receiver = OtlpReceiver::start();
    let _env = ScopedEnv::set(&[
        ("OTEL_SERVICE_NAME", "billing"),
        // The specification: OTEL_SERVICE_NAME wins over service.name here.
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=wrong,owner=team%20a",
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
        // Quiet: the log output is not what this test looks at.
        ("RUST_LOG", "off"),
    ]);
    let guard = observability_core::try_init().expect("first init succeeds");
    assert!(matches!(
        observability_core::try_init(),
        Err(Error::AlreadyInitialized)
    ));

    // The global propagator is the strict one: two traceparents restart the trace.
    let twice = extract(Headers(vec![
        ("traceparent", TP.into()),
        ("traceparent", TP.into()),
    ]));
    assert!(!twice.span().span_context().is_valid());
    let cx = extract(Headers(vec![
        ("traceparent", TP.into()),
        ("tracestate", "a=1".into()),
        ("tracestate", "b=2".into()),
        ("baggage", "user=alice".into()),
    ]));
    assert_eq!(cx.span().span_context().trace_state().header(), "a=1,b=2");
    assert_eq!(cx.baggage().get("user").map(|v| v.as_str()), Some("alice"));

    // The global subscriber bridges `tracing` spans.
    {
        let span = tracing::info_span!("invoice");
        span.set_parent(cx).unwrap();
        let _e = span.enter();
        tracing::warn!("a log line inside the span");
    }
    // The global tracer provider serves direct OpenTelemetry API users too.
    {
        use observability_core::opentelemetry::trace::{Tracer, TracerProvider};
        let tracer = observability_core::opentelemetry::global::tracer_provider().tracer("direct");
        tracer.in_span("direct-api", |_| {});
    }
    let stats = guard.shutdown_blocking().unwrap();
    assert_eq!(stats.exported, 2);

    let spans = receiver.wait_for_spans(2, Duration::from_secs(10));
    let invoice = spans
        .iter()
        .find(|s| s.span.name == "invoice")
        .expect("invoice span");
    assert_eq!(invoice.trace_id(), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(invoice.parent_span_id(), "b7ad6b7169203331");
    assert_eq!(
        invoice.resource_attr("service.name").as_deref(),
        Some("billing")
    );
    assert_eq!(invoice.resource_attr("owner").as_deref(), Some("team a"));
    let attrs: HashMap<_, _> = invoice
        .resource
        .iter()
        .map(|kv| (kv.key.as_str(), ()))
        .collect();
    assert!(attrs.contains_key("telemetry.sdk.version"));
    assert!(spans.iter().any(|s| s.span.name == "direct-api"));
}
