//! B3 (single and multiple headers), Jaeger, X-Ray and OT against an
//! independent implementation — opentelemetry-python's propagators, run by
//! `scripts/propagators-interop.py` — and through the HTTP layers: a context
//! Python writes is extracted with the same trace id, parent and sampling
//! decision; what we write Python reads back the same way; an incoming
//! request in each format is continued by the server span, and the outgoing
//! call carries both W3C and that format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::{Request, Response};
use observability_core::TelemetryGuard;
use observability_core::opentelemetry::propagation::{
    TextMapCompositePropagator, TextMapPropagator,
};
use observability_core::opentelemetry::trace::{
    SpanContext, TraceContextExt, TraceFlags, TraceState,
};
use observability_core::propagation::{
    B3Encoding, B3Propagator, JaegerPropagator, OtTracePropagator, TraceContextPropagator,
    XrayPropagator,
};
use observability_core::testing::SpanCapture;
use observability_http::{ClientLayer, ServerLayer};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

const FORMATS: [&str; 5] = ["b3", "b3multi", "jaeger", "xray", "ottrace"];

fn propagator(format: &str) -> Box<dyn TextMapPropagator + Send + Sync> {
    match format {
        "b3" => Box::new(B3Propagator::new(B3Encoding::SingleHeader)),
        "b3multi" => Box::new(B3Propagator::new(B3Encoding::MultipleHeaders)),
        "jaeger" => Box::new(JaegerPropagator::new()),
        "xray" => Box::new(XrayPropagator::new()),
        _ => Box::new(OtTracePropagator::new()),
    }
}

/// Runs the Python side; fails with how to install it when it cannot.
fn python(mode: &str, input: Option<&Value>) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/propagators-interop.py"
    );
    let mut child = Command::new("python3")
        .args([script, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    if let Some(input) = input {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}\nthe Python propagators are missing: run the tests through scripts/test.sh, which installs them",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The trace id as the format carries it (OT keeps 64 bits).
fn carried_trace(format: &str, trace_id: &str) -> String {
    if format == "ottrace" {
        format!("{}{}", "0".repeat(16), &trace_id[16..])
    } else {
        trace_id.to_owned()
    }
}

#[test]
fn contexts_python_writes_are_read_the_same() {
    let cases = python("inject", None);
    for case in cases.as_array().unwrap() {
        let format = case["format"].as_str().unwrap();
        // As HTTP carries them: names without case.
        let headers: HashMap<String, String> =
            serde_json::from_value::<HashMap<String, String>>(case["headers"].clone())
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
        let cx = propagator(format).extract(&headers);
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid(), "{format}: {headers:?}");
        let trace_id = case["trace_id"].as_str().unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            carried_trace(format, trace_id),
            "{format}"
        );
        assert_eq!(
            sc.span_id().to_string(),
            case["span_id"].as_str().unwrap(),
            "{format}"
        );
        assert_eq!(
            sc.is_sampled(),
            case["sampled"].as_bool().unwrap(),
            "{format}"
        );
        assert!(sc.is_remote());
    }
}

#[test]
fn what_we_write_python_reads_the_same() {
    let contexts = [
        ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true),
        (
            "0af7651916cd43dd8448eb211c80319c",
            "b7ad6b7169203331",
            false,
        ),
    ];
    let mut cases = Vec::new();
    for format in FORMATS {
        for (trace, span, sampled) in contexts {
            let sc = SpanContext::new(
                u128::from_str_radix(trace, 16).unwrap().into(),
                u64::from_str_radix(span, 16).unwrap().into(),
                if sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                false,
                TraceState::NONE,
            );
            let cx = observability_core::Context::new().with_remote_span_context(sc);
            let mut headers: HashMap<String, String> = HashMap::new();
            propagator(format).inject_context(&cx, &mut headers);
            cases.push(
                json!({"format": format, "headers": headers, "want": [trace, span, sampled]}),
            );
        }
    }
    let read = python("extract", Some(&Value::Array(cases.clone())));
    for (case, got) in cases.iter().zip(read.as_array().unwrap()) {
        let format = case["format"].as_str().unwrap();
        let want = &case["want"];
        assert_eq!(got["valid"], true, "{format}: {case}");
        assert_eq!(
            got["trace_id"].as_str().unwrap(),
            carried_trace(format, want[0].as_str().unwrap()),
            "{format}"
        );
        assert_eq!(got["span_id"], want[1], "{format}");
        assert_eq!(got["sampled"], want[2], "{format}");
    }
}

/// Headers the downstream service received.
type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

fn telemetry(capture: &SpanCapture) -> TelemetryGuard {
    observability_core::builder()
        .env_lookup(|_| None)
        .exporter(observability_core::Exporter::None)
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .span_capture(capture)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn each_format_is_continued_through_the_layers_and_sent_on_with_w3c() {
    let capture = SpanCapture::new();
    let guard = telemetry(&capture);
    let provider = guard.tracer_provider().unwrap().clone();
    for case in python("inject", None).as_array().unwrap() {
        let format = case["format"].as_str().unwrap();
        // `OTEL_PROPAGATORS=tracecontext,{format}`.
        observability_core::opentelemetry::global::set_text_map_propagator(
            TextMapCompositePropagator::new(vec![
                Box::new(TraceContextPropagator::new()),
                propagator(format),
            ]),
        );
        capture.clear();
        let seen: Seen = Arc::default();
        let downstream = {
            let seen = Arc::clone(&seen);
            tower::service_fn(move |request: Request<Body>| {
                let headers = request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                    .collect();
                seen.lock().unwrap().push(headers);
                async { Ok::<_, Infallible>(Response::new(Body::empty())) }
            })
        };
        let client = ClientLayer::builder()
            .tracer_provider(&provider)
            .build()
            .layer(downstream);
        let handler = tower::service_fn(move |_request: Request<Body>| {
            let client = client.clone();
            async move {
                let request = Request::get("http://inventory/items/7")
                    .body(Body::empty())
                    .unwrap();
                let _ = client.oneshot(request).await;
                Ok::<_, Infallible>(Response::new(Body::empty()))
            }
        });
        let server = ServerLayer::builder()
            .tracer_provider(&provider)
            .build()
            .layer(handler);
        let mut request = Request::get("/orders").body(Body::empty()).unwrap();
        for (name, value) in case["headers"].as_object().unwrap() {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.as_str().unwrap().parse().unwrap(),
            );
        }
        let _ = server.oneshot(request).await.unwrap();

        let trace_id = carried_trace(format, case["trace_id"].as_str().unwrap());
        let sampled = case["sampled"].as_bool().unwrap();
        let spans = capture.spans();
        if sampled {
            let server_span = spans
                .iter()
                .find(|s| s.span_kind == observability_core::opentelemetry::trace::SpanKind::Server)
                .unwrap_or_else(|| panic!("{format}: no server span"));
            assert_eq!(
                server_span.span_context.trace_id().to_string(),
                trace_id,
                "{format}"
            );
            assert_eq!(
                server_span.parent_span_id.to_string(),
                case["span_id"].as_str().unwrap(),
                "{format}: the caller's span is the parent"
            );
        } else {
            assert!(spans.is_empty(), "{format}: the caller's decision is kept");
        }
        // The outgoing call carries both W3C and the caller's format, with
        // the caller's trace.
        let sent = seen.lock().unwrap().pop().unwrap();
        let traceparent = sent
            .get("traceparent")
            .unwrap_or_else(|| panic!("{format}: {sent:?}"));
        assert!(traceparent.contains(&trace_id), "{format}: {traceparent}");
        assert!(
            traceparent.ends_with(if sampled { "-01" } else { "-00" }),
            "{format}: {traceparent}"
        );
        let mut back: HashMap<String, String> = sent.clone();
        back.remove("traceparent");
        let again = propagator(format).extract(&back);
        assert_eq!(
            again.span().span_context().trace_id().to_string(),
            carried_trace(format, &trace_id),
            "{format}: {sent:?}"
        );
        assert_eq!(
            again.span().span_context().is_sampled(),
            sampled,
            "{format}"
        );
    }
}
