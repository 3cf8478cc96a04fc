//! The layers' spans started without the tracer, under the globals `init()`
//! installs (`observability_propagation::starter`): the server and client
//! spans a request makes, what the handler adds to its span past the
//! limits, and what the handler sees and sends, are what they are when the
//! layers ask the SDK's tracer (the starter cleared), for a sampled caller,
//! a caller with the random flag and a `tracestate`, a request that starts
//! a trace, one with two `traceparent` headers (the propagator's own path)
//! and one that fails. One test: the globals are per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use observability_core::Exporter;
use observability_core::opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt};
use observability_core::opentelemetry::{Context, InstrumentationScope, KeyValue};
use observability_core::propagation::starter::{self, Describe, SpanStarter, Started};
use observability_core::testing::SpanCapture;
use observability_http::{ClientLayer, ServerLayer};
use opentelemetry_sdk::trace::SpanData;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

/// The starter `init()` registered, counting the spans it starts.
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn SpanStarter>,
    started: AtomicUsize,
}

impl SpanStarter for Counted {
    fn start(
        &self,
        scope: &InstrumentationScope,
        kind: SpanKind,
        context: &Context,
        parent_span: Option<&SpanContext>,
        describe: Describe<'_>,
    ) -> Option<Started> {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.inner
            .start(scope, kind, context, parent_span, describe)
    }
}

/// A request through `layer` to a handler that adds to its span and calls
/// a downstream service through `client`; what the handler saw and sent.
async fn request(
    layer: ServerLayer,
    client: ClientLayer,
    headers: &[(&str, &str)],
    path: &str,
) -> String {
    let app = Router::new()
        .route(
            "/{outcome}",
            get(
                move |axum::extract::Path(outcome): axum::extract::Path<String>| async move {
                    let sent = common::outgoing(client, "http://downstream:8080/items?id=7").await;
                    let cx = Context::current();
                    let span = cx.span();
                    for i in 0..4 {
                        span.set_attribute(KeyValue::new(format!("handler.{i}"), i));
                    }
                    for i in 0..3 {
                        span.add_event(
                            format!("step {i}"),
                            vec![KeyValue::new("a", i), KeyValue::new("b", i)],
                        );
                    }
                    let sc = span.span_context();
                    let seen = format!(
                        "recording={} sampled={} flags={:?} state={} sent={}",
                        span.is_recording(),
                        sc.is_sampled(),
                        sc.trace_flags(),
                        sc.trace_state().header(),
                        common::text(&sent, "traceparent"),
                    );
                    let status = if outcome == "fail" {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    (status, seen)
                },
            ),
        )
        .layer(layer);
    common::get(app, path, headers).await
}

/// A span with what differs between two runs (its own ids, the times)
/// replaced by what must hold of them.
fn comparable(span: &SpanData, server: Option<SpanId>) -> String {
    let sc = &span.span_context;
    let trace = sc.trace_id().to_string();
    let parent = match span.parent_span_id {
        id if id == SpanId::INVALID => "none".to_owned(),
        id if id.to_string() == CALLER => "caller".to_owned(),
        id if Some(id) == server => "the server span".to_owned(),
        id => format!("unexpected {id}"),
    };
    format!(
        "trace={} valid={} flags={:?} state={} parent={parent} parent_remote={} kind={:?} \
         name={} ordered={} attributes={:?} dropped={} events={:?} events_dropped={} \
         status={:?} scope={}",
        if trace == TRACE { "caller's" } else { "new" },
        sc.is_valid(),
        sc.trace_flags(),
        sc.trace_state().header(),
        span.parent_span_is_remote,
        span.span_kind,
        span.name,
        span.start_time <= span.end_time,
        span.attributes,
        span.dropped_attributes_count,
        span.events
            .iter()
            .map(|e| (&e.name, &e.attributes, e.dropped_attributes_count))
            .collect::<Vec<_>>(),
        span.events.dropped_count,
        span.status,
        span.instrumentation_scope.name(),
    )
}

/// Each case's answer and spans, client span first.
async fn run(capture: &SpanCapture, cases: &[(Vec<(&str, &str)>, &str)]) -> Vec<Vec<String>> {
    // New layers resolve the tracer, and the starter, at their first request.
    let (layer, client) = (ServerLayer::new(), ClientLayer::new());
    let mut out = Vec::new();
    for (headers, path) in cases {
        capture.clear();
        let seen = request(layer.clone(), client.clone(), headers, path).await;
        let spans = capture.spans();
        let server = spans.iter().find(|s| s.span_kind == SpanKind::Server);
        let server_id = server.map(|s| s.span_context.span_id());
        let mut row = vec![seen.replace(
            &server_id.map(|id| id.to_string()).unwrap_or_default(),
            "{server}",
        )];
        for span in &spans {
            row.push(comparable(span, server_id));
        }
        if let [client, server] = spans.as_slice() {
            let client_id = client.span_context.span_id().to_string();
            row[0] = row[0].replace(&client_id, "{client}");
            let trace = server.span_context.trace_id().to_string();
            row[0] = row[0].replace(&trace, "{trace}");
        }
        out.push(row);
    }
    out
}

#[tokio::test]
async fn spans_started_without_the_tracer_are_the_spans_the_sdk_makes() {
    let capture = SpanCapture::new();
    let _guard = observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .env_lookup(|name| match name {
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT" => Some("8".to_owned()),
            "OTEL_SPAN_EVENT_COUNT_LIMIT" => Some("2".to_owned()),
            "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT" => Some("1".to_owned()),
            _ => None,
        })
        .exporter(Exporter::None)
        .span_capture(&capture)
        .try_init()
        .unwrap();
    let counted = Arc::new(Counted {
        inner: starter::global_span_starter().expect("init() registers it"),
        started: AtomicUsize::new(0),
    });
    starter::set_global_span_starter(Some(counted.clone()));
    let sampled = format!("00-{TRACE}-{CALLER}-01");
    let random = format!("00-{TRACE}-{CALLER}-03");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("traceparent", &sampled)], "/ok"),
        (
            vec![("traceparent", &random), ("tracestate", "a=1,b=2")],
            "/ok",
        ),
        (vec![], "/ok"),
        (
            vec![("traceparent", &sampled), ("traceparent", &random)],
            "/ok",
        ),
        (vec![("traceparent", &sampled)], "/fail"),
    ];
    let direct = run(&capture, &cases).await;
    assert_eq!(
        counted.started.load(Ordering::Relaxed),
        2 * cases.len(),
        "a server and a client span each"
    );
    starter::set_global_span_starter(None);
    let through_sdk = run(&capture, &cases).await;
    for ((case, direct), sdk) in cases.iter().zip(&direct).zip(&through_sdk) {
        assert_eq!(direct, sdk, "{case:?}");
    }
    assert_eq!(counted.started.load(Ordering::Relaxed), 2 * cases.len());

    // What the comparison stands on.
    let first = &direct[0];
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(
        first[0].starts_with("recording=true sampled=true flags=TraceFlags(1)"),
        "{first:?}"
    );
    assert!(
        first[0].ends_with("sent=00-{trace}-{client}-01"),
        "{first:?}"
    );
    assert!(
        first[1].contains("kind=Client") && first[1].contains("parent=the server span"),
        "{first:?}"
    );
    assert!(
        first[2].contains("kind=Server") && first[2].contains("parent=caller parent_remote=true"),
        "{first:?}"
    );
    assert!(first[2].contains("trace=caller's"), "{first:?}");
    assert!(first[2].contains("events_dropped=1"), "{first:?}");
    assert!(
        first[2].contains("] dropped=2 "),
        "past the 8 attributes: {first:?}"
    );
    assert!(
        direct[1][0].contains("flags=TraceFlags(3) state=a=1,b=2"),
        "{direct:?}"
    );
    assert!(
        direct[2][2].contains("trace=new") && direct[2][2].contains("parent=none"),
        "{direct:?}"
    );
    assert!(direct[4][2].contains("status=Error"), "{direct:?}");
}
