//! How an OTLP request reaches the collector, for every signal: the
//! endpoint (with the gRPC method path), the headers, gzip, the gRPC frame,
//! retries within the export's deadline, and what the answer means.

use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, TE, USER_AGENT};
use http::{HeaderMap, Request, StatusCode, Uri};

use super::client::HyperClient;
use super::status::{
    GrpcOutcome, grpc_error, grpc_outcome, is_transient, retry_after, with_sources,
};
use crate::config::OtlpSettings;
use crate::export::error::{BuildError, ExportError};

/// Which OTLP transport a sink speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    /// OTLP/HTTP, `application/x-protobuf`.
    Http,
    /// OTLP/gRPC: HTTP/2, `application/grpc`, length-prefixed frames.
    Grpc,
}

/// The `User-Agent` of every export.
const EXPORTER_USER_AGENT: &str = concat!(
    "OTel-OTLP-Exporter-Rust/",
    env!("CARGO_PKG_VERSION"),
    " (observability-core)"
);

/// How one request ended.
pub(super) enum Sent {
    Ok,
    /// The collector refused it as too large (HTTP 413, or gRPC
    /// RESOURCE_EXHAUSTED saying the message is larger than its limit).
    TooLarge,
    Failed(ExportError),
}

/// Where and how one signal's requests go.
pub(super) struct Transport {
    pub(super) wire: Wire,
    client: HyperClient,
    endpoint: Uri,
    headers: HeaderMap,
    pub(super) gzip: bool,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`: the whole export, retries included.
    pub(super) timeout: Duration,
}

impl Transport {
    /// A transport to `settings`' endpoint; over gRPC, `grpc_method` is the
    /// path of the service's `Export` method.
    pub(super) fn new(
        settings: &OtlpSettings,
        wire: Wire,
        grpc_method: &str,
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
            endpoint = grpc_uri(&endpoint, grpc_method)?;
        }
        let https = settings.endpoint.is_https();
        Ok(Self {
            wire,
            client: HyperClient::new(settings.timeout, https, wire == Wire::Grpc)?,
            endpoint,
            headers: headers(settings, wire)?,
            gzip: settings.gzip,
            timeout: settings.timeout,
        })
    }

    /// A request carrying `body` (already compressed and framed).
    pub(super) fn request(&self, body: Bytes) -> Result<Request<Bytes>, ExportError> {
        let mut request = Request::post(self.endpoint.clone())
            .body(body)
            .map_err(|e| ExportError::Encoding(e.to_string()))?;
        *request.headers_mut() = self.headers.clone();
        Ok(request)
    }

    /// The bytes an encoder leaves free before its message, for the gRPC
    /// frame to be written in place (none when the message is compressed
    /// into a buffer of its own).
    pub(super) fn headroom(&self) -> usize {
        if self.gzip { 0 } else { self.frame() }
    }

    /// gRPC frames a message: a compressed flag, then its length.
    fn frame(&self) -> usize {
        if self.wire == Wire::Grpc { 5 } else { 0 }
    }

    /// The body for the message `buffer[start..]`: compressed into a new
    /// buffer when gzip is on (`buffer` is left for reuse), else `buffer`
    /// itself, taken without a copy (left empty, with its capacity), the
    /// gRPC frame written in the [`headroom`](Self::headroom) before
    /// `start`.
    pub(super) fn body(&self, buffer: &mut Vec<u8>, start: usize) -> Result<Bytes, ExportError> {
        let failed = |e: &dyn std::fmt::Display| ExportError::Encoding(e.to_string());
        let frame = self.frame();
        let (mut out, start) = if self.gzip {
            let message_len = buffer.len() - start;
            let mut compressed = Vec::with_capacity(frame + message_len / 4);
            compressed.resize(frame, 0);
            let mut gz = flate2::write::GzEncoder::new(compressed, flate2::Compression::fast());
            gz.write_all(&buffer[start..]).map_err(|e| failed(&e))?;
            (gz.finish().map_err(|e| failed(&e))?, frame)
        } else {
            let capacity = buffer.capacity();
            (
                std::mem::replace(buffer, Vec::with_capacity(capacity)),
                start,
            )
        };
        let begin = start - frame;
        if frame > 0 {
            let len = u32::try_from(out.len() - start)
                .map_err(|_| failed(&"the message is larger than 4 GiB"))?;
            out[begin] = u8::from(self.gzip);
            out[begin + 1..start].copy_from_slice(&len.to_be_bytes());
        }
        Ok(Bytes::from(out).slice(begin..))
    }

    /// A request carrying `message` (compressed, framed).
    pub(super) fn request_for(&self, message: &[u8]) -> Result<Request<Bytes>, ExportError> {
        let headroom = self.headroom();
        let mut buffer = Vec::with_capacity(headroom + message.len());
        buffer.resize(headroom, 0);
        buffer.extend_from_slice(message);
        let body = self.body(&mut buffer, headroom)?;
        self.request(body)
    }

    /// Sends one request, retrying transient failures, until `deadline`
    /// (`OTEL_EXPORTER_OTLP_TIMEOUT` covers the retries too).
    pub(super) async fn send(
        &self,
        request: Request<Bytes>,
        deadline: tokio::time::Instant,
    ) -> Sent {
        self.send_with(request, deadline, RETRIES).await
    }

    /// [`send`](Self::send) with at most `retries` more attempts.
    pub(super) async fn send_with(
        &self,
        request: Request<Bytes>,
        deadline: tokio::time::Instant,
        retries: usize,
    ) -> Sent {
        let mut attempt = 0;
        loop {
            let backoff = BACKOFF[attempt.min(BACKOFF.len() - 1)];
            let can_retry = attempt < retries;
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

/// The headers of every request: the user's, `User-Agent`, and those of
/// the wire.
fn headers(settings: &OtlpSettings, wire: Wire) -> Result<HeaderMap, BuildError> {
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
    Ok(headers)
}

impl Transport {
    /// What to try when an error suggests the endpoint speaks the other
    /// protocol (HTTP/1 answers to gRPC's HTTP/2, and the reverse).
    fn hint(&self, error: &str) -> &'static str {
        let other_protocol = [
            "invalid HTTP version",
            "frame with invalid size",
            "connection error: PROTOCOL_ERROR",
            "http2 error",
            // An HTTP/1 client reading an HTTP/2 server's first frames.
            "received unexpected message from connection",
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

/// `grpc-encoding`, the gRPC message compression.
static GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");

/// The endpoint with a service's gRPC method path after any path it has
/// (gRPC endpoints are given without one).
fn grpc_uri(endpoint: &Uri, method: &str) -> Result<Uri, BuildError> {
    let base = endpoint.path().trim_end_matches('/');
    let mut parts = endpoint.clone().into_parts();
    parts.path_and_query = Some(format!("{base}{method}").parse().map_err(
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
