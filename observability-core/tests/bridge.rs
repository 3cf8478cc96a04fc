//! `tracing` spans under the subscriber `init()` builds, read back from the
//! SDK: names, kinds and statuses from `otel.*` fields, typed attributes,
//! fields recorded later, span events and errors, nesting (under another
//! `tracing` span and under an OpenTelemetry context made current, as the
//! server layer does), links, `set_parent` and `context()`, and the
//! sampler's decisions (a dropped span's context, a span given a sampled
//! parent after it was dropped, ratio decisions by trace id).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use observability_core::opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use observability_core::opentelemetry::{Context, Value};
use observability_core::opentelemetry_sdk::trace::{
    Sampler, SamplingDecision, ShouldSample, SpanData,
};
use observability_core::testing::SpanCapture;
use observability_core::{Exporter, OpenTelemetrySpanExt, SetParentError, TelemetryGuard};

fn telemetry(ratio: f64, capture: &SpanCapture) -> TelemetryGuard {
    observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .env_lookup(|_| None)
        .exporter(Exporter::None)
        .sample_ratio(ratio)
        .span_capture(capture)
        .build()
        .unwrap()
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn remote(flags: TraceFlags) -> SpanContext {
    SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        flags,
        true,
        TraceState::default(),
    )
}

#[test]
fn fields_name_kind_status_events_and_nesting() {
    let capture = SpanCapture::new();
    let guard = telemetry(1.0, &capture);
    tracing::dispatcher::with_default(guard.dispatch(), || {
        let outer = tracing::info_span!(
            "outer",
            otel.name = "GET /orders/{id}",
            otel.kind = "server",
            order.id = 7_i64,
            big = u64::MAX,
            express = true,
            total = 19.5,
            customer = "c-42",
            debug = ?vec![1, 2],
            late = tracing::field::Empty,
        );
        let entered = outer.enter();
        outer.record("late", 5);
        let inner_cx = {
            let inner = tracing::info_span!("inner", otel.status_code = "error");
            let _i = inner.enter();
            tracing::warn!(attempt = 2, "retrying");
            Context::current()
        };
        tracing::error!("failed");
        drop(entered);
        // Under a context made current with the OpenTelemetry API.
        let _attached = outer.context().attach();
        tracing::info_span!("under_context").in_scope(|| {});
        assert_eq!(
            inner_cx.span().span_context().trace_id(),
            outer.context().span().span_context().trace_id(),
            "an entered span's context is current"
        );
    });
    let outer = capture
        .span("GET /orders/{id}")
        .expect("renamed by otel.name");
    assert_eq!(outer.span_kind, SpanKind::Server);
    assert_eq!(attr(&outer, "order.id"), Some(Value::I64(7)));
    assert_eq!(
        attr(&outer, "big"),
        Some(Value::from(u64::MAX.to_string())),
        "past i64, as text"
    );
    assert_eq!(attr(&outer, "express"), Some(Value::Bool(true)));
    assert_eq!(attr(&outer, "total"), Some(Value::F64(19.5)));
    assert_eq!(attr(&outer, "customer"), Some(Value::from("c-42")));
    assert_eq!(attr(&outer, "debug"), Some(Value::from("[1, 2]")));
    assert_eq!(attr(&outer, "late"), Some(Value::I64(5)), "recorded later");
    assert!(attr(&outer, "code.file.path").is_some());
    assert!(attr(&outer, "code.line.number").is_some());
    assert!(attr(&outer, "otel.name").is_none() && attr(&outer, "otel.kind").is_none());
    assert!(
        matches!(outer.status, Status::Error { .. }),
        "an ERROR event sets the status: {:?}",
        outer.status
    );
    assert!(outer.events.iter().any(|e| e.name == "failed"));

    let inner = capture.span("inner").unwrap();
    assert_eq!(inner.parent_span_id, outer.span_context.span_id());
    assert_eq!(inner.span_context.trace_id(), outer.span_context.trace_id());
    assert!(matches!(inner.status, Status::Error { .. }));
    let retry = inner.events.iter().find(|e| e.name == "retrying").unwrap();
    assert!(
        retry
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "attempt" && kv.value == Value::I64(2))
    );
    let under = capture.span("under_context").unwrap();
    assert_eq!(under.parent_span_id, outer.span_context.span_id());
}

#[test]
fn set_parent_links_and_context() {
    let capture = SpanCapture::new();
    let guard = telemetry(1.0, &capture);
    let producer_cx = tracing::dispatcher::with_default(guard.dispatch(), || {
        let producer = tracing::info_span!("producer");
        let producer_cx = producer.context().span().span_context().clone();
        drop(producer);
        let span = tracing::info_span!("process", message.id = "m-1");
        span.set_parent(Context::new().with_remote_span_context(remote(TraceFlags::SAMPLED)))
            .unwrap();
        span.add_link(producer_cx.clone());
        span.set_attribute("direct", 1_i64);
        span.add_event("checked", vec![]);
        span.in_scope(|| {
            let follower = tracing::info_span!("follower");
            follower.follows_from(&span);
        });
        assert_eq!(
            span.set_parent(Context::new()),
            Err(SetParentError::AlreadyStarted)
        );
        let trace = span.context().span().span_context().trace_id();
        assert_eq!(trace, remote(TraceFlags::SAMPLED).trace_id());
        producer_cx
    });
    let process = capture.span("process").unwrap();
    assert_eq!(
        process.parent_span_id,
        remote(TraceFlags::SAMPLED).span_id()
    );
    assert!(process.parent_span_is_remote);
    assert_eq!(attr(&process, "message.id"), Some(Value::from("m-1")));
    assert_eq!(attr(&process, "direct"), Some(Value::I64(1)));
    assert!(process.events.iter().any(|e| e.name == "checked"));
    assert_eq!(process.links.len(), 1);
    assert_eq!(process.links[0].span_context, producer_cx);
    let follower = capture.span("follower").unwrap();
    assert_eq!(follower.links[0].span_context, process.span_context);
    // A span of another subscriber.
    let other = tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        tracing::info_span!("elsewhere").set_parent(Context::new())
    });
    assert_eq!(other, Err(SetParentError::LayerNotFound));
}

#[test]
fn dropped_spans_keep_the_trace_and_a_new_parent_decides_again() {
    let capture = SpanCapture::new();
    let guard = telemetry(0.0, &capture);
    tracing::dispatcher::with_default(guard.dispatch(), || {
        // Under an unsampled caller: not recorded, the caller's trace.
        let _caller = Context::new()
            .with_remote_span_context(remote(TraceFlags::new(0x02)))
            .attach();
        let span = tracing::info_span!("dropped");
        let (cx, child_cx) = span.in_scope(|| {
            let child = tracing::info_span!("child");
            (Context::current(), child.context())
        });
        let sc = cx.span().span_context().clone();
        assert_eq!(sc.trace_id(), remote(TraceFlags::default()).trace_id());
        assert!(sc.is_valid() && !sc.is_sampled() && !sc.is_remote());
        assert_ne!(sc.span_id(), remote(TraceFlags::default()).span_id());
        assert_eq!(child_cx.span().span_context().trace_id(), sc.trace_id());
        drop(span);

        // Dropped when made (a root at ratio 0), then given a sampled
        // parent before it is entered: recorded, with its first fields.
        let rescued = tracing::info_span!("rescued", order.id = 9_i64);
        rescued
            .set_parent(Context::new().with_remote_span_context(remote(TraceFlags::SAMPLED)))
            .unwrap();
        rescued.in_scope(|| {});
    });
    let spans = capture.spans();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].name, "rescued");
    assert_eq!(attr(&spans[0], "order.id"), Some(Value::I64(9)));
}

/// The bridge decides first on a root's trace id and the SDK takes that
/// id over: every recorded root is one the ratio sampler keeps by its
/// trace id, about half of them at 0.5.
#[test]
fn ratio_decisions_follow_the_recorded_trace_ids() {
    let capture = SpanCapture::new();
    let guard = telemetry(0.5, &capture);
    tracing::dispatcher::with_default(guard.dispatch(), || {
        for _ in 0..2000 {
            tracing::info_span!("root").in_scope(|| {});
        }
    });
    let spans = capture.spans();
    assert!((800..=1200).contains(&spans.len()), "{}", spans.len());
    let ratio = Sampler::TraceIdRatioBased(0.5);
    for span in &spans {
        let decision = ratio
            .should_sample(
                None,
                span.span_context.trace_id(),
                "root",
                &SpanKind::Internal,
                &[],
                &[],
            )
            .decision;
        assert_eq!(decision, SamplingDecision::RecordAndSample);
    }
}

/// What `#[instrument(err)]` writes (an ERROR event whose first field is
/// `error`): an `exception` event and the span's error status, described.
#[test]
fn an_error_event_is_an_exception_and_the_status() {
    #[derive(Debug)]
    struct Declined;
    impl std::fmt::Display for Declined {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("payment declined")
        }
    }
    impl std::error::Error for Declined {}

    #[tracing::instrument(err)]
    fn charge_card() -> Result<(), Declined> {
        Err(Declined)
    }

    let capture = SpanCapture::new();
    let guard = telemetry(1.0, &capture);
    tracing::dispatcher::with_default(guard.dispatch(), || {
        let _ = charge_card();
    });
    let span = capture.span("charge_card").unwrap();
    assert_eq!(span.status, Status::error("payment declined"));
    let exception = span.events.iter().find(|e| e.name == "exception").unwrap();
    assert!(exception.attributes.iter().any(|kv| {
        kv.key.as_str() == "exception.message" && kv.value == Value::from("payment declined")
    }));
}
