//! Test infrastructure for the observability crates: an OTLP receiver that
//! speaks the real wire protocols (gRPC and HTTP/protobuf, gzip or not),
//! built on `opentelemetry-proto`, keeping whole export requests so tests
//! can assert on what a collector would see.
//!
//! ```no_run
//! let receiver = observability_tests::OtlpReceiver::start();
//! // point an exporter at receiver.grpc_endpoint() or receiver.http_traces_endpoint()
//! let spans = receiver.wait_for_spans(3, std::time::Duration::from_secs(10));
//! assert_eq!(spans.len(), 3);
//! ```

// The receiver is test infrastructure: failing to start it is a test failure.
#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

pub use opentelemetry_proto::tonic as proto;

/// Which wire protocol carried a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    Http,
}

/// How the receiver answers exports (for fault tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Accept and keep every request.
    Accept,
    /// Refuse: gRPC `UNAVAILABLE`, HTTP 503. Nothing is kept.
    Unavailable,
    /// Accept and keep, but answer only after this long.
    Delay(Duration),
    /// Refuse the next this-many exports like [`Behaviour::Unavailable`],
    /// then accept.
    UnavailableTimes(u32),
    /// Refuse with HTTP 429 and `Retry-After` (gRPC: `RESOURCE_EXHAUSTED`).
    /// Nothing is kept.
    TooManyRequests {
        /// Seconds in the `Retry-After` header.
        retry_after_secs: u64,
    },
}

/// One export request as it arrived.
#[derive(Clone, Debug)]
pub struct Received<T> {
    /// The protocol.
    pub transport: Transport,
    /// The request path (HTTP) or gRPC method path.
    pub path: String,
    /// Request headers (gRPC metadata), names lowercase.
    pub headers: HashMap<String, String>,
    /// The decoded request.
    pub request: T,
}

/// A received span with its resource and scope.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    /// The span as sent.
    pub span: Span,
    /// Its resource's attributes.
    pub resource: Vec<KeyValue>,
    /// Its instrumentation scope's name.
    pub scope: String,
    /// How it arrived.
    pub transport: Transport,
}

impl ReceivedSpan {
    /// The trace id, as 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }
    /// The span id, as 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }
    /// The parent span id as hex, empty for a root span.
    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
    /// A span attribute, rendered as a string.
    pub fn attr(&self, key: &str) -> Option<String> {
        find(&self.span.attributes, key)
    }
    /// A resource attribute, rendered as a string.
    pub fn resource_attr(&self, key: &str) -> Option<String> {
        find(&self.resource, key)
    }
}

/// A received log record with its resource.
#[derive(Clone, Debug)]
pub struct ReceivedLog {
    /// The record as sent.
    pub record: LogRecord,
    /// Its resource's attributes.
    pub resource: Vec<KeyValue>,
}

impl ReceivedLog {
    /// The record's trace id as hex (empty outside a span).
    pub fn trace_id(&self) -> String {
        hex(&self.record.trace_id)
    }
    /// The record's span id as hex (empty outside a span).
    pub fn span_id(&self) -> String {
        hex(&self.record.span_id)
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Renders an OTLP value as a string (`true`, `42`, `text`).
pub fn value_to_string(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn find(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(value_to_string)
}

#[derive(Default)]
struct Store {
    traces: Vec<Received<ExportTraceServiceRequest>>,
    logs: Vec<Received<ExportLogsServiceRequest>>,
    metrics: Vec<Received<ExportMetricsServiceRequest>>,
    refused: usize,
    /// Spans decoded so far (also counted when requests are not kept).
    span_count: u64,
    /// Keep whole requests (tests) or only count spans (load benchmarks).
    keep: bool,
}

impl Store {
    fn add_traces(&mut self, received: Received<ExportTraceServiceRequest>) {
        self.span_count += count_spans(std::slice::from_ref(&received)) as u64;
        if self.keep {
            self.traces.push(received);
        }
    }
}

struct State {
    store: Mutex<Store>,
    changed: Condvar,
    behaviour: Mutex<Behaviour>,
    /// Exports being answered now, and the most there ever were at once.
    active: std::sync::atomic::AtomicUsize,
    most_active: std::sync::atomic::AtomicUsize,
}

/// Counts an export as being answered while it lives.
struct Active<'a>(&'a State);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl State {
    fn enter(&self) -> Active<'_> {
        use std::sync::atomic::Ordering;
        let now = self.active.fetch_add(1, Ordering::AcqRel) + 1;
        self.most_active.fetch_max(now, Ordering::AcqRel);
        Active(self)
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// The behaviour for this request (counting down `UnavailableTimes`).
    fn behaviour(&self) -> Behaviour {
        let mut current = self
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *current {
            Behaviour::UnavailableTimes(0) => {
                *current = Behaviour::Accept;
                Behaviour::Accept
            }
            Behaviour::UnavailableTimes(n) => {
                *current = Behaviour::UnavailableTimes(n - 1);
                Behaviour::Unavailable
            }
            other => other,
        }
    }
    fn keep(&self, f: impl FnOnce(&mut Store)) {
        f(&mut self.store());
        self.changed.notify_all();
    }
}

/// An OTLP receiver on 127.0.0.1, gRPC and HTTP on two ephemeral ports, run
/// on its own thread and runtime (so a test that blocks its own runtime
/// cannot starve it). Stops when dropped.
pub struct OtlpReceiver {
    grpc: SocketAddr,
    http: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpReceiver")
            .field("grpc", &self.grpc)
            .field("http", &self.http)
            .finish()
    }
}

#[derive(Clone)]
struct GrpcService(Arc<State>);

fn metadata_map(md: &tonic::metadata::MetadataMap) -> HashMap<String, String> {
    md.clone()
        .into_headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

impl GrpcService {
    async fn gate(&self) -> Result<(), tonic::Status> {
        match self.0.behaviour() {
            Behaviour::Accept => Ok(()),
            Behaviour::Delay(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Behaviour::Unavailable | Behaviour::UnavailableTimes(_) => {
                self.0.keep(|s| s.refused += 1);
                Err(tonic::Status::unavailable("receiver told to refuse"))
            }
            Behaviour::TooManyRequests { .. } => {
                self.0.keep(|s| s.refused += 1);
                Err(tonic::Status::resource_exhausted(
                    "receiver told to throttle",
                ))
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for GrpcService {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _active = self.0.enter();
        self.gate().await?;
        let headers = metadata_map(request.metadata());
        let request = request.into_inner();
        self.0.keep(|s| {
            s.add_traces(Received {
                transport: Transport::Grpc,
                path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export".into(),
                headers,
                request,
            })
        });
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// The gRPC trace service of a counting receiver: each request is decoded
/// as [`CountedTraces`] (walked down to its spans, their fields skipped)
/// instead of a whole `ExportTraceServiceRequest`.
#[derive(Clone)]
struct CountingTraceService(GrpcService);

impl tonic::server::NamedService for CountingTraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl tonic::server::UnaryService<CountedTraces> for CountingTraceService {
    type Response = ExportTraceServiceResponse;
    type Future = tonic::codegen::BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<CountedTraces>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move {
            let _active = service.0.enter();
            service.gate().await?;
            let spans = request.get_ref().spans();
            service.0.keep(|s| s.span_count += spans);
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: None,
            }))
        })
    }
}

impl<B> tonic::codegen::Service<tonic::codegen::http::Request<B>> for CountingTraceService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            if request.uri().path() != "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            {
                let status = tonic::Status::unimplemented("only Export is served");
                return Ok(status.into_http());
            }
            let codec =
                tonic_prost::ProstCodec::<ExportTraceServiceResponse, CountedTraces>::default();
            let mut grpc = tonic::server::Grpc::new(codec)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            Ok(grpc.unary(service, request).await)
        })
    }
}

/// Metric exports are kept whatever the receiver was told to do with
/// traces (the behaviours test the trace exporter).
#[tonic::async_trait]
impl MetricsService for GrpcService {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers = metadata_map(request.metadata());
        let request = request.into_inner();
        self.0.keep(|s| {
            s.metrics.push(Received {
                transport: Transport::Grpc,
                path: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export".into(),
                headers,
                request,
            })
        });
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcService {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let _active = self.0.enter();
        self.gate().await?;
        let headers = metadata_map(request.metadata());
        let request = request.into_inner();
        self.0.keep(|s| {
            s.logs.push(Received {
                transport: Transport::Grpc,
                path: "/opentelemetry.proto.collector.logs.v1.LogsService/Export".into(),
                headers,
                request,
            })
        });
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

async fn http_export(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if uri.path().ends_with("/v1/metrics") {
        return http_metrics(&state, uri, &headers, body);
    }
    let _active = state.enter();
    match state.behaviour() {
        Behaviour::Accept => {}
        Behaviour::Delay(d) => tokio::time::sleep(d).await,
        Behaviour::Unavailable | Behaviour::UnavailableTimes(_) => {
            state.keep(|s| s.refused += 1);
            return (StatusCode::SERVICE_UNAVAILABLE, "receiver told to refuse").into_response();
        }
        Behaviour::TooManyRequests { retry_after_secs } => {
            state.keep(|s| s.refused += 1);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                "receiver told to throttle",
            )
                .into_response();
        }
    }
    let Some(body) = gunzip_if_asked(&headers, body) else {
        return (StatusCode::BAD_REQUEST, "bad gzip body").into_response();
    };
    if !uri.path().ends_with("/v1/logs") && !state.store().keep {
        // Counting for a load benchmark: the request is walked down to its
        // spans and each span's fields are skipped, so that the receiver
        // takes as little as it can of the core it shares with the load
        // generator.
        let Ok(request) = CountedTraces::decode(body) else {
            return (StatusCode::BAD_REQUEST, "not an ExportTraceServiceRequest").into_response();
        };
        let spans = request.spans();
        state.keep(|s| s.span_count += spans);
        let reply = ExportTraceServiceResponse {
            partial_success: None,
        };
        return protobuf(reply.encode_to_vec());
    }
    let header_map = header_map(&headers);
    let path = uri.path().to_owned();
    if path.ends_with("/v1/logs") {
        let Ok(request) = ExportLogsServiceRequest::decode(body) else {
            return (StatusCode::BAD_REQUEST, "not an ExportLogsServiceRequest").into_response();
        };
        state.keep(|s| {
            s.logs.push(Received {
                transport: Transport::Http,
                path,
                headers: header_map,
                request,
            })
        });
        let reply = ExportLogsServiceResponse {
            partial_success: None,
        };
        return protobuf(reply.encode_to_vec());
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, "not an ExportTraceServiceRequest").into_response();
    };
    state.keep(|s| {
        s.add_traces(Received {
            transport: Transport::Http,
            path,
            headers: header_map,
            request,
        })
    });
    let reply = ExportTraceServiceResponse {
        partial_success: None,
    };
    protobuf(reply.encode_to_vec())
}

/// The body, gunzipped when `content-encoding` says gzip; `None` when it
/// does not unzip.
fn gunzip_if_asked(headers: &HeaderMap, body: Bytes) -> Option<Bytes> {
    if !headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"))
    {
        return Some(body);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut out)
        .ok()?;
    Some(Bytes::from(out))
}

fn header_map(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Keeps a metric export (whatever the receiver was told to do with
/// traces).
fn http_metrics(
    state: &State,
    uri: Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let Some(body) = gunzip_if_asked(headers, body) else {
        return (StatusCode::BAD_REQUEST, "bad gzip body").into_response();
    };
    let Ok(request) = ExportMetricsServiceRequest::decode(body) else {
        return (
            StatusCode::BAD_REQUEST,
            "not an ExportMetricsServiceRequest",
        )
            .into_response();
    };
    let headers = header_map(headers);
    state.keep(|s| {
        s.metrics.push(Received {
            transport: Transport::Http,
            path: uri.path().to_owned(),
            headers,
            request,
        })
    });
    protobuf(
        ExportMetricsServiceResponse {
            partial_success: None,
        }
        .encode_to_vec(),
    )
}

/// An `ExportTraceServiceRequest` as a counting receiver reads it: the
/// nesting down to the spans (`resource_spans` 1, `scope_spans` 2, `spans`
/// 2), whose own fields are checked against the wire format and skipped.
#[derive(Clone, PartialEq, Message)]
struct CountedTraces {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<CountedResourceSpans>,
}

#[derive(Clone, PartialEq, Message)]
struct CountedResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<CountedScopeSpans>,
}

#[derive(Clone, PartialEq, Message)]
struct CountedScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<SkippedSpan>,
}

/// A span whose fields are all skipped.
#[derive(Clone, PartialEq, Message)]
struct SkippedSpan {}

impl CountedTraces {
    fn spans(&self) -> u64 {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum()
    }
}

fn protobuf(body: Vec<u8>) -> axum::response::Response {
    ([("content-type", "application/x-protobuf")], body).into_response()
}

impl OtlpReceiver {
    /// Starts the receiver.
    ///
    /// # Panics
    ///
    /// When it cannot bind to 127.0.0.1 (a test cannot go on without it).
    pub fn start() -> Self {
        Self::start_with("127.0.0.1:0", "127.0.0.1:0", true, None)
    }

    /// Starts a receiver that speaks TLS on both listeners, with this
    /// certificate chain and key (PEM). Clients reach it as `https://`.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        let tls = Tls {
            cert: cert_pem.to_owned(),
            key: key_pem.to_owned(),
        };
        Self::start_with("127.0.0.1:0", "127.0.0.1:0", true, Some(tls))
    }

    /// Starts a receiver that decodes every request but keeps only the
    /// count of spans ([`span_count`](Self::span_count)), on the given
    /// addresses: for load benchmarks. Trace exports (gRPC and HTTP) are
    /// walked down to their spans only, each span's fields skipped.
    ///
    /// # Panics
    ///
    /// When it cannot bind.
    pub fn start_counting(grpc: &str, http: &str) -> Self {
        Self::start_with(grpc, http, false, None)
    }

    /// [`start_counting`](Self::start_counting), with Nagle's algorithm left
    /// on for the gRPC listener's connections, as tonic's server and other
    /// Rust-based receivers leave it: each small frame after the first
    /// waits for the exporter's acknowledgement.
    ///
    /// # Panics
    ///
    /// When it cannot bind.
    pub fn start_counting_with_nagle(grpc: &str, http: &str) -> Self {
        Self::start_with_nagle(grpc, http, false, None, true)
    }

    fn start_with(grpc: &str, http: &str, keep: bool, tls: Option<Tls>) -> Self {
        Self::start_with_nagle(grpc, http, keep, tls, false)
    }

    fn start_with_nagle(grpc: &str, http: &str, keep: bool, tls: Option<Tls>, nagle: bool) -> Self {
        if tls.is_some() {
            // tonic's TLS server takes the process-wide provider; a test
            // binary may have both ring and aws-lc-rs compiled in.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let (grpc, http) = (grpc.to_owned(), http.to_owned());
        let state = Arc::new(State {
            store: Mutex::new(Store {
                keep,
                ..Store::default()
            }),
            changed: Condvar::new(),
            active: Default::default(),
            most_active: Default::default(),
            behaviour: Mutex::new(Behaviour::Accept),
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the receiver's runtime starts");
                let mut stop_signal = stopped.clone();
                runtime.block_on(async move {
                    tokio::select! {
                        () = serve(thread_state, addr_tx, grpc, http, tls, nagle) => {}
                        _ = stop_signal.wait_for(|s| *s) => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("the receiver's thread starts");
        let (grpc, http) = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the OTLP receiver binds to 127.0.0.1");
        Self {
            grpc,
            http,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `https://localhost:<port>` of the gRPC listener, for a TLS receiver.
    pub fn grpc_tls_endpoint(&self) -> String {
        format!("https://localhost:{}", self.grpc.port())
    }

    /// `https://localhost:<port>` of the HTTP listener, for a TLS receiver.
    pub fn http_tls_endpoint(&self) -> String {
        format!("https://localhost:{}", self.http.port())
    }

    /// `http://127.0.0.1:<port>` of the gRPC listener.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// `http://127.0.0.1:<port>` of the HTTP listener (no path).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }

    /// `http://127.0.0.1:<port>/v1/traces`.
    pub fn http_traces_endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }

    /// The gRPC listener's address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// The HTTP listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The endpoint for an `OTEL_EXPORTER_OTLP_PROTOCOL` value: the gRPC
    /// listener's for `grpc`, the HTTP listener's otherwise.
    pub fn endpoint(&self, protocol: &str) -> String {
        if protocol == "grpc" {
            self.grpc_endpoint()
        } else {
            self.http_endpoint()
        }
    }

    /// The most exports (trace or log, either transport) the receiver was
    /// answering at one time.
    pub fn most_concurrent_exports(&self) -> usize {
        self.state
            .most_active
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Changes how the receiver answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self
            .state
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = behaviour;
    }

    /// Every trace export request received so far.
    pub fn trace_requests(&self) -> Vec<Received<ExportTraceServiceRequest>> {
        self.state.store().traces.clone()
    }

    /// Every log export request received so far.
    pub fn log_requests(&self) -> Vec<Received<ExportLogsServiceRequest>> {
        self.state.store().logs.clone()
    }

    /// Every metric export request received so far.
    pub fn metric_requests(&self) -> Vec<Received<ExportMetricsServiceRequest>> {
        self.state.store().metrics.clone()
    }

    /// Waits until a metric export has arrived, or `timeout` passes.
    pub fn wait_for_metrics(
        &self,
        timeout: Duration,
    ) -> Vec<Received<ExportMetricsServiceRequest>> {
        self.wait_until(timeout, |s| !s.metrics.is_empty());
        self.metric_requests()
    }

    /// Spans received so far (counted in both modes).
    pub fn span_count(&self) -> u64 {
        self.state.store().span_count
    }

    /// How many exports were refused under [`Behaviour::Unavailable`].
    pub fn refused(&self) -> usize {
        self.state.store().refused
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        flatten_spans(&self.state.store().traces)
    }

    /// Every log record received so far.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        let store = self.state.store();
        let mut out = Vec::new();
        for r in &store.logs {
            for rl in &r.request.resource_logs {
                let resource = rl
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.clone())
                    .unwrap_or_default();
                for sl in &rl.scope_logs {
                    for record in &sl.log_records {
                        out.push(ReceivedLog {
                            record: record.clone(),
                            resource: resource.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Waits until at least `n` spans have arrived, or `timeout` passes;
    /// returns what arrived either way.
    pub fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        self.wait_until(timeout, |s| s.span_count >= n as u64);
        self.spans()
    }

    /// Waits until at least `n` spans have been counted (either mode), or
    /// `timeout` passes; returns the count either way.
    pub fn wait_for_span_count(&self, n: u64, timeout: Duration) -> u64 {
        self.wait_until(timeout, |s| s.span_count >= n);
        self.span_count()
    }

    /// Waits until a span with this name has arrived, or `timeout` passes.
    pub fn wait_for_span(&self, name: &str, timeout: Duration) -> Option<ReceivedSpan> {
        self.wait_until(timeout, |s| {
            flatten_spans(&s.traces).iter().any(|x| x.span.name == name)
        });
        self.spans().into_iter().find(|s| s.span.name == name)
    }

    /// Waits until at least `n` log records have arrived, or `timeout` passes.
    pub fn wait_for_logs(&self, n: usize, timeout: Duration) -> Vec<ReceivedLog> {
        self.wait_until(timeout, |s| {
            s.logs
                .iter()
                .flat_map(|r| &r.request.resource_logs)
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum::<usize>()
                >= n
        });
        self.logs()
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&Store) -> bool) {
        let deadline = Instant::now() + timeout;
        let mut store = self.state.store();
        while !done(&store) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            store = self
                .state
                .changed
                .wait_timeout(store, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn count_spans(traces: &[Received<ExportTraceServiceRequest>]) -> usize {
    traces
        .iter()
        .flat_map(|r| &r.request.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

fn flatten_spans(traces: &[Received<ExportTraceServiceRequest>]) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for r in traces {
        for rs in &r.request.resource_spans {
            let resource = rs
                .resource
                .as_ref()
                .map(|r| r.attributes.clone())
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                let scope = ss
                    .scope
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                for span in &ss.spans {
                    out.push(ReceivedSpan {
                        span: span.clone(),
                        resource: resource.clone(),
                        scope: scope.clone(),
                        transport: r.transport,
                    });
                }
            }
        }
    }
    out
}

/// A certificate chain and key, PEM.
#[derive(Clone)]
struct Tls {
    cert: String,
    key: String,
}

fn rustls_config(tls: &Tls) -> Option<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(tls.cert.as_bytes())
        .collect::<Result<_, _>>()
        .ok()?;
    let key = PrivateKeyDer::from_pem_slice(tls.key.as_bytes()).ok()?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .ok()?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Some(Arc::new(config))
}

async fn serve(
    state: Arc<State>,
    addr_tx: std::sync::mpsc::Sender<(SocketAddr, SocketAddr)>,
    grpc: String,
    http: String,
    tls: Option<Tls>,
    nagle: bool,
) {
    let (Ok(grpc_listener), Ok(http_listener)) = (
        tokio::net::TcpListener::bind(grpc).await,
        tokio::net::TcpListener::bind(http).await,
    ) else {
        return;
    };
    let (Ok(grpc_addr), Ok(http_addr)) = (grpc_listener.local_addr(), http_listener.local_addr())
    else {
        return;
    };
    let _ = addr_tx.send((grpc_addr, http_addr));

    let service = GrpcService(Arc::clone(&state));
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        let identity = tonic::transport::Identity::from_pem(&tls.cert, &tls.key);
        match server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)) {
            Ok(with_tls) => server = with_tls,
            Err(_) => return,
        }
    }
    let keep = state.store().keep;
    let routes = if keep {
        server.add_service(
            TraceServiceServer::new(service.clone())
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
    } else {
        server.add_service(CountingTraceService(service.clone()))
    };
    let grpc = routes
        .add_service(
            MetricsServiceServer::new(service.clone())
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
        .add_service(
            LogsServiceServer::new(service)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
        // Small frames (window updates, the answer and its trailers) go out
        // at once, as from a collector (Go's sockets disable Nagle's
        // algorithm by default), unless Nagle is asked for.
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(!nagle)),
        );

    let app = axum::Router::new()
        .fallback(axum::routing::post(http_export))
        .with_state(state);
    let http = async move {
        match tls.as_ref().and_then(rustls_config) {
            None => {
                let _ = axum::serve(http_listener, app).await;
            }
            Some(config) => serve_https(http_listener, app, config).await,
        }
    };
    let _ = tokio::join!(grpc, http);
}

/// HTTP/1.1 and HTTP/2 over TLS, one task per connection.
async fn serve_https(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    config: Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    while let Ok((stream, _)) = listener.accept().await {
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
        });
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    fn span(n: u8) -> Span {
        Span {
            trace_id: vec![n; 16],
            span_id: vec![n; 8],
            name: format!("GET /orders/{n}"),
            attributes: vec![KeyValue {
                key: "http.request.method".to_owned(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("GET".to_owned())),
                }),
                ..KeyValue::default()
            }],
            ..Span::default()
        }
    }

    /// The counting decode finds exactly the spans the full decode finds,
    /// across resources and scopes, and refuses what is not protobuf.
    #[test]
    fn counted_decode_counts_every_span() {
        let scope = |spans: std::ops::Range<u8>| ScopeSpans {
            spans: spans.map(span).collect(),
            ..ScopeSpans::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource::default()),
                    scope_spans: vec![scope(0..3), scope(3..3), scope(3..10)],
                    schema_url: "s".to_owned(),
                },
                ResourceSpans {
                    resource: None,
                    scope_spans: vec![scope(10..12)],
                    schema_url: String::new(),
                },
            ],
        };
        let bytes = request.encode_to_vec();
        let full = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
        let received = Received {
            transport: Transport::Http,
            path: String::new(),
            headers: HashMap::new(),
            request: full,
        };
        assert_eq!(count_spans(std::slice::from_ref(&received)), 12);
        assert_eq!(CountedTraces::decode(&bytes[..]).unwrap().spans(), 12);
        assert_eq!(CountedTraces::decode(&[][..]).unwrap().spans(), 0);
        assert!(CountedTraces::decode(&[0x0a, 0x05, 0x12][..]).is_err());
    }
}

/// Log lines written to memory, for tests that read what was logged: give
/// a clone to `Builder::log_writer`.
#[derive(Clone, Debug, Default)]
pub struct MemoryLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl MemoryLog {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }

    /// Every line written so far, each parsed as JSON.
    ///
    /// # Panics
    ///
    /// On a line that is not JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The first JSON line whose `message` is `message`.
    ///
    /// # Panics
    ///
    /// When there is none.
    pub fn line_with(&self, message: &str) -> serde_json::Value {
        let lines = self.json_lines();
        lines
            .iter()
            .find(|l| l["message"] == message)
            .cloned()
            .unwrap_or_else(|| panic!("no line {message:?} in {lines:?}"))
    }
}

impl std::io::Write for MemoryLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MemoryLog {
    type Writer = MemoryLog;
    fn make_writer(&'a self) -> MemoryLog {
        self.clone()
    }
}

/// A collector that accepts connections, reads nothing back and never
/// answers; its address.
///
/// # Panics
///
/// When it cannot bind to 127.0.0.1.
pub fn black_hole() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    addr
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves `router` on 127.0.0.1 (a port of its own) from a task of the
/// current runtime; its address.
///
/// # Panics
///
/// When it cannot bind.
pub async fn serve_router(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds to 127.0.0.1");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}
