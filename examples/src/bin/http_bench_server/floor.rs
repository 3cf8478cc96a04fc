//! References for the load benchmark: the least a server layer built on the
//! OpenTelemetry API does per request.
//!
//! - [`FloorLayer`]: extract the caller's context with the global
//!   propagator, start a SERVER span named by the method, with no
//!   attributes, make it current while the handler is polled, and end it
//!   when the response is ready. No semantic conventions, no body wrapping.
//! - [`ContextLayer`]: only extract and make a child context current for
//!   the handler (what keeps handler spans, log lines and outgoing calls in
//!   the trace), with no span at all.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use observability_core::opentelemetry::Context;
use observability_core::opentelemetry::global::{self, BoxedTracer};
use observability_core::opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, Tracer,
};

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

/// Only what keeps a trace's context for the handler: extract the caller's
/// context and make a child context current while the handler is polled,
/// with no span object and nothing recorded or exported.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ContextLayer;

impl<S> tower::Layer<S> for ContextLayer {
    type Service = ContextService<S>;

    fn layer(&self, inner: S) -> ContextService<S> {
        ContextService { inner, next: 1 }
    }
}

/// A child context per request, current while the handler is polled.
#[derive(Clone)]
pub(crate) struct ContextService<S> {
    inner: S,
    /// Span ids from a linear congruential sequence: cheap and non-zero.
    next: u64,
}

impl<S, B, R> tower::Service<Request<B>> for ContextService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let parent = observability_http::extract_context(request.headers());
        self.next = self
            .next
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let sc = {
            let span = parent.span();
            let p = span.span_context();
            SpanContext::new(
                p.trace_id(),
                SpanId::from(self.next | 1),
                p.trace_flags(),
                false,
                p.trace_state().clone(),
            )
        };
        let cx = parent.with_remote_span_context(sc);
        let inner = {
            let _attached = cx.clone().attach();
            self.inner.call(request)
        };
        ContextFuture { inner, cx }
    }
}

pin_project_lite::pin_project! {
    /// Polls the handler with the request's context current.
    pub(crate) struct ContextFuture<F> {
        #[pin]
        inner: F,
        cx: Context,
    }
}

impl<F: Future> Future for ContextFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _attached = this.cx.clone().attach();
        this.inner.poll(task)
    }
}
