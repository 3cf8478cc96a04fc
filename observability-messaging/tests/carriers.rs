//! The transport-neutral carriers and the generic send/process wrappers,
//! with an in-process queue. One test: it installs the global tracer
//! provider the wrappers use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use observability_core::testing::SpanCapture;
use observability_messaging::{
    Consumer, ParentMode, Producer, extract_json, extract_map, has_parent, inject_json, process,
    send,
};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};

#[tokio::test(flavor = "current_thread")]
async fn carriers_and_the_generic_wrappers() {
    let capture = SpanCapture::new();
    opentelemetry::global::set_tracer_provider(capture.tracer_provider());
    opentelemetry::global::set_text_map_propagator(
        observability_core::propagation::TraceContextPropagator::new(),
    );

    // An empty map, garbage, or a payload without the field: no parent, no error.
    assert!(!has_parent(&extract_map(&HashMap::new())));
    let garbage: HashMap<String, String> = [("traceparent".to_owned(), "zz".to_owned())].into();
    assert!(!has_parent(&extract_map(&garbage)));
    assert!(!has_parent(&extract_json(&serde_json::json!({"order": 7}))));
    assert!(!has_parent(&extract_json(
        &serde_json::json!({"traceContext": 5})
    )));
    assert!(!has_parent(&extract_json(&serde_json::json!(
        "not an object"
    ))));

    // The JSON payload field, as other producers write it.
    let payload = serde_json::json!({
        "order": 7,
        "traceContext": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "k=v"}
    });
    let cx = extract_json(&payload);
    assert_eq!(
        cx.span().span_context().trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(cx.span().span_context().trace_state().header(), "k=v");
    let mut out = serde_json::json!({"order": 8});
    inject_json(&cx, &mut out);
    assert_eq!(
        out["traceContext"]["traceparent"],
        payload["traceContext"]["traceparent"]
    );
    assert_eq!(out["order"], 8, "the payload is kept");

    // send -> in-process queue -> process.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(HashMap<String, String>, String)>(4);
    send("memory", "orders", HashMap::new(), |headers| async {
        tx.send((headers, "order 7".into()))
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    let (headers, body) = rx.recv().await.unwrap();
    assert!(headers.contains_key("traceparent"));
    let result: Result<(), String> = process(
        "memory",
        "orders",
        &headers,
        Some("m-1"),
        ParentMode::Parent,
        || async {
            assert_eq!(body, "order 7");
            Err("worker failed".to_owned())
        },
    )
    .await;
    assert!(result.is_err());
    let send_span = capture.span("send orders").unwrap();
    let process_span = capture.span("process orders").unwrap();
    assert_eq!(send_span.span_kind, SpanKind::Producer);
    assert_eq!(process_span.span_kind, SpanKind::Consumer);
    assert_eq!(
        process_span.parent_span_id,
        send_span.span_context.span_id()
    );
    assert_eq!(
        process_span.span_context.trace_id(),
        send_span.span_context.trace_id()
    );
    assert_eq!(process_span.status, Status::error("worker failed"));
    let attr = |k: &str| {
        process_span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr("messaging.system").as_deref(), Some("memory"));
    assert_eq!(attr("messaging.message.id").as_deref(), Some("m-1"));

    // Link mode: its own trace, linked to the producer.
    capture.clear();
    process(
        "memory",
        "orders",
        &headers,
        None,
        ParentMode::Link,
        || async { Ok::<_, String>(()) },
    )
    .await
    .unwrap();
    let linked = capture.span("process orders").unwrap();
    assert_ne!(
        linked.span_context.trace_id(),
        send_span.span_context.trace_id()
    );
    assert_eq!(linked.links.links.len(), 1);
    assert_eq!(
        linked.links.links[0].span_context.span_id(),
        send_span.span_context.span_id()
    );

    // A provider of its own (another service in the process): the spans go
    // there, not to the global provider, and still make one trace.
    capture.clear();
    let own = SpanCapture::new();
    let provider = own.tracer_provider();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<HashMap<String, String>>(1);
    Producer::new("memory", "jobs")
        .tracer_provider(&provider)
        .send(HashMap::new(), |headers| async move {
            tx.send(headers).await.map_err(|e| e.to_string())
        })
        .await
        .unwrap();
    let headers = rx.recv().await.unwrap();
    Consumer::new("memory", "jobs")
        .tracer_provider(&provider)
        .process(&headers, Some("m-2"), || async { Ok::<_, String>(()) })
        .await
        .unwrap();
    let sent = own
        .span("send jobs")
        .expect("the producer span, in its own provider");
    let processed = own
        .span("process jobs")
        .expect("the consumer span, in its own provider");
    assert_eq!(processed.parent_span_id, sent.span_context.span_id());
    assert!(
        capture.span("send jobs").is_none(),
        "not in the global provider"
    );
    assert!(capture.span("process jobs").is_none());
}
