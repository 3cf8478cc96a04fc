//! `OTEL_SDK_DISABLED=true`: no spans, no export thread, logging and
//! propagation still work. Its own test binary, so the thread check sees only
//! this test's threads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use observability_core::opentelemetry::propagation::TextMapPropagator;
use observability_core::opentelemetry::trace::TraceContextExt;
use observability_tests::OtlpReceiver;

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|n| n.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sdk_disabled_is_a_no_op_for_tracing_only() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.http_endpoint();
    let guard = observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .env_lookup(move |name| match name {
            "OTEL_SDK_DISABLED" => Some("TRUE".into()),
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            _ => None,
        })
        .build()
        .unwrap();
    assert!(guard.tracer_provider().is_none());
    if cfg!(target_os = "linux") {
        let names = thread_names();
        assert!(!names.is_empty());
        assert!(
            !names.iter().any(|n| n.starts_with("observability")),
            "no export thread: {names:?}"
        );
    }

    tracing::dispatcher::with_default(guard.dispatch(), || {
        assert!(
            tracing::enabled!(tracing::Level::INFO),
            "logging still works"
        );
        assert!(
            !tracing::enabled!(tracing::Level::DEBUG),
            "RUST_LOG default is info"
        );
        let _s = tracing::info_span!("not traced").entered();
    });

    // Propagation still passes the caller's context on.
    let mut headers = HashMap::new();
    headers.insert(
        "traceparent".to_owned(),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
    );
    let cx = guard.propagator().extract(&headers);
    assert!(cx.span().span_context().is_valid());

    assert_eq!(guard.stats(), observability_core::ExportStats::default());
    // Every public call works: a service that handles the results of
    // flushing and shutting down does not fail because telemetry is off.
    guard.force_flush().unwrap();
    assert_eq!(
        guard.shutdown_blocking().unwrap(),
        observability_core::ExportStats::default()
    );
    let disabled = || {
        observability_core::builder()
            .log_writer(tracing_subscriber::fmt::TestWriter::new())
            .env_lookup(|name| (name == "OTEL_SDK_DISABLED").then(|| "true".into()))
            .build()
            .unwrap()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stats = runtime.block_on(disabled().shutdown()).unwrap();
    assert_eq!(stats, observability_core::ExportStats::default());
    drop(disabled());
    std::thread::sleep(Duration::from_millis(200));
    assert!(receiver.trace_requests().is_empty());
}
