//! observability-core against a real OTLP receiver, over gRPC and
//! HTTP/protobuf. Settings come through `Builder::env_lookup`, so these tests
//! share no global state and run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use observability_core::opentelemetry::propagation::TextMapPropagator;
use observability_core::opentelemetry::trace::TraceContextExt;
use observability_core::{OpenTelemetrySpanExt, TelemetryGuard};
use observability_tests::{Behaviour, OtlpReceiver, ReceivedSpan, Transport};

const WAIT: Duration = Duration::from_secs(10);

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

/// A builder that reads `vars` as its environment, its log lines going to
/// the test's output.
fn builder(vars: &[(&str, &str)]) -> observability_core::Builder {
    observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .env_lookup(env_of(vars))
}

fn telemetry(vars: &[(&str, &str)]) -> TelemetryGuard {
    builder(vars).build().expect("telemetry builds")
}

/// Runs `f` with the guard's subscriber as the thread's default.
fn traced<R>(guard: &TelemetryGuard, f: impl FnOnce() -> R) -> R {
    tracing::dispatcher::with_default(guard.dispatch(), f)
}

/// A root span with one child (with attributes and an event), as a handler would make.
fn make_order_trace() {
    let root = tracing::info_span!("handle_order", order.id = 42_i64, customer = "c-7");
    let _root = root.enter();
    let child = tracing::info_span!("load_order", db.system.name = "postgresql");
    let _child = child.enter();
    tracing::info!("routine line: logged, not copied into the span");
    tracing::warn!(rows = 1_i64, "loaded");
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.span.name == name)
        .unwrap_or_else(|| panic!("no span named {name} among {:?}", names(spans)))
}

fn names(spans: &[ReceivedSpan]) -> Vec<&str> {
    spans.iter().map(|s| s.span.name.as_str()).collect()
}

fn assert_order_trace(spans: &[ReceivedSpan]) {
    let root = by_name(spans, "handle_order");
    let child = by_name(spans, "load_order");
    assert_eq!(root.trace_id().len(), 32);
    assert_eq!(child.trace_id(), root.trace_id(), "one trace");
    assert_eq!(
        child.parent_span_id(),
        root.span_id(),
        "the child's parent is the root"
    );
    assert_eq!(root.parent_span_id(), "", "the root has no parent");
    assert_eq!(root.attr("order.id").as_deref(), Some("42"));
    assert_eq!(root.attr("customer").as_deref(), Some("c-7"));
    assert_eq!(child.attr("db.system.name").as_deref(), Some("postgresql"));
    assert!(
        child.span.events.iter().any(|e| e.name == "loaded"),
        "a warning is a span event"
    );
    assert_eq!(child.span.events.len(), 1, "INFO lines are not, by default");
}

#[test]
fn grpc_export_carries_resource_headers_and_parentage() {
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.grpc_endpoint();
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "X-Scope-OrgID=tenant-7,authorization=Bearer%20s3cret",
        ),
        ("OTEL_SERVICE_NAME", "checkout"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=ignored,team=payments%20core",
        ),
        ("SERVICE_VERSION", "1.4.2"),
        ("ENV", "staging"),
        ("K8S_POD_NAME", "checkout-5f7"),
    ]);
    traced(&guard, make_order_trace);
    let stats = guard.shutdown_blocking().expect("shutdown in time");
    assert_eq!((stats.exported, stats.dropped()), (2, 0));

    let spans = receiver.wait_for_spans(2, WAIT);
    assert_eq!(spans.len(), 2, "{:?}", names(&spans));
    assert_order_trace(&spans);
    let root = by_name(&spans, "handle_order");
    assert_eq!(root.transport, Transport::Grpc);
    assert_eq!(
        root.resource_attr("service.name").as_deref(),
        Some("checkout")
    );
    assert_eq!(root.resource_attr("team").as_deref(), Some("payments core"));
    assert_eq!(
        root.resource_attr("service.version").as_deref(),
        Some("1.4.2")
    );
    assert_eq!(
        root.resource_attr("deployment.environment.name").as_deref(),
        Some("staging")
    );
    assert_eq!(
        root.resource_attr("k8s.pod.name").as_deref(),
        Some("checkout-5f7")
    );
    assert_eq!(
        root.resource_attr("telemetry.sdk.language").as_deref(),
        Some("rust")
    );
    assert!(root.resource_attr("host.name").is_some());
    assert!(root.resource_attr("process.pid").is_some());
    let request = &receiver.trace_requests()[0];
    assert_eq!(
        request.headers.get("x-scope-orgid").map(String::as_str),
        Some("tenant-7")
    );
    assert_eq!(
        request.headers.get("authorization").map(String::as_str),
        Some("Bearer s3cret")
    );
    // The OTLP exporter specification's User-Agent: exporter, language,
    // version.
    let agent = request
        .headers
        .get("user-agent")
        .cloned()
        .unwrap_or_default();
    assert!(
        agent.starts_with(&format!(
            "OTel-OTLP-Exporter-Rust/{} (observability-core)",
            env!("CARGO_PKG_VERSION")
        )),
        "{agent}"
    );
}

#[test]
fn exporting_to_the_other_protocol_says_which_to_set() {
    // OTLP/HTTP to the gRPC port: the error names the endpoint and the fix.
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.grpc_endpoint();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let writer = lines.clone();
    let guard = observability_core::builder()
        .env_lookup(env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
        ]))
        .log_writer(move || LineWriter(writer.clone()))
        .build()
        .unwrap();
    traced(&guard, make_order_trace);
    let text = || String::from_utf8_lossy(&lines.lock().unwrap()).into_owned();
    let deadline = Instant::now() + WAIT;
    while !text().contains("span export failed") && Instant::now() < deadline {
        guard.force_flush().ok();
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = guard.shutdown_blocking();
    let text = text();
    assert!(
        text.contains(&endpoint) && text.contains("set OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
        "{text}"
    );
}

/// A log writer into a shared buffer.
struct LineWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn http_export_appends_v1_traces_to_the_generic_endpoint_and_gzips() {
    let receiver = OtlpReceiver::start();
    let endpoint = format!("{}/", receiver.http_endpoint());
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "x-scope-orgid=tenant-9",
        ),
        ("OTEL_SERVICE_NAME", "web"),
    ]);
    traced(&guard, make_order_trace);
    drop(guard);

    let spans = receiver.wait_for_spans(2, WAIT);
    assert_order_trace(&spans);
    assert_eq!(by_name(&spans, "load_order").transport, Transport::Http);
    let request = &receiver.trace_requests()[0];
    assert_eq!(request.path, "/v1/traces");
    assert_eq!(
        request.headers.get("content-encoding").map(String::as_str),
        Some("gzip")
    );
    assert_eq!(
        request.headers.get("content-type").map(String::as_str),
        Some("application/x-protobuf")
    );
    assert_eq!(
        request.headers.get("x-scope-orgid").map(String::as_str),
        Some("tenant-9")
    );
}

#[test]
fn grpc_export_with_gzip() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
    ]);
    traced(&guard, make_order_trace);
    drop(guard);
    assert_order_trace(&receiver.wait_for_spans(2, WAIT));
    let request = &receiver.trace_requests()[0];
    assert_eq!(request.transport, Transport::Grpc);
    assert_eq!(
        request.headers.get("grpc-encoding").map(String::as_str),
        Some("gzip")
    );
}

#[test]
fn the_signal_specific_endpoint_is_used_as_given() {
    let receiver = OtlpReceiver::start();
    let endpoint = format!("{}/custom/traces", receiver.http_endpoint());
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9/ignored"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
    ]);
    traced(&guard, make_order_trace);
    drop(guard);
    receiver.wait_for_spans(2, WAIT);
    assert_eq!(receiver.trace_requests()[0].path, "/custom/traces");
}

#[test]
fn code_settings_win_over_the_environment() {
    let receiver = OtlpReceiver::start();
    let guard = builder(&[
        ("OTEL_SERVICE_NAME", "from-env"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("ENV", "dev"),
    ])
    .service_name("from-code")
    .environment("qa")
    .resource_attribute(observability_core::KeyValue::new("region", "eu-1"))
    .otlp_protocol(observability_core::Protocol::Grpc)
    .otlp_endpoint(receiver.grpc_endpoint())
    .otlp_header("x-tenant", "code")
    .build()
    .unwrap();
    traced(&guard, make_order_trace);
    drop(guard);
    let spans = receiver.wait_for_spans(2, WAIT);
    let root = by_name(&spans, "handle_order");
    assert_eq!(
        root.resource_attr("service.name").as_deref(),
        Some("from-code")
    );
    assert_eq!(
        root.resource_attr("deployment.environment.name").as_deref(),
        Some("qa")
    );
    assert_eq!(root.resource_attr("region").as_deref(), Some("eu-1"));
    assert_eq!(root.transport, Transport::Grpc);
    assert_eq!(
        receiver.trace_requests()[0]
            .headers
            .get("x-tenant")
            .map(String::as_str),
        Some("code")
    );
}

/// Extracts `traceparent` with the guard's propagator and runs a server-like
/// span under that remote parent.
fn continue_remote(guard: &TelemetryGuard, traceparent: &str) {
    let mut headers = HashMap::new();
    headers.insert("traceparent".to_owned(), traceparent.to_owned());
    let cx = guard.propagator().extract(&headers);
    traced(guard, || {
        let span = tracing::info_span!("GET /orders/{id}");
        span.set_parent(cx).unwrap();
        let _e = span.enter();
        let _child = tracing::info_span!("load_order").entered();
    });
}

const REMOTE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const REMOTE_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn a_sampled_remote_parent_is_honoured_even_at_ratio_zero() {
    let receiver = OtlpReceiver::start();
    let guard = builder(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint())])
        .sample_ratio(0.0)
        .build()
        .unwrap();
    continue_remote(&guard, &format!("00-{REMOTE_TRACE}-{REMOTE_SPAN}-01"));
    // A new root at ratio 0 is not sampled.
    traced(&guard, make_order_trace);
    let stats = guard.shutdown_blocking().unwrap();
    assert_eq!(stats.exported, 2);

    let spans = receiver.wait_for_spans(2, WAIT);
    assert_eq!(spans.len(), 2, "{:?}", names(&spans));
    let server = by_name(&spans, "GET /orders/{id}");
    assert_eq!(
        server.trace_id(),
        REMOTE_TRACE,
        "the caller's trace continues"
    );
    assert_eq!(
        server.parent_span_id(),
        REMOTE_SPAN,
        "the caller's span is the parent"
    );
    assert_eq!(
        by_name(&spans, "load_order").parent_span_id(),
        server.span_id()
    );
}

#[test]
fn an_unsampled_remote_parent_is_not_recorded() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint())]);
    continue_remote(&guard, &format!("00-{REMOTE_TRACE}-{REMOTE_SPAN}-00"));
    let stats = guard.shutdown_blocking().unwrap();
    assert_eq!(stats.exported, 0);
    assert!(receiver.spans().is_empty());
}

#[test]
fn a_malformed_traceparent_starts_a_new_sampled_trace() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint())]);
    continue_remote(
        &guard,
        &format!("00-{}-{REMOTE_SPAN}-01", REMOTE_TRACE.to_uppercase()),
    );
    drop(guard);
    let spans = receiver.wait_for_spans(2, WAIT);
    let server = by_name(&spans, "GET /orders/{id}");
    assert_ne!(
        server.trace_id(),
        REMOTE_TRACE.to_uppercase().to_lowercase()
    );
    assert_eq!(server.parent_span_id(), "", "a new root");
}

#[test]
fn parent_based_ratio_sampling_decides_by_trace_id() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint()),
        ("OTEL_TRACES_SAMPLER", "ParentBased_TraceIdRatio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "4096"),
    ]);
    traced(&guard, || {
        for _ in 0..2000 {
            make_order_trace();
        }
    });
    let stats = guard.shutdown_blocking().unwrap();
    let spans = receiver.spans();
    assert_eq!(stats.exported as usize, spans.len());
    let roots = spans
        .iter()
        .filter(|s| s.span.name == "handle_order")
        .count();
    // 2000 traces at 25 %: 500 expected; 6 standard deviations either side.
    assert!(
        (380..=620).contains(&roots),
        "{roots} of 2000 traces sampled"
    );
    // Children follow their root's decision: whole traces, never halves.
    assert_eq!(spans.len(), roots * 2);
}

#[test]
fn rust_log_filters_logs_never_traces() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint()),
        ("RUST_LOG", "error"),
    ]);
    traced(&guard, make_order_trace);
    drop(guard);
    let spans = receiver.wait_for_spans(2, WAIT);
    assert_order_trace(&spans);
}

#[test]
fn spans_finished_before_shutdown_are_all_delivered() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "8192"),
    ]);
    traced(&guard, || {
        for i in 0..3000_i64 {
            let _s = tracing::info_span!("work", i).entered();
        }
    });
    let stats = guard.shutdown_blocking().unwrap();
    assert_eq!((stats.exported, stats.dropped()), (3000, 0));
    assert_eq!(receiver.spans().len(), 3000, "none lost");
}

fn closed_port_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[test]
fn a_dead_collector_costs_counted_spans_and_never_a_hung_shutdown() {
    for protocol in ["grpc", "http/protobuf"] {
        let guard = builder(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &closed_port_endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ])
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
        let started = Instant::now();
        traced(&guard, || {
            for _ in 0..10 {
                make_order_trace();
            }
        });
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{protocol}: recording spans never waits for the collector"
        );
        let started = Instant::now();
        let stats = guard
            .shutdown_blocking()
            .expect("connection refused fails fast");
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "{protocol}: shutdown took {took:?}"
        );
        assert_eq!(stats.exported, 0, "{protocol}");
        assert_eq!(
            stats.dropped(),
            20,
            "{protocol}: every span is counted: {stats:?}"
        );
    }
}

#[test]
fn a_slow_collector_cannot_stretch_shutdown_past_its_deadline() {
    let receiver = OtlpReceiver::start();
    receiver.set_behaviour(Behaviour::Delay(Duration::from_secs(20)));
    let guard = builder(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint())])
        .shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    traced(&guard, || {
        for _ in 0..5 {
            make_order_trace();
        }
    });
    let started = Instant::now();
    let result = guard.shutdown_blocking();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    let stats = match result {
        Ok(stats) | Err(observability_core::Error::Timeout { stats, .. }) => stats,
        Err(other) => panic!("{other}"),
    };
    assert_eq!(stats.exported, 0);
    assert_eq!(
        stats.dropped(),
        10,
        "delivered + dropped = created: {stats:?}"
    );
}

#[test]
fn a_full_queue_drops_and_counts_and_delivered_plus_dropped_is_created() {
    let receiver = OtlpReceiver::start();
    receiver.set_behaviour(Behaviour::Delay(Duration::from_millis(300)));
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "50"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "25"),
    ]);
    traced(&guard, || {
        for i in 0..1000_i64 {
            let _s = tracing::info_span!("burst", i).entered();
        }
    });
    assert!(guard.stats().dropped_queue_full > 0, "{:?}", guard.stats());
    assert_eq!(guard.dropped_spans(), guard.stats().dropped());
    let stats = guard.shutdown_blocking().unwrap();
    assert_eq!(stats.exported + stats.dropped(), 1000, "{stats:?}");
    assert_eq!(receiver.spans().len() as u64, stats.exported);
}

#[test]
fn export_recovers_when_the_collector_comes_back() {
    for protocol in ["http/protobuf", "grpc"] {
        let receiver = OtlpReceiver::start();
        receiver.set_behaviour(Behaviour::Unavailable);
        let endpoint = receiver.endpoint(protocol);
        let guard = builder(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ])
        .build()
        .unwrap();
        traced(&guard, || {
            let _s = tracing::info_span!("while_down").entered();
        });
        let deadline = Instant::now() + WAIT;
        while guard.stats().dropped_export_failed == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let stats = guard.stats();
        assert_eq!(stats.dropped_export_failed, 1, "{protocol}");
        // 503 / UNAVAILABLE after the retries: refused by the collector.
        assert_eq!(stats.failures.rejected, 1, "{protocol}: {stats:?}");
        assert_eq!(stats.failures.total(), 1, "{protocol}: {stats:?}");
        assert!(receiver.refused() >= 1, "{protocol}");
        receiver.set_behaviour(Behaviour::Accept);
        traced(&guard, || {
            let _s = tracing::info_span!("after_recovery").entered();
        });
        assert!(
            receiver.wait_for_span("after_recovery", WAIT).is_some(),
            "{protocol}"
        );
        let stats = guard.shutdown_blocking().unwrap();
        assert_eq!((stats.exported, stats.dropped()), (1, 1), "{protocol}");
    }
}

#[test]
fn error_status_and_span_kind_arrive() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint())]);
    traced(&guard, || {
        let span = tracing::info_span!("charge_card", otel.kind = "client");
        span.set_status(observability_core::Status::error("card declined"));
        let _e = span.enter();
    });
    drop(guard);
    let span = receiver.wait_for_span("charge_card", WAIT).unwrap();
    let status = span.span.status.unwrap();
    assert_eq!(status.code, 2, "STATUS_CODE_ERROR");
    assert_eq!(status.message, "card declined");
    assert_eq!(span.span.kind, 3, "SPAN_KIND_CLIENT");
}

#[test]
fn attribute_value_length_limit_truncates() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint()),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "5"),
    ]);
    traced(&guard, || {
        let _s = tracing::info_span!("long", note = "héllo world").entered();
    });
    drop(guard);
    let span = receiver.wait_for_span("long", WAIT).unwrap();
    assert_eq!(span.attr("note").as_deref(), Some("héllo"));
}

#[test]
fn exporter_none_records_ids_but_sends_nothing() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint()),
        ("OTEL_TRACES_EXPORTER", "none"),
    ]);
    let trace_id = traced(&guard, || {
        let span = tracing::info_span!("quiet");
        let _e = span.enter();
        span.context().span().span_context().trace_id()
    });
    assert_ne!(
        trace_id,
        observability_core::TraceId::INVALID,
        "ids still exist for logs and propagation"
    );
    drop(guard);
    std::thread::sleep(Duration::from_millis(200));
    assert!(receiver.trace_requests().is_empty());
}

#[test]
fn span_capture_records_for_tests() {
    let capture = observability_core::testing::SpanCapture::new();
    let guard = builder(&[("OTEL_TRACES_EXPORTER", "none")])
        .span_capture(&capture)
        .build()
        .unwrap();
    traced(&guard, make_order_trace);
    let child = capture.span("load_order").unwrap();
    let root = capture.span("handle_order").unwrap();
    assert_eq!(child.parent_span_id, root.span_context.span_id());
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_inside_a_current_thread_runtime_delivers() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    traced(&guard, make_order_trace);
    tokio::task::yield_now().await;
    drop(guard); // a blocking drop inside async code on a current-thread runtime
    assert_order_trace(&receiver.wait_for_spans(2, WAIT));
}

#[tokio::test(flavor = "current_thread")]
async fn async_shutdown_on_a_current_thread_runtime() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint())]);
    traced(&guard, make_order_trace);
    let stats = guard.shutdown().await.unwrap();
    assert_eq!(stats.exported, 2);
    assert_order_trace(&receiver.spans());
}

#[tokio::test(flavor = "current_thread")]
async fn async_shutdown_with_a_dead_collector_ends_at_its_deadline() {
    let receiver = OtlpReceiver::start();
    receiver.set_behaviour(Behaviour::Delay(Duration::from_secs(20)));
    let guard = builder(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint())])
        .shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    traced(&guard, make_order_trace);
    let started = Instant::now();
    let result = guard.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The export is cut at the deadline: either the worker reports it in time
    // (the batch counted as failed) or the deadline passes first.
    let stats = match result {
        Ok(stats) | Err(observability_core::Error::Timeout { stats, .. }) => stats,
        Err(other) => panic!("{other}"),
    };
    assert_eq!((stats.exported, stats.dropped()), (0, 2), "{stats:?}");
}

#[test]
fn force_flush_exports_without_shutting_down() {
    let receiver = OtlpReceiver::start();
    let guard = telemetry(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint())]);
    traced(&guard, make_order_trace);
    guard.force_flush().unwrap();
    assert_eq!(
        receiver.spans().len(),
        2,
        "flushed before force_flush returned"
    );
    traced(&guard, make_order_trace);
    drop(guard);
    assert_eq!(receiver.wait_for_spans(4, WAIT).len(), 4);
}

#[test]
fn invalid_code_settings_are_errors() {
    let err = observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .sample_ratio(1.5)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("sample_ratio"), "{err}");
    let err = observability_core::builder()
        .log_writer(tracing_subscriber::fmt::TestWriter::new())
        .otlp_endpoint("collector:4317")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("otlp_endpoint"), "{err}");
}

#[test]
fn secrets_are_scrubbed_before_they_leave_the_process() {
    let receiver = OtlpReceiver::start();
    let guard = builder(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint()),
        ("OBSERVABILITY_SCRUB_PATTERNS", "email,card"),
        ("OBSERVABILITY_SCRUB_HASH", "db.statement"),
    ])
    .scrub_attribute("user.ssn", observability_core::ScrubAction::Redact)
    .build()
    .unwrap();
    traced(&guard, || {
        let span = tracing::info_span!(
            "checkout",
            http.request.header.authorization = "Bearer s3cret",
            http.request.header.cookie = "sid=abc",
            db.statement = "SELECT * FROM cards WHERE owner = 'ann'",
            user.ssn = "123-45-6789",
            note = "mail ann@example.com, card 4111 1111 1111 1111, order 1234567890123",
        );
        let _e = span.enter();
        tracing::warn!(contact = "bob@example.org", "payment retry");
    });
    drop(guard);
    let span = receiver.wait_for_span("checkout", WAIT).unwrap();
    assert_eq!(
        span.attr("http.request.header.authorization"),
        None,
        "deleted by default"
    );
    assert_eq!(
        span.attr("http.request.header.cookie"),
        None,
        "deleted by default"
    );
    let hashed = span.attr("db.statement").unwrap();
    assert_eq!(hashed.len(), 64);
    assert!(hashed.bytes().all(|b| b.is_ascii_hexdigit()) && !hashed.contains("SELECT"));
    assert_eq!(span.attr("user.ssn").as_deref(), Some("[REDACTED]"));
    assert_eq!(
        span.attr("note").as_deref(),
        Some("mail [EMAIL], card [CARD], order 1234567890123")
    );
    let event = span
        .span
        .events
        .iter()
        .find(|e| e.name == "payment retry")
        .unwrap();
    let contact = event
        .attributes
        .iter()
        .find(|kv| kv.key == "contact")
        .unwrap();
    assert_eq!(
        observability_tests::value_to_string(contact.value.as_ref().unwrap()),
        "[EMAIL]"
    );
}

#[test]
fn a_transient_refusal_is_retried_and_nothing_is_lost() {
    for protocol in ["http/protobuf", "grpc"] {
        let receiver = OtlpReceiver::start();
        receiver.set_behaviour(Behaviour::UnavailableTimes(1));
        let endpoint = receiver.endpoint(protocol);
        let guard = telemetry(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ]);
        traced(&guard, make_order_trace);
        let stats = guard.shutdown_blocking().unwrap();
        assert_eq!(
            (stats.exported, stats.dropped()),
            (2, 0),
            "{protocol}: {stats:?}"
        );
        assert_eq!(
            receiver.refused(),
            1,
            "{protocol}: the first attempt was refused"
        );
        assert_order_trace(&receiver.spans());
    }
}

#[test]
fn text_lines_inside_a_trace_lead_with_its_trace_id() {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let writer = lines.clone();
    let guard = observability_core::builder()
        .env_lookup(env_of(&[
            ("OTEL_LOG_FORMAT", "text"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ]))
        .log_writer(move || LineWriter(writer.clone()))
        .build()
        .unwrap();
    let trace_id = traced(&guard, || {
        tracing::info!("before any span");
        let span = tracing::info_span!("handle_order");
        let _entered = span.enter();
        tracing::info!(order.id = 7, "inside the trace");
        span.context().span().span_context().trace_id().to_string()
    });
    let text = String::from_utf8_lossy(&lines.lock().unwrap()).into_owned();
    let inside = text
        .lines()
        .find(|l| l.contains("inside the trace"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(inside.starts_with(&format!("{trace_id} ")), "{inside}");
    let before = text
        .lines()
        .find(|l| l.contains("before any span"))
        .unwrap();
    assert!(!before.contains(&trace_id), "{before}");
}
