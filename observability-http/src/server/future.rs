use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};

use http::{HeaderValue, Response};
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use super::body_kind::{ServerBody, WrapBody};
use super::layer::ServerConfig;
use super::service::traceparent_of;
use crate::attributes::{self as attr, ERROR_TYPE, HTTP_RESPONSE_STATUS_CODE};
use crate::body::{ResponseBody, Side, end_failed, record_grpc_status};
use crate::metrics::{RpcCall, ServerRequest};

pin_project_lite::pin_project! {
    /// The response future of a [`ServerService`](super::ServerService): polls
    /// the handler with the request's span as the current context, and
    /// answers with the body `M` says (see [`ServerBody`]).
    pub struct ServerFuture<F, M = WrapBody> {
        #[pin]
        inner: F,
        span: Option<Traced>,
        body: PhantomData<fn() -> M>,
    }

    impl<F, M> PinnedDrop for ServerFuture<F, M> {
        fn drop(this: Pin<&mut Self>) {
            // A request dropped before its response (a client that went
            // away, a timeout layer) still ends its span.
            if let Some(mut traced) = this.project().span.take() {
                if let (Some(metered), Some(instruments)) =
                    (traced.metered.take(), traced.config.metrics.get())
                {
                    metered.abandon(instruments);
                }
                traced.cx.span().end();
            }
        }
    }
}

struct Traced {
    cx: Context,
    /// Whether the span records (the layer knows when it makes the
    /// context).
    recording: bool,
    config: Arc<ServerConfig>,
    grpc: bool,
    metered: Option<ServerRequest>,
    rpc: Option<RpcCall>,
}

impl<F, M> std::fmt::Debug for ServerFuture<F, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerFuture")
            .field("traced", &self.span.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, M> ServerFuture<F, M> {
    pub(crate) fn untraced(inner: F) -> Self {
        Self {
            inner,
            span: None,
            body: PhantomData,
        }
    }

    pub(crate) fn traced(
        inner: F,
        (cx, recording): (Context, bool),
        config: Arc<ServerConfig>,
        grpc: bool,
        metered: Option<ServerRequest>,
        rpc: Option<RpcCall>,
    ) -> Self {
        Self {
            inner,
            span: Some(Traced {
                cx,
                recording,
                config,
                grpc,
                metered,
                rpc,
            }),
            body: PhantomData,
        }
    }
}

/// Writes the span's context back to the response, as configured.
fn write_context(headers: &mut http::HeaderMap, traceparent: &str, config: &ServerConfig) {
    if config.traceresponse
        && let Ok(v) = HeaderValue::from_str(traceparent)
    {
        headers.insert("traceresponse", v);
    }
    if config.server_timing
        && let Ok(v) = HeaderValue::from_str(&format!("traceparent;desc=\"{traceparent}\""))
    {
        headers.append("server-timing", v);
    }
}

impl<F, M, B, E> Future for ServerFuture<F, M>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: std::fmt::Debug + std::fmt::Display,
    M: ServerBody<B>,
{
    type Output = Result<Response<M::Body>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _attached = this.span.as_ref().map(|t| t.cx.clone().attach());
            let result = ready!(this.inner.poll(task));
            // Timed with the span current: the duration's exemplar is its.
            if let Some(traced) = this.span.as_mut()
                && let Some(metered) = traced.metered.take()
                && let Some(instruments) = traced.config.metrics.get()
            {
                match &result {
                    Ok(response) => metered.end(instruments, Some(response.status()), None),
                    Err(_) => metered.end(instruments, None, Some("_OTHER")),
                }
            }
            result
        };
        // Nothing to record, to time or to write back: the response as it
        // is (a failure would end a span that records nothing). Dropped in
        // place: taking the span out first copied it.
        if this
            .span
            .as_ref()
            .is_some_and(|t| !t.recording && t.rpc.is_none() && !t.config.writes_context())
        {
            *this.span = None;
        }
        let Some(traced) = this.span.take() else {
            return Poll::Ready(result.map(|r| r.map(M::plain)));
        };
        let span = traced.cx.span();
        let recording = traced.recording;
        match result {
            Ok(mut response) => {
                let status = response.status();
                if recording {
                    span.set_attribute(KeyValue::new(
                        HTTP_RESPONSE_STATUS_CODE,
                        i64::from(status.as_u16()),
                    ));
                    for name in &traced.config.response_headers {
                        if let Some(kv) = attr::header_attribute(
                            "http.response.header.",
                            name.as_str(),
                            response.headers(),
                        ) {
                            span.set_attribute(kv);
                        }
                    }
                }
                if status.is_server_error() {
                    span.set_attribute(KeyValue::new(ERROR_TYPE, status.as_u16().to_string()));
                    span.set_status(Status::error(""));
                }
                if traced.grpc {
                    record_grpc_status(&traced.cx, Side::Server, response.headers());
                }
                if traced.config.writes_context()
                    && let Some(tp) = traceparent_of(&traced.cx)
                {
                    write_context(response.headers_mut(), &tp, &traced.config);
                }
                let mut rpc = traced.rpc;
                if let Some(rpc) = rpc.as_mut() {
                    rpc.status_from(response.headers());
                }
                if !recording {
                    // Nothing to record on the span: the body streams
                    // untouched (timed for gRPC metrics).
                    return Poll::Ready(Ok(response.map(|body| match rpc {
                        None => M::plain(body),
                        rpc => M::wrapped(ResponseBody::timed(body, rpc)),
                    })));
                }
                let side = traced.grpc.then_some(Side::Server);
                let cx = traced.cx;
                Poll::Ready(Ok(
                    response.map(|body| M::wrapped(ResponseBody::traced(body, cx, side, rpc)))
                ))
            }
            Err(error) => {
                if let Some(rpc) = traced.rpc {
                    let _attached = traced.cx.clone().attach();
                    rpc.end();
                }
                end_failed(&traced.cx, &error);
                Poll::Ready(Err(error))
            }
        }
    }
}
