//! The OTLP exporters, over gRPC or HTTP/protobuf, with rustls and the
//! system's root certificates. Traces use this crate's encoder and a hyper
//! client for both transports; logs go through `opentelemetry-otlp` (over
//! gRPC with tonic, feature `otlp-grpc-logs`).

use opentelemetry_sdk::Resource;
use tokio::runtime::Handle;

use super::Sink;
use crate::config::{OtlpSettings, Protocol};

/// Builds the OTLP sink inside the export runtime (tonic's channel spawns
/// its worker there). Errors are described for a warning.
pub(crate) fn otlp_sink(
    settings: &OtlpSettings,
    max_request_bytes: usize,
    resource: &Resource,
    runtime: &Handle,
) -> Result<Box<dyn Sink>, String> {
    let _enter = runtime.enter();
    let wire = match settings.protocol {
        Protocol::HttpProtobuf => fast_http::Wire::Http,
        #[cfg(feature = "otlp-grpc")]
        Protocol::Grpc => fast_http::Wire::Grpc,
        #[cfg(not(feature = "otlp-grpc"))]
        Protocol::Grpc => {
            return Err("OTLP over gRPC needs the `otlp-grpc` feature".to_owned());
        }
    };
    Ok(Box::new(fast_http::HttpSink::new(
        settings,
        max_request_bytes,
        resource,
        wire,
    )?))
}

/// OTLP over HTTP/protobuf and over gRPC, with protobuf bodies encoded
/// straight from the spans ([`super::encode`]), several times cheaper per
/// span than building the protobuf structs first. gRPC is the same message
/// behind the 5-byte gRPC frame, over HTTP/2, with the outcome in
/// `grpc-status`.
mod fast_http {
    use std::io::Write as _;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use http::header::{
        CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, TE, USER_AGENT,
    };
    use http::{HeaderMap, Request, Response, StatusCode, Uri};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SpanData;

    use super::http_client::HyperClient;
    use crate::config::OtlpSettings;
    use crate::export::encode::Encoder;
    use crate::export::{ExportFuture, Outcome, Sink};

    /// Which OTLP transport a sink speaks.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Wire {
        /// OTLP/HTTP, `application/x-protobuf`.
        Http,
        /// OTLP/gRPC: HTTP/2, `application/grpc`, length-prefixed frames.
        Grpc,
    }

    /// The `User-Agent` of every export.
    pub(super) const EXPORTER_USER_AGENT: &str = concat!(
        "OTel-OTLP-Exporter-Rust/",
        env!("CARGO_PKG_VERSION"),
        " (observability-core)"
    );

    /// The gRPC method of the trace service.
    const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

    pub(super) struct HttpSink {
        /// What encoding and sending need, shared with the exports in flight
        /// (a batch too large for the collector is encoded again in parts).
        shared: Arc<Shared>,
        /// The buffer the next batch is encoded into.
        body: Vec<u8>,
    }

    struct Shared {
        wire: Wire,
        client: HyperClient,
        endpoint: Uri,
        headers: HeaderMap,
        gzip: bool,
        encoder: Encoder,
        resource: Vec<u8>,
        schema_url: String,
        /// Bytes of one request at most, before compression.
        max_request_bytes: usize,
        /// `OTEL_EXPORTER_OTLP_TIMEOUT`: the whole export, retries included.
        timeout: Duration,
    }

    impl HttpSink {
        pub(super) fn new(
            settings: &OtlpSettings,
            max_request_bytes: usize,
            resource: &Resource,
            wire: Wire,
        ) -> Result<Self, String> {
            let mut endpoint: Uri = settings
                .endpoint
                .parse()
                .map_err(|e| format!("`{}` is not a valid URL: {e}", settings.endpoint))?;
            if wire == Wire::Grpc {
                endpoint = grpc_uri(&endpoint)?;
            }
            let https = endpoint.scheme_str() == Some("https");
            let mut headers = HeaderMap::new();
            for (name, value) in &settings.headers {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("`{name}` is not a valid header name"))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
                headers.append(name, value);
            }
            // The OTLP exporter specification ("User Agent"): name the
            // exporter, its language and its version, unless the user set one.
            if !headers.contains_key(USER_AGENT) {
                headers.insert(USER_AGENT, HeaderValue::from_static(EXPORTER_USER_AGENT));
            }
            match wire {
                Wire::Http => {
                    headers.insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/x-protobuf"),
                    );
                    if settings.gzip {
                        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    }
                }
                Wire::Grpc => {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                    headers.insert(TE, HeaderValue::from_static("trailers"));
                    if settings.gzip {
                        headers.insert(GRPC_ENCODING.clone(), HeaderValue::from_static("gzip"));
                    }
                }
            }
            let mut encoder = Encoder;
            let encoded_resource = encoder.resource(resource);
            Ok(Self {
                shared: Arc::new(Shared {
                    wire,
                    client: HyperClient::new(settings.timeout, https, wire == Wire::Grpc)?,
                    endpoint,
                    headers,
                    gzip: settings.gzip,
                    encoder,
                    resource: encoded_resource,
                    schema_url: resource.schema_url().unwrap_or_default().to_owned(),
                    max_request_bytes,
                    timeout: settings.timeout,
                }),
                body: Vec::new(),
            })
        }
    }

    /// An encoded request and the size of its message before compression.
    struct Encoded {
        request: Request<Bytes>,
        message_len: usize,
    }

    /// How one request ended.
    enum Sent {
        Ok,
        /// The collector refused it as too large (HTTP 413, or gRPC
        /// RESOURCE_EXHAUSTED saying the message is larger than its limit).
        TooLarge,
        Failed(String),
    }

    impl Shared {
        /// Encodes `batch` into `body` (left empty for the next batch when
        /// uncompressed: the encoded batch becomes the request's body without
        /// a copy).
        fn encode(&self, body: &mut Vec<u8>, batch: &[SpanData]) -> Result<Encoded, String> {
            // gRPC frames the message: a compressed flag, then its length.
            let frame = if self.wire == Wire::Grpc { 5 } else { 0 };
            let headroom = if self.gzip { 0 } else { frame };
            let mut encoder = self.encoder;
            let start = encoder.request(body, headroom, &self.resource, &self.schema_url, batch);
            let message_len = body.len() - start;
            let (mut buffer, start) = if self.gzip {
                let mut compressed = Vec::with_capacity(frame + message_len / 4);
                compressed.resize(frame, 0);
                let mut gz = flate2::write::GzEncoder::new(compressed, flate2::Compression::fast());
                gz.write_all(&body[start..]).map_err(|e| e.to_string())?;
                (gz.finish().map_err(|e| e.to_string())?, frame)
            } else {
                let capacity = body.capacity();
                (std::mem::replace(body, Vec::with_capacity(capacity)), start)
            };
            let begin = start - frame;
            if frame > 0 {
                let len = u32::try_from(buffer.len() - start)
                    .map_err(|_| "the batch is larger than 4 GiB".to_owned())?;
                buffer[begin] = u8::from(self.gzip);
                buffer[begin + 1..start].copy_from_slice(&len.to_be_bytes());
            }
            let body = Bytes::from(buffer).slice(begin..);
            let mut request = Request::post(self.endpoint.clone())
                .body(body)
                .map_err(|e| e.to_string())?;
            *request.headers_mut() = self.headers.clone();
            Ok(Encoded {
                request,
                message_len,
            })
        }

        /// Delivers `batch` by `deadline`: requests over the size limit, or
        /// refused by the collector as too large, are split in halves and
        /// sent again; a single span that is still too large is dropped and
        /// counted. Every span ends up in the outcome.
        async fn deliver(
            self: Arc<Self>,
            batch: Vec<SpanData>,
            first: Result<Encoded, String>,
            deadline: tokio::time::Instant,
        ) -> Outcome {
            let mut outcome = Outcome::default();
            let mut first = Some(first);
            // Ranges of `batch` still to send, the next one last.
            let mut todo: Vec<std::ops::Range<usize>> = Vec::with_capacity(8);
            todo.push(0..batch.len());
            while let Some(range) = todo.pop() {
                let len = range.len() as u64;
                let encoded = match first.take() {
                    Some(encoded) => encoded,
                    None => self.encode(&mut Vec::new(), &batch[range.clone()]),
                };
                let encoded = match encoded {
                    Ok(encoded) => encoded,
                    Err(error) => {
                        outcome.failed += len;
                        outcome.error = Some(error);
                        continue;
                    }
                };
                let too_large = if encoded.message_len > self.max_request_bytes {
                    true
                } else {
                    match self.send(encoded.request, deadline).await {
                        Sent::Ok => {
                            outcome.sent += len;
                            false
                        }
                        Sent::TooLarge => true,
                        Sent::Failed(error) => {
                            outcome.failed += len;
                            outcome.error = Some(error);
                            false
                        }
                    }
                };
                if too_large {
                    if range.len() > 1 {
                        let middle = range.start + range.len() / 2;
                        todo.push(middle..range.end);
                        todo.push(range.start..middle);
                    } else {
                        outcome.too_large += 1;
                    }
                }
            }
            outcome
        }

        /// Sends one request, retrying transient failures, until `deadline`
        /// (`OTEL_EXPORTER_OTLP_TIMEOUT` covers the retries too).
        async fn send(&self, request: Request<Bytes>, deadline: tokio::time::Instant) -> Sent {
            let mut attempt = 0;
            loop {
                let backoff = BACKOFF[attempt.min(BACKOFF.len() - 1)];
                let can_retry = attempt < RETRIES;
                let exchange = self.client.exchange(clone_request(&request));
                let answer = match tokio::time::timeout_at(deadline, exchange).await {
                    Ok(answer) => answer,
                    Err(_) => {
                        return Sent::Failed(format!(
                            "no answer from {} within the export timeout",
                            self.endpoint
                        ));
                    }
                };
                let wait = match answer {
                    Ok((response, trailers)) if self.wire == Wire::Grpc => {
                        match grpc_outcome(&response, trailers.as_ref()) {
                            GrpcOutcome::Ok => return Sent::Ok,
                            GrpcOutcome::TooLarge => return Sent::TooLarge,
                            GrpcOutcome::Retry if can_retry => backoff,
                            GrpcOutcome::Retry | GrpcOutcome::Fail => {
                                return Sent::Failed(grpc_error(&response, trailers.as_ref()));
                            }
                        }
                    }
                    Ok((response, _)) if response.status().is_success() => return Sent::Ok,
                    Ok((response, _)) if response.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        return Sent::TooLarge;
                    }
                    Ok((response, _)) => {
                        let status = response.status();
                        if !(is_transient(status) && can_retry) {
                            let body = String::from_utf8_lossy(response.body());
                            return Sent::Failed(format!(
                                "the collector answered {status}: {}",
                                body.chars().take(200).collect::<String>()
                            ));
                        }
                        retry_after(response.headers()).unwrap_or(backoff)
                    }
                    Err(error) if !can_retry => {
                        let error = with_sources(error.as_ref());
                        return Sent::Failed(format!(
                            "{}: {error}{}",
                            self.endpoint,
                            self.hint(&error)
                        ));
                    }
                    Err(_) => backoff,
                };
                if tokio::time::Instant::now() + wait >= deadline {
                    return Sent::Failed(format!(
                        "{} asked to wait {wait:?}, past the export timeout",
                        self.endpoint
                    ));
                }
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }

    impl Shared {
        /// What to try when an error suggests the endpoint speaks the other
        /// protocol (HTTP/1 answers to gRPC's HTTP/2, and the reverse).
        fn hint(&self, error: &str) -> &'static str {
            let other_protocol = [
                "invalid HTTP version",
                "frame with invalid size",
                "connection error: PROTOCOL_ERROR",
                "http2 error",
            ]
            .iter()
            .any(|needle| error.contains(needle));
            match (other_protocol, self.wire) {
                (true, Wire::Http) => {
                    "; is this a gRPC endpoint (port 4317)? set OTEL_EXPORTER_OTLP_PROTOCOL=grpc"
                }
                (true, Wire::Grpc) => {
                    "; is this an OTLP/HTTP endpoint (port 4318)? set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
                }
                (false, _) => "",
            }
        }
    }

    impl Sink for HttpSink {
        fn name(&self) -> &'static str {
            "otlp"
        }

        fn export(&mut self, batch: Vec<SpanData>, deadline: Instant) -> ExportFuture<'static> {
            let encoded = self.shared.encode(&mut self.body, &batch);
            let shared = Arc::clone(&self.shared);
            let deadline = deadline.min(Instant::now() + shared.timeout);
            Box::pin(shared.deliver(batch, encoded, tokio::time::Instant::from_std(deadline)))
        }
    }

    /// `grpc-encoding`, the gRPC message compression.
    static GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");

    /// The endpoint with the trace service's method path after any path it
    /// has (gRPC endpoints are given without one).
    fn grpc_uri(endpoint: &Uri) -> Result<Uri, String> {
        let base = endpoint.path().trim_end_matches('/');
        let mut parts = endpoint.clone().into_parts();
        parts.path_and_query = Some(
            format!("{base}{GRPC_EXPORT_PATH}")
                .parse()
                .map_err(|e| format!("`{endpoint}` cannot take a gRPC path: {e}"))?,
        );
        Uri::from_parts(parts).map_err(|e| e.to_string())
    }

    /// HTTP answers worth another attempt: 429, 502, 503, 504.
    fn is_transient(status: http::StatusCode) -> bool {
        matches!(status.as_u16(), 429 | 502 | 503 | 504)
    }

    enum GrpcOutcome {
        Ok,
        TooLarge,
        Retry,
        Fail,
    }

    /// The `grpc-status` of an answer: from the trailers, or from the
    /// headers of a trailers-only answer.
    fn grpc_status<'a>(
        response: &'a Response<Bytes>,
        trailers: Option<&'a HeaderMap>,
    ) -> Option<&'a str> {
        trailers
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| response.headers().get("grpc-status"))
            .and_then(|v| v.to_str().ok())
    }

    /// What to do with a gRPC answer. The codes the OTLP specification calls
    /// retryable are retried: CANCELLED, DEADLINE_EXCEEDED,
    /// RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS.
    fn grpc_outcome(response: &Response<Bytes>, trailers: Option<&HeaderMap>) -> GrpcOutcome {
        if !response.status().is_success() {
            return if is_transient(response.status()) {
                GrpcOutcome::Retry
            } else {
                GrpcOutcome::Fail
            };
        }
        match grpc_status(response, trailers).map(str::trim) {
            Some("0") => GrpcOutcome::Ok,
            // RESOURCE_EXHAUSTED is also a rate limit (retried); a message
            // over the receiver's size limit says so in its text ("received
            // message larger than max", tonic's "message too large").
            Some("8") if grpc_message(response, trailers).is_some_and(says_too_large) => {
                GrpcOutcome::TooLarge
            }
            Some("1" | "4" | "8" | "10" | "11" | "14" | "15") => GrpcOutcome::Retry,
            _ => GrpcOutcome::Fail,
        }
    }

    /// The `grpc-message` of an answer.
    fn grpc_message(response: &Response<Bytes>, trailers: Option<&HeaderMap>) -> Option<String> {
        trailers
            .and_then(|t| t.get("grpc-message"))
            .or_else(|| response.headers().get("grpc-message"))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// Whether a status message says the message was too large.
    fn says_too_large(message: String) -> bool {
        let message = message.to_ascii_lowercase();
        ["larger than max", "too large", "exceeds"]
            .iter()
            .any(|needle| message.contains(needle))
    }

    fn grpc_error(response: &Response<Bytes>, trailers: Option<&HeaderMap>) -> String {
        let Some(code) = grpc_status(response, trailers) else {
            return format!(
                "the collector answered {} without a gRPC status",
                response.status()
            );
        };
        let message = grpc_message(response, trailers).unwrap_or_default();
        let name = match code.trim() {
            "1" => "CANCELLED",
            "2" => "UNKNOWN",
            "3" => "INVALID_ARGUMENT",
            "4" => "DEADLINE_EXCEEDED",
            "5" => "NOT_FOUND",
            "6" => "ALREADY_EXISTS",
            "7" => "PERMISSION_DENIED",
            "8" => "RESOURCE_EXHAUSTED",
            "9" => "FAILED_PRECONDITION",
            "10" => "ABORTED",
            "11" => "OUT_OF_RANGE",
            "12" => "UNIMPLEMENTED",
            "13" => "INTERNAL",
            "14" => "UNAVAILABLE",
            "15" => "DATA_LOSS",
            "16" => "UNAUTHENTICATED",
            _ => "status",
        };
        format!(
            "the collector answered gRPC {name} ({code}): {}",
            message.chars().take(200).collect::<String>()
        )
    }

    /// Transient failures (connection errors, 429, 502, 503, 504) are retried
    /// this many times, after these delays (or the collector's
    /// `Retry-After`), all within `OTEL_EXPORTER_OTLP_TIMEOUT` (the OTLP
    /// exporter specification's timeout is for the whole export).
    const RETRIES: usize = 2;
    const BACKOFF: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

    fn retry_after(headers: &HeaderMap) -> Option<Duration> {
        let seconds: u64 = headers
            .get(RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(Duration::from_secs(seconds.min(30)))
    }

    /// `error: cause: root cause` (hyper's own message is only "client error").
    fn with_sources(error: &(dyn std::error::Error + 'static)) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    fn clone_request(request: &Request<Bytes>) -> Request<Bytes> {
        let mut clone = Request::new(request.body().clone());
        *clone.method_mut() = request.method().clone();
        *clone.uri_mut() = request.uri().clone();
        *clone.headers_mut() = request.headers().clone();
        clone
    }
}

#[cfg(feature = "otlp-grpc-logs")]
fn configure_grpc<B>(builder: B, settings: &OtlpSettings) -> Result<B, String>
where
    B: opentelemetry_otlp::WithExportConfig + opentelemetry_otlp::WithTonicConfig,
{
    use opentelemetry_otlp::Compression;
    use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
    use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

    let mut metadata = MetadataMap::new();
    for (key, value) in &settings.headers {
        let key = MetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("`{key}` is not a valid gRPC metadata key"))?;
        let value = MetadataValue::try_from(value.as_str())
            .map_err(|_| format!("the value of `{key}` is not a valid gRPC metadata value"))?;
        metadata.insert(key, value);
    }
    let mut builder = builder
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(settings.timeout)
        .with_metadata(metadata);
    if settings
        .endpoint
        .to_ascii_lowercase()
        .starts_with("https://")
    {
        builder = builder.with_tls_config(ClientTlsConfig::new().with_native_roots());
    }
    if settings.gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    Ok(builder)
}

fn configure_http<B>(builder: B, settings: &OtlpSettings) -> Result<B, String>
where
    B: opentelemetry_otlp::WithExportConfig + opentelemetry_otlp::WithHttpConfig,
{
    use opentelemetry_otlp::Compression;

    let client = http_client::HyperClient::new(
        settings.timeout,
        settings
            .endpoint
            .to_ascii_lowercase()
            .starts_with("https://"),
        false,
    )?;
    let mut builder = builder
        .with_http_client(client)
        .with_endpoint(settings.endpoint.clone())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(settings.timeout)
        .with_headers(settings.headers.iter().cloned().collect());
    if settings.gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    Ok(builder)
}

/// Builds the OTLP log exporter, wrapped so that it runs inside the export
/// runtime whichever thread drives it (the SDK's log processor thread).
pub(crate) fn otlp_log_exporter(
    settings: &OtlpSettings,
    resource: &Resource,
    runtime: &Handle,
) -> Result<OnRuntime<opentelemetry_otlp::LogExporter>, String> {
    use opentelemetry_sdk::logs::LogExporter as _;
    let _enter = runtime.enter();
    let mut exporter = match settings.protocol {
        #[cfg(feature = "otlp-grpc-logs")]
        Protocol::Grpc => configure_grpc(
            opentelemetry_otlp::LogExporter::builder().with_tonic(),
            settings,
        )?
        .build()
        .map_err(|e| e.to_string())?,
        #[cfg(not(feature = "otlp-grpc-logs"))]
        Protocol::Grpc => {
            return Err(
                "OTLP logs over gRPC need the `otlp-grpc-logs` feature (traces over gRPC do not); \
                 or set OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf"
                    .to_owned(),
            );
        }
        Protocol::HttpProtobuf => configure_http(
            opentelemetry_otlp::LogExporter::builder().with_http(),
            settings,
        )?
        .build()
        .map_err(|e| e.to_string())?,
    };
    exporter.set_resource(resource);
    Ok(OnRuntime {
        inner: exporter,
        handle: runtime.clone(),
    })
}

/// A log exporter whose futures are polled inside the export runtime.
#[derive(Debug)]
pub(crate) struct OnRuntime<E> {
    inner: E,
    handle: Handle,
}

struct EnterOnPoll<F> {
    handle: Handle,
    inner: std::pin::Pin<Box<F>>,
}

impl<F: std::future::Future> std::future::Future for EnterOnPoll<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let _enter = self.handle.enter();
        self.inner.as_mut().poll(cx)
    }
}

impl<F> Unpin for EnterOnPoll<F> {}

impl<E: opentelemetry_sdk::logs::LogExporter> opentelemetry_sdk::logs::LogExporter
    for OnRuntime<E>
{
    fn export(
        &self,
        batch: opentelemetry_sdk::logs::LogBatch<'_>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        let _enter = self.handle.enter();
        EnterOnPoll {
            handle: self.handle.clone(),
            inner: Box::pin(self.inner.export(batch)),
        }
    }

    fn shutdown_with_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        let _enter = self.handle.enter();
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

mod http_client {
    use std::time::Duration;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::{BodyExt, Full, Limited};
    use hyper_rustls::HttpsConnector;
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use opentelemetry_http::{HttpClient, HttpError};

    /// Responses larger than this are refused (a collector answers in bytes).
    const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

    /// The rustls crypto provider: aws-lc-rs (feature `rustls-aws-lc`, what
    /// reqwest 0.13 and the AWS SDK use) or ring (feature `rustls-ring`, the
    /// default), else the process's default provider, so that a service
    /// compiles one.
    fn crypto_provider() -> Result<rustls::crypto::CryptoProvider, String> {
        #[cfg(feature = "rustls-aws-lc")]
        return Ok(rustls::crypto::aws_lc_rs::default_provider());
        #[cfg(all(feature = "rustls-ring", not(feature = "rustls-aws-lc")))]
        return Ok(rustls::crypto::ring::default_provider());
        #[cfg(not(any(feature = "rustls-ring", feature = "rustls-aws-lc")))]
        rustls::crypto::CryptoProvider::get_default()
            .map(|provider| (**provider).clone())
            .ok_or_else(|| {
                "no TLS crypto provider: enable the `rustls-ring` or `rustls-aws-lc` feature \
                 of observability-core, or install a process default \
                 (rustls::crypto::CryptoProvider::install_default)"
                    .to_owned()
            })
    }

    /// A hyper client running on the export runtime, HTTP/1.1 and HTTP/2,
    /// rustls with the system's roots for `https`.
    #[derive(Clone, Debug)]
    pub(super) struct HyperClient {
        client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
        timeout: Duration,
    }

    impl HyperClient {
        /// `http2_only`: speak HTTP/2 from the first byte (gRPC), with
        /// prior knowledge over plain TCP and by ALPN over TLS.
        pub(super) fn new(
            timeout: Duration,
            https: bool,
            http2_only: bool,
        ) -> Result<Self, String> {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(timeout));
            let builder = hyper_rustls::HttpsConnectorBuilder::new();
            let provider = crypto_provider()?;
            let builder = if https {
                builder
                    .with_provider_and_native_roots(provider)
                    .map_err(|e| format!("cannot load the system's root certificates: {e}"))?
            } else {
                // No certificates are needed for plain HTTP; an empty root
                // store keeps start-up independent of the system's.
                builder.with_tls_config(
                    rustls::ClientConfig::builder_with_provider(provider.into())
                        .with_safe_default_protocol_versions()
                        .map_err(|e| e.to_string())?
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            };
            let connector = if http2_only {
                builder.https_or_http().enable_http2().wrap_connector(http)
            } else {
                builder
                    .https_or_http()
                    .enable_http1()
                    .enable_http2()
                    .wrap_connector(http)
            };
            let client = Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .http2_only(http2_only)
                .build(connector);
            Ok(Self { client, timeout })
        }

        /// Sends `request` and reads the whole answer, with its trailers,
        /// within the timeout.
        pub(super) async fn exchange(
            &self,
            request: Request<Bytes>,
        ) -> Result<(Response<Bytes>, Option<http::HeaderMap>), HttpError> {
            let (parts, body) = request.into_parts();
            let request = Request::from_parts(parts, Full::new(body));
            let exchange = async {
                let response = self.client.request(request).await?;
                let (parts, body) = response.into_parts();
                let collected = Limited::new(body, MAX_RESPONSE_BYTES).collect().await?;
                let trailers = collected.trailers().cloned();
                Ok::<_, HttpError>((Response::from_parts(parts, collected.to_bytes()), trailers))
            };
            match tokio::time::timeout(self.timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {:?}", self.timeout).into()),
            }
        }
    }

    #[async_trait::async_trait]
    impl HttpClient for HyperClient {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            self.exchange(request).await.map(|(response, _)| response)
        }
    }
}
