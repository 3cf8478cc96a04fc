use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use http::Response;
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::attributes::{ERROR_TYPE, HTTP_RESPONSE_STATUS_CODE};
use crate::body::{ResponseBody, Side, end_failed, record_grpc_status};
use crate::metrics::{ClientRequest, RpcCall};

pin_project_lite::pin_project! {
    /// The response future of a [`ClientService`](super::ClientService).
    pub struct ClientFuture<F> {
        #[pin]
        inner: F,
        span: Option<(Context, bool)>,
        metered: Option<ClientRequest>,
        rpc: Option<RpcCall>,
    }

    impl<F> PinnedDrop for ClientFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some((cx, _)) = this.project().span.take() {
                cx.span().end();
            }
        }
    }
}

impl<F> std::fmt::Debug for ClientFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFuture").finish_non_exhaustive()
    }
}

impl<F> ClientFuture<F> {
    pub(crate) fn new(
        inner: F,
        cx: Context,
        grpc: bool,
        metered: Option<ClientRequest>,
        rpc: Option<RpcCall>,
    ) -> Self {
        Self {
            inner,
            span: Some((cx, grpc)),
            metered,
            rpc,
        }
    }
}

/// Records a client response's status: 4xx and 5xx are errors.
pub(crate) fn record_client_status(cx: &Context, status: http::StatusCode) {
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        HTTP_RESPONSE_STATUS_CODE,
        i64::from(status.as_u16()),
    ));
    if status.is_client_error() || status.is_server_error() {
        span.set_attribute(KeyValue::new(ERROR_TYPE, status.as_u16().to_string()));
        span.set_status(Status::error(""));
    }
}

impl<F, B, E> Future for ClientFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: std::fmt::Debug + std::fmt::Display,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _attached = this.span.as_ref().map(|(cx, _)| cx.clone().attach());
            let result = ready!(this.inner.poll(task));
            // Timed with the span current: the duration's exemplar is its.
            if let Some(metered) = this.metered.take() {
                match &result {
                    Ok(response) => metered.end(Some(response.status()), None),
                    Err(_) => metered.end(None, Some("_OTHER")),
                }
            }
            result
        };
        let mut rpc = this.rpc.take();
        let Some((cx, grpc)) = this.span.take() else {
            return Poll::Ready(result.map(|r| r.map(ResponseBody::untraced)));
        };
        match result {
            Ok(response) => {
                if let Some(rpc) = rpc.as_mut() {
                    rpc.status_from(response.headers());
                }
                if !cx.span().is_recording() {
                    // Sampled out: nothing to record on the span, the body
                    // streams untouched (timed for gRPC metrics).
                    return Poll::Ready(Ok(response.map(|body| ResponseBody::timed(body, rpc))));
                }
                record_client_status(&cx, response.status());
                if grpc {
                    record_grpc_status(&cx, Side::Client, response.headers());
                }
                let side = grpc.then_some(Side::Client);
                Poll::Ready(Ok(
                    response.map(|body| ResponseBody::traced(body, cx, side, rpc))
                ))
            }
            Err(error) => {
                if let Some(rpc) = rpc {
                    let _attached = cx.clone().attach();
                    rpc.end();
                }
                end_failed(&cx, &error);
                Poll::Ready(Err(error))
            }
        }
    }
}
