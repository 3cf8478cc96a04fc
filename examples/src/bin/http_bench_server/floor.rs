//! The least a server layer built on the OpenTelemetry API does per request,
//! as a reference for the load benchmark: extract the caller's context with
//! the global propagator, start a SERVER span named by the method, with no
//! attributes, make it current while the handler is polled, and end it when
//! the response is ready. No semantic conventions, no body wrapping.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use observability_core::opentelemetry::Context;
use observability_core::opentelemetry::global::{self, BoxedTracer};
use observability_core::opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};

/// Wraps a service in [`FloorService`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FloorLayer;

impl<S> tower::Layer<S> for FloorLayer {
    type Service = FloorService<S>;

    fn layer(&self, inner: S) -> FloorService<S> {
        FloorService {
            inner,
            tracer: Arc::new(global::tracer("http-bench-floor")),
        }
    }
}

/// A SERVER span per request through the OpenTelemetry API, nothing more.
#[derive(Clone)]
pub(crate) struct FloorService<S> {
    inner: S,
    tracer: Arc<BoxedTracer>,
}

impl<S, B, R> tower::Service<Request<B>> for FloorService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let parent = observability_http::extract_context(request.headers());
        let span = self
            .tracer
            .span_builder(request.method().as_str().to_owned())
            .with_kind(SpanKind::Server)
            .start_with_context(&*self.tracer, &parent);
        let cx = parent.with_span(span);
        let inner = {
            let _attached = cx.clone().attach();
            self.inner.call(request)
        };
        FloorFuture { inner, cx }
    }
}

pin_project_lite::pin_project! {
    /// Polls the handler with the span's context current; ends the span
    /// with the response.
    pub(crate) struct FloorFuture<F> {
        #[pin]
        inner: F,
        cx: Context,
    }
}

impl<F: Future> Future for FloorFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _attached = this.cx.clone().attach();
        let output = this.inner.poll(task);
        if output.is_ready() {
            this.cx.span().end();
        }
        output
    }
}
