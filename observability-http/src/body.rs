//! The response body wrapper: the span ends when the body ends, so a
//! streaming response is timed whole; gRPC trailers give the status.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use bytes::Buf;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use opentelemetry::Context;
use opentelemetry::trace::{Status, TraceContextExt};

use crate::attributes::{ERROR_TYPE, RPC_GRPC_STATUS_CODE};
use crate::metrics::RpcCall;

/// Which side of a call a span is, for the gRPC error rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Server,
    Client,
}

/// Records a gRPC status code and sets the span status per the conventions:
/// on the server only UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
/// UNAVAILABLE and DATA_LOSS are errors; on the client every non-OK code is.
pub(crate) fn record_grpc_status(cx: &Context, side: Side, headers: &HeaderMap) -> bool {
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
    else {
        return false;
    };
    let span = cx.span();
    span.set_attribute(opentelemetry::KeyValue::new(RPC_GRPC_STATUS_CODE, code));
    let error = match side {
        Side::Server => matches!(code, 2 | 4 | 12 | 13 | 14 | 15),
        Side::Client => code != 0,
    };
    if error {
        let message = headers
            .get("grpc-message")
            .map(|v| percent_decode(v.as_bytes()))
            .unwrap_or_default();
        span.set_attribute(opentelemetry::KeyValue::new(ERROR_TYPE, code.to_string()));
        span.set_status(Status::error(message));
    }
    true
}

/// `grpc-message` is percent-encoded on the wire; malformed escapes are kept.
fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Ends the span of a call that failed before any response (a transport or
/// service error), with `error.type` and the error's message.
pub(crate) fn end_failed<E: std::fmt::Debug + std::fmt::Display>(cx: &Context, error: &E) {
    let span = cx.span();
    span.set_attribute(opentelemetry::KeyValue::new(
        ERROR_TYPE,
        crate::attributes::error_type(error),
    ));
    span.set_status(Status::error(error.to_string()));
    span.end();
}

pin_project_lite::pin_project! {
    /// A response body that ends its request's span when it ends (or fails,
    /// or is dropped). Bodies of untraced requests pass through untouched.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        span: Option<(Context, Option<Side>)>,
        rpc: Option<RpcCall>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(rpc) = this.rpc.take() {
                rpc.end();
            }
            if let Some((cx, _)) = this.span.take() {
                cx.span().end();
            }
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("traced", &self.span.is_some())
            .finish_non_exhaustive()
    }
}

impl<B> ResponseBody<B> {
    /// Ends the span of `cx` when the body ends, and times a gRPC call
    /// (`rpc`) until then.
    pub(crate) fn traced(inner: B, cx: Context, grpc: Option<Side>, rpc: Option<RpcCall>) -> Self {
        Self {
            inner,
            span: Some((cx, grpc)),
            rpc,
        }
    }

    pub(crate) fn untraced(inner: B) -> Self {
        Self {
            inner,
            span: None,
            rpc: None,
        }
    }

    /// Times a gRPC call (`rpc`) until the body ends; no span.
    pub(crate) fn timed(inner: B, rpc: Option<RpcCall>) -> Self {
        Self {
            inner,
            span: None,
            rpc,
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if this.rpc.is_some() {
            let ended = match &frame {
                Some(Ok(frame)) => {
                    if let (Some(rpc), Some(trailers)) = (this.rpc.as_mut(), frame.trailers_ref()) {
                        rpc.status_from(trailers);
                    }
                    this.inner.is_end_stream()
                }
                _ => true,
            };
            if ended && let Some(rpc) = this.rpc.take() {
                let _attached = this.span.as_ref().map(|(cx, _)| cx.clone().attach());
                rpc.end();
            }
        }
        if let Some((span_cx, grpc)) = this.span.as_ref() {
            let end = match &frame {
                Some(Ok(frame)) => {
                    if let (Some(side), Some(trailers)) = (grpc, frame.trailers_ref()) {
                        record_grpc_status(span_cx, *side, trailers);
                    }
                    this.inner.is_end_stream()
                }
                Some(Err(_)) => {
                    let span = span_cx.span();
                    span.set_attribute(opentelemetry::KeyValue::new(ERROR_TYPE, "body"));
                    span.set_status(Status::error("the response body failed"));
                    true
                }
                None => true,
            };
            if end && let Some((span_cx, _)) = this.span.take() {
                span_cx.span().end();
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(
            super::percent_decode(b"service%20not%20registered"),
            "service not registered"
        );
        assert_eq!(super::percent_decode(b"100%"), "100%");
        assert_eq!(super::percent_decode(b"caf%C3%A9"), "café");
    }
}
