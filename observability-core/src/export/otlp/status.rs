//! What a collector's answer means: success, worth another attempt, too
//! large, or failed (HTTP statuses and gRPC's `grpc-status`), and the
//! messages that say so.

use std::time::Duration;

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, Response};

use crate::export::error::ExportError;

/// HTTP answers worth another attempt: 429, 502, 503, 504.
pub(super) fn is_transient(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// What to do with a gRPC answer.
pub(super) enum GrpcOutcome {
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
pub(super) fn grpc_outcome(
    response: &Response<Bytes>,
    trailers: Option<&HeaderMap>,
) -> GrpcOutcome {
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

pub(super) fn grpc_error(response: &Response<Bytes>, trailers: Option<&HeaderMap>) -> ExportError {
    let Some(code) = grpc_status(response, trailers) else {
        return ExportError::NoGrpcStatus {
            status: response.status().as_u16(),
        };
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
    ExportError::Grpc {
        code: code.trim().chars().take(8).collect(),
        name,
        message: message.chars().take(200).collect(),
    }
}

pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
pub(super) fn with_sources(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
