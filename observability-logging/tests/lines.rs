//! Every key of every format, asserted by parsing real output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::sync::{Arc, Mutex};

use observability_core::testing::SpanCapture;
use observability_core::tracing_opentelemetry::OpenTelemetrySpanExt;
use observability_logging::{Format, LogLayer, NonBlocking};
use opentelemetry::trace::TracerProvider as _;
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// A writer that keeps everything written, and counts writes.
#[derive(Clone, Default)]
struct Buffer {
    bytes: Arc<Mutex<Vec<u8>>>,
    writes: Arc<Mutex<usize>>,
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
    }
    fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

struct BufferWriter(Buffer);

impl io::Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.bytes.lock().unwrap().extend_from_slice(buf);
        *self.0.writes.lock().unwrap() += 1;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = BufferWriter;
    fn make_writer(&'a self) -> BufferWriter {
        BufferWriter(self.clone())
    }
}

/// Runs `f` under registry + OpenTelemetry layer + our layer.
fn with_logs<R>(format: Format, f: impl FnOnce() -> R) -> (Buffer, SpanCapture, R) {
    let buffer = Buffer::default();
    let capture = SpanCapture::new();
    let provider = capture.tracer_provider();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(
            LogLayer::builder()
                .format(format)
                .writer(buffer.clone())
                .service_name("checkout")
                .environment("staging")
                .build(),
        );
    let result = tracing::subscriber::with_default(subscriber, f);
    drop(provider);
    (buffer, capture, result)
}

fn is_rfc3339_micros_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z'
        && s.chars().filter(char::is_ascii_digit).count() == 20
}

#[test]
fn json_lines_carry_every_key_and_the_exported_ids() {
    let (buffer, capture, _) = with_logs(Format::Json, || {
        let _span = tracing::info_span!("handle_order", order.id = 7_i64).entered();
        tracing::info!(user_id = 42, amount = 12.5, paid = true, "order accepted");
    });
    let lines = buffer.json_lines();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    let span = capture.span("handle_order").unwrap();
    assert!(
        is_rfc3339_micros_utc(line["timestamp"].as_str().unwrap()),
        "{line}"
    );
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["message"], "order accepted");
    assert_eq!(line["target"], "lines");
    assert_eq!(line["user_id"], 42);
    assert_eq!(line["amount"], 12.5);
    assert_eq!(line["paid"], true);
    assert_eq!(line["order.id"], 7, "span fields are flattened in");
    assert_eq!(line["service.name"], "checkout");
    assert_eq!(line["deployment.environment.name"], "staging");
    assert_eq!(line["trace_id"], span.span_context.trace_id().to_string());
    assert_eq!(line["span_id"], span.span_context.span_id().to_string());
    assert_eq!(line["trace_flags"], "01");
    let trace_id = line["trace_id"].as_str().unwrap();
    assert!(
        trace_id.len() == 32
            && trace_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(line["span_id"].as_str().unwrap().len(), 16);
}

#[test]
fn a_span_continuing_a_remote_parent_logs_its_own_ids_in_the_remote_trace() {
    let (buffer, capture, _) = with_logs(Format::Json, || {
        let remote = opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            opentelemetry::trace::SpanId::from(0x00f067aa0ba902b7_u64),
            opentelemetry::trace::TraceFlags::SAMPLED,
            true,
            Default::default(),
        );
        use opentelemetry::trace::TraceContextExt;
        let span = tracing::info_span!("GET /orders/{id}");
        span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote))
            .unwrap();
        let _e = span.enter();
        tracing::info!("inside");
    });
    let line = &buffer.json_lines()[0];
    let span = capture.span("GET /orders/{id}").unwrap();
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(line["span_id"], span.span_context.span_id().to_string());
    assert_ne!(
        line["span_id"], "00f067aa0ba902b7",
        "the server span's id, not the caller's"
    );
}

#[test]
fn outside_any_span_there_are_no_ids() {
    let (buffer, _, _) = with_logs(Format::Json, || tracing::warn!("alone"));
    let line = &buffer.json_lines()[0];
    assert_eq!(line["level"], "WARN");
    assert!(line.get("trace_id").is_none() && line.get("span_id").is_none());
}

#[test]
fn span_fields_flatten_with_inner_and_event_winning() {
    let (buffer, _, _) = with_logs(Format::Json, || {
        let _outer =
            tracing::info_span!("outer", tenant = "acme", shared = "outer", depth = 1).entered();
        let inner = tracing::info_span!("inner", shared = "inner", depth = tracing::field::Empty);
        inner.record("depth", 2);
        let _inner = inner.entered();
        tracing::info!(depth = 3, "deep");
    });
    let text = buffer.text();
    assert_eq!(
        text.matches("\"depth\"").count(),
        1,
        "each key once: {text}"
    );
    let line = &buffer.json_lines()[0];
    assert_eq!(line["tenant"], "acme");
    assert_eq!(line["shared"], "inner");
    assert_eq!(line["depth"], 3);
}

#[derive(Debug)]
struct Outer(Inner);
#[derive(Debug)]
struct Inner;
impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("payment failed")
    }
}
impl std::fmt::Display for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
impl std::error::Error for Inner {}

#[test]
fn errors_keep_their_source_chain() {
    let (buffer, _, _) = with_logs(Format::Json, || {
        let error = Outer(Inner);
        tracing::error!(
            error = &error as &(dyn std::error::Error + 'static),
            "charge failed"
        );
    });
    assert_eq!(
        buffer.json_lines()[0]["error"],
        "payment failed: card declined"
    );
}

#[test]
fn ecs_names() {
    let (buffer, capture, _) = with_logs(Format::Ecs, || {
        let _s = tracing::info_span!("work").entered();
        tracing::info!(user_id = 1, "hello");
    });
    let line = &buffer.json_lines()[0];
    let span = capture.span("work").unwrap();
    assert!(is_rfc3339_micros_utc(line["@timestamp"].as_str().unwrap()));
    assert_eq!(line["log.level"], "info");
    assert_eq!(line["message"], "hello");
    assert_eq!(line["log.logger"], "lines");
    assert_eq!(line["trace.id"], span.span_context.trace_id().to_string());
    assert_eq!(line["span.id"], span.span_context.span_id().to_string());
    assert_eq!(line["service.name"], "checkout");
    assert_eq!(line["service.environment"], "staging");
    assert_eq!(line["ecs.version"], "8.11.0");
    assert_eq!(line["user_id"], 1);
    assert!(line.get("trace_id").is_none());
}

#[test]
fn logfmt_lets_a_plain_regex_find_the_trace() {
    let (buffer, capture, _) = with_logs(Format::Logfmt, || {
        let _s = tracing::info_span!("work").entered();
        tracing::info!(note = "two words", n = 5, "hello \"world\"");
    });
    let text = buffer.text();
    let span = capture.span("work").unwrap();
    let line = text.lines().next().unwrap();
    assert!(
        line.starts_with("timestamp=") && line.contains(" level=info "),
        "{line}"
    );
    assert!(line.contains(r#" msg="hello \"world\"""#), "{line}");
    assert!(
        line.contains(&format!(" trace_id={} ", span.span_context.trace_id())),
        "{line}"
    );
    assert!(
        line.contains(&format!(" span_id={} ", span.span_context.span_id())),
        "{line}"
    );
    assert!(line.contains(" trace_flags=01"), "{line}");
    assert!(
        line.contains(r#" note="two words""#) && line.contains(" n=5"),
        "{line}"
    );
    assert!(line.contains(" service.name=checkout"), "{line}");
}

#[test]
fn sensitive_fields_are_redacted() {
    let (buffer, _, _) = with_logs(Format::Json, || {
        let _s = tracing::info_span!("login", session_token = "abc").entered();
        tracing::info!(
            password = "hunter2",
            db_Password = "x",
            authorization = "Bearer t",
            api_key = 9,
            user = "ann",
            "login"
        );
    });
    let line = &buffer.json_lines()[0];
    for key in [
        "password",
        "db_Password",
        "authorization",
        "api_key",
        "session_token",
    ] {
        assert_eq!(line[key], "[REDACTED]", "{key}");
    }
    assert_eq!(line["user"], "ann");
    assert!(!buffer.text().contains("hunter2") && !buffer.text().contains("Bearer"));

    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::registry().with(
        LogLayer::builder()
            .writer(buffer.clone())
            .redact_fields(["card"])
            .build(),
    );
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(card_number = "4111", password = "kept", "x");
    });
    let line = &buffer.json_lines()[0];
    assert_eq!(line["card_number"], "[REDACTED]");
    assert_eq!(line["password"], "kept", "the list was replaced");
}

#[test]
fn any_string_escapes_into_valid_json() {
    let nasty =
        "quote \" backslash \\ newline \n tab \t cr \r nul \0 bell \u{7} del \u{7f} emoji 🦀 é";
    let (buffer, _, _) = with_logs(Format::Json, || {
        tracing::info!(nasty, debug = ?nasty, bytes = &b"ok \xff\xfe end"[..], "msg {}", nasty);
    });
    let text = buffer.text();
    assert_eq!(text.lines().count(), 1, "one line, never split");
    let line = &buffer.json_lines()[0];
    assert_eq!(line["nasty"], nasty);
    assert_eq!(line["message"], format!("msg {nasty}"));
    assert_eq!(line["debug"], format!("{nasty:?}"));
    assert_eq!(
        line["bytes"], "ok \u{fffd}\u{fffd} end",
        "non-UTF-8 lossily"
    );
}

#[test]
fn lines_from_many_threads_are_never_interleaved() {
    let buffer = Buffer::default();
    let subscriber =
        tracing_subscriber::registry().with(LogLayer::builder().writer(buffer.clone()).build());
    let dispatch = tracing::Dispatch::new(subscriber);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..500 {
                        tracing::info!(thread = t, i, padding = "x".repeat(200), "line");
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let lines = buffer.json_lines();
    assert_eq!(lines.len(), 4000);
    assert_eq!(*buffer.writes.lock().unwrap(), 4000, "one write per line");
}

#[test]
fn non_blocking_delivers_and_counts_what_it_drops() {
    let buffer = Buffer::default();
    let (writer, guard) = NonBlocking::new(buffer.make_writer(), 10_000);
    let subscriber =
        tracing_subscriber::registry().with(LogLayer::builder().writer(writer.clone()).build());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..100 {
            tracing::info!(i, "queued");
        }
    });
    drop(guard);
    assert_eq!(buffer.json_lines().len(), 100);
    assert_eq!(writer.dropped(), 0);

    /// A writer that blocks until told to go on.
    struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);
    impl io::Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cv) = &*self.0;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let (writer, guard) = NonBlocking::new(Gate(Arc::clone(&gate)), 4);
    let subscriber =
        tracing_subscriber::registry().with(LogLayer::builder().writer(writer.clone()).build());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..50 {
            tracing::info!(i, "burst");
        }
    });
    assert!(writer.dropped() >= 40, "dropped {}", writer.dropped());
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    drop(guard);
}
