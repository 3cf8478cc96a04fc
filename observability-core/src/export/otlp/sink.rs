//! The trace sink: OTLP over HTTP/protobuf and over gRPC, with protobuf
//! bodies encoded straight from the spans ([`super::super::encode`]),
//! several times cheaper per span than building the protobuf structs first.
//! gRPC is the same message behind the 5-byte gRPC frame, over HTTP/2, with
//! the outcome in `grpc-status`. Requests over the size limit, or refused as
//! too large, are split; retries stay within the export's deadline.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, TE, USER_AGENT};
use http::{HeaderMap, Request, StatusCode, Uri};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

use super::client::HyperClient;
use super::status::{
    GrpcOutcome, grpc_error, grpc_outcome, is_transient, retry_after, with_sources,
};
use crate::config::OtlpSettings;
use crate::export::encode::Encoder;
use crate::export::error::{BuildError, ExportError};
use crate::export::{ExportFuture, Outcome, Sink};

/// Which OTLP transport a sink speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
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

pub(crate) struct HttpSink {
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
    ) -> Result<Self, BuildError> {
        let mut endpoint: Uri =
            settings
                .endpoint
                .as_str()
                .parse()
                .map_err(|e: http::uri::InvalidUri| BuildError::Url {
                    endpoint: settings.endpoint.to_string(),
                    reason: e.to_string(),
                })?;
        if wire == Wire::Grpc {
            endpoint = grpc_uri(&endpoint)?;
        }
        let https = settings.endpoint.is_https();
        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            let header = |what| BuildError::Header {
                name: name.clone(),
                what,
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| header("name"))?;
            let value = HeaderValue::from_str(value).map_err(|_| header("value"))?;
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
    Failed(ExportError),
}

impl Shared {
    /// Encodes `batch` into `body` (left empty for the next batch when
    /// uncompressed: the encoded batch becomes the request's body without
    /// a copy).
    fn encode(&self, body: &mut Vec<u8>, batch: &[SpanData]) -> Result<Encoded, ExportError> {
        let failed = |e: &dyn std::fmt::Display| ExportError::Encoding(e.to_string());
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
            gz.write_all(&body[start..]).map_err(|e| failed(&e))?;
            (gz.finish().map_err(|e| failed(&e))?, frame)
        } else {
            let capacity = body.capacity();
            (std::mem::replace(body, Vec::with_capacity(capacity)), start)
        };
        let begin = start - frame;
        if frame > 0 {
            let len = u32::try_from(buffer.len() - start)
                .map_err(|_| failed(&"the batch is larger than 4 GiB"))?;
            buffer[begin] = u8::from(self.gzip);
            buffer[begin + 1..start].copy_from_slice(&len.to_be_bytes());
        }
        let body = Bytes::from(buffer).slice(begin..);
        let mut request = Request::post(self.endpoint.clone())
            .body(body)
            .map_err(|e| failed(&e))?;
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
        first: Result<Encoded, ExportError>,
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
                    outcome.fail(len, error);
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
                        outcome.fail(len, error);
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
                    return Sent::Failed(ExportError::NoAnswer {
                        endpoint: self.endpoint.to_string(),
                    });
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
                        return Sent::Failed(ExportError::Http {
                            status: status.as_u16(),
                            body: body.chars().take(200).collect(),
                        });
                    }
                    retry_after(response.headers()).unwrap_or(backoff)
                }
                Err(error) if !can_retry => {
                    let reason = with_sources(error.as_ref());
                    return Sent::Failed(ExportError::Unreachable {
                        endpoint: self.endpoint.to_string(),
                        hint: self.hint(&reason),
                        reason,
                    });
                }
                Err(_) => backoff,
            };
            if tokio::time::Instant::now() + wait >= deadline {
                return Sent::Failed(ExportError::WaitPastDeadline {
                    endpoint: self.endpoint.to_string(),
                    wait,
                });
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
fn grpc_uri(endpoint: &Uri) -> Result<Uri, BuildError> {
    let base = endpoint.path().trim_end_matches('/');
    let mut parts = endpoint.clone().into_parts();
    parts.path_and_query = Some(format!("{base}{GRPC_EXPORT_PATH}").parse().map_err(
        |e: http::uri::InvalidUri| BuildError::Url {
            endpoint: endpoint.to_string(),
            reason: format!("it cannot take a gRPC path: {e}"),
        },
    )?);
    Uri::from_parts(parts).map_err(|e| BuildError::Url {
        endpoint: endpoint.to_string(),
        reason: e.to_string(),
    })
}

/// Transient failures (connection errors, 429, 502, 503, 504) are retried
/// this many times, after these delays (or the collector's
/// `Retry-After`), all within `OTEL_EXPORTER_OTLP_TIMEOUT` (the OTLP
/// exporter specification's timeout is for the whole export).
const RETRIES: usize = 2;
const BACKOFF: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

fn clone_request(request: &Request<Bytes>) -> Request<Bytes> {
    let mut clone = Request::new(request.body().clone());
    *clone.method_mut() = request.method().clone();
    *clone.uri_mut() = request.uri().clone();
    *clone.headers_mut() = request.headers().clone();
    clone
}
