//! The layers' shortcut for spans the sampler drops unseen (`always_off`
//! here), under the globals `init()` installs: what a handler sees and
//! sends, and what its outgoing call through the client layer carries, is
//! what it is when the layers ask the SDK (the rule cleared), for a sampled
//! caller, a caller with the random flag, a `tracestate`, a request that
//! starts a trace and one with two `traceparent` headers; nothing records;
//! and, asked to, the response carries the handler's context back, with
//! either response body. One test: the globals are per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::Router;
use axum::routing::get;
use http::HeaderMap;
use observability_core::Exporter;
use observability_core::opentelemetry::Context;
use observability_core::opentelemetry::trace::TraceContextExt;
use observability_core::propagation::sampling;
use observability_core::testing::SpanCapture;
use observability_http::{ClientLayer, ServerLayer};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

/// What the handler saw: its trace id, span id, whether sampled, the
/// `traceparent` and `tracestate` it would send, and those its call
/// through `client` sent.
async fn seen(layer: ServerLayer, client: ClientLayer, headers: &[(&str, &str)]) -> Vec<String> {
    let app = Router::new()
        .route(
            "/",
            get(move || async move {
                let sent = common::outgoing(client, "http://downstream/").await;
                let cx = Context::current();
                let sc = cx.span().span_context().clone();
                let mut out = HeaderMap::new();
                observability_http::inject_context(&cx, &mut out);
                [
                    sc.trace_id().to_string(),
                    sc.span_id().to_string(),
                    sc.is_sampled().to_string(),
                    sc.is_remote().to_string(),
                    common::text(&out, "traceparent"),
                    common::text(&out, "tracestate"),
                    common::text(&sent, "traceparent"),
                    common::text(&sent, "tracestate"),
                ]
                .join(" ")
            }),
        )
        .layer(layer);
    common::get(app, "/", headers)
        .await
        .split(' ')
        .map(str::to_owned)
        .collect()
}

/// `seen` with the ids that are random (span ids, and the trace id of a new
/// trace) replaced by whether they are new (neither the caller's nor
/// invalid).
fn comparable(mut seen: Vec<String>) -> Vec<String> {
    let trace = seen[0].clone();
    if trace != TRACE {
        let fresh = trace != "00000000000000000000000000000000";
        seen[0] = format!("new trace id: {fresh}");
        seen[4] = seen[4].replace(&trace, "{new trace}");
    }
    let own = seen[1].clone();
    let fresh = own != CALLER && own != "0000000000000000";
    seen[1] = format!("new span id: {fresh}");
    // The client's span: its own id, sent as the parent.
    if trace != TRACE {
        seen[6] = seen[6].replace(&trace, "{new trace}");
    }
    let client = seen[6]
        .len()
        .checked_sub(19)
        .map(|at| seen[6][at..at + 16].to_owned());
    if let Some(client) = client {
        assert!(
            client != own && client != CALLER && client != "0000000000000000",
            "the client's own span: {seen:?}"
        );
        seen[6] = seen[6].replace(&client, "{client}");
    }
    if seen[4].len() == 55 {
        assert_eq!(&seen[4][36..52], own, "sent as the parent: {seen:?}");
        seen[4] = format!("{}-{}", &seen[4][..35], &seen[4][53..]);
    } else if let Some(rest) = seen[4].strip_prefix("00-{new trace}-") {
        assert_eq!(&rest[..16], own, "sent as the parent: {seen:?}");
        seen[4] = format!("00-{{new trace}}-{}", &rest[17..]);
    }
    seen
}

/// An app that answers with the span id its handler runs in.
fn own_span_id() -> Router {
    Router::new().route(
        "/",
        get(|| async {
            Context::current()
                .span()
                .span_context()
                .span_id()
                .to_string()
        }),
    )
}

#[tokio::test]
async fn requests_dropped_unseen_look_as_they_do_through_the_sdk() {
    let capture = SpanCapture::new();
    let guard = observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .env_lookup(|name| (name == "OTEL_TRACES_SAMPLER").then(|| "always_off".to_owned()))
        .exporter(Exporter::None)
        .span_capture(&capture)
        .try_init()
        .unwrap();
    let sampled = format!("00-{TRACE}-{CALLER}-01");
    let random = format!("00-{TRACE}-{CALLER}-03");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("traceparent", &sampled)],
        vec![("traceparent", &random), ("tracestate", "a=1,b=2")],
        vec![],
        vec![("traceparent", &sampled), ("traceparent", &random)],
    ];
    let shortcut = ServerLayer::new();
    let client = ClientLayer::new();
    let mut fast = Vec::new();
    for case in &cases {
        fast.push(comparable(
            seen(shortcut.clone(), client.clone(), case).await,
        ));
    }
    assert!(
        sampling::global_drop_rule().is_some(),
        "init() registers it"
    );
    // Asked to, the layer writes the context the handler ran in back to
    // the response, whatever the response body's type.
    let writing = || {
        ServerLayer::builder()
            .write_traceresponse(true)
            .write_server_timing(true)
            .build()
    };
    for app in [
        own_span_id().layer(writing()),
        own_span_id().layer(writing().for_axum()),
    ] {
        let (own, headers) = common::answer(app, "/", &[("traceparent", &sampled)]).await;
        assert_ne!(own, CALLER);
        let expected = format!("00-{TRACE}-{own}-00");
        assert_eq!(common::text(&headers, "traceresponse"), expected);
        assert_eq!(
            common::text(&headers, "server-timing"),
            format!("traceparent;desc=\"{expected}\"")
        );
    }
    sampling::set_global_drop_rule(None);
    // A new layer resolves its tracer, and the rule, at its first request.
    let through_sdk = ServerLayer::new();
    let client = ClientLayer::new();
    for (case, fast) in cases.iter().zip(&fast) {
        let slow = comparable(seen(through_sdk.clone(), client.clone(), case).await);
        assert_eq!(fast, &slow, "{case:?}");
    }
    assert_eq!(fast[0][0], TRACE);
    assert_eq!(fast[0][2], "false", "not sampled");
    assert_eq!(fast[0][3], "false", "the request's own span context");
    assert_eq!(fast[0][4], format!("00-{TRACE}-00"));
    assert_eq!(fast[1][4], format!("00-{TRACE}-02"), "random as received");
    assert_eq!(fast[1][5], "a=1,b=2");
    assert_eq!(fast[0][6], format!("00-{TRACE}-{{client}}-00"));
    assert_eq!(
        fast[1][6],
        format!("00-{TRACE}-{{client}}-02"),
        "random as received"
    );
    assert_eq!(fast[1][7], "a=1,b=2");
    assert_eq!(fast[2][6], "00-{new trace}-{client}-00");
    for root in [&fast[2], &fast[3]] {
        assert_eq!(root[0], "new trace id: true", "{root:?}");
        assert_eq!(root[4], "00-{new trace}-00", "{root:?}");
    }
    guard.force_flush().unwrap();
    assert!(capture.spans().is_empty(), "nothing records");
}
