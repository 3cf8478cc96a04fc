//! References for the load benchmark: the least a server layer built on the
//! OpenTelemetry API does per request.
//!
//! - [`Reference::Floor`]: extract the caller's context with the global
//!   propagator, start a SERVER span named by the method, with no
//!   attributes, make it current while the handler is polled, and end it
//!   when the response is ready. No semantic conventions, no body wrapping.
//! - [`Reference::Context`]: only extract and make a child context current
//!   for the handler (what keeps handler spans, log lines and outgoing calls
//!   in the trace), with no span at all.
//! - [`Reference::Lean`]: the same with the least work the API allows: the
//!   three W3C headers looked up, parsed by the W3C propagator without a
//!   carrier, a child context made current in `call` and in each poll, the
//!   response passed on untouched. No configuration, sampling decision,
//!   metrics or span: the floor of any layer that keeps the handler's
//!   `Context::current()` right, which a sampled-out request costs at least.

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
use observability_core::propagation::{W3cHeaders, W3cPropagator};

/// Which reference a [`ReferenceService`] measures; a tower layer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reference {
    /// A bare SERVER span per request, made current and ended.
    Floor,
    /// A child context per request, made current; no span.
    Context,
    /// A child context per request from the W3C headers read directly,
    /// made current; no span.
    Lean,
}

impl<S> tower::Layer<S> for Reference {
    type Service = ReferenceService<S>;

    fn layer(&self, inner: S) -> ReferenceService<S> {
        let tracer = match self {
            Reference::Floor => Some(Arc::new(global::tracer("http-bench-floor"))),
            Reference::Context | Reference::Lean => None,
        };
        ReferenceService {
            inner,
            tracer,
            lean: matches!(self, Reference::Lean),
            next: 1,
        }
    }
}

/// The service a [`Reference`] wraps around `S`.
#[derive(Clone)]
pub(crate) struct ReferenceService<S> {
    inner: S,
    /// The floor's tracer; `None` for the context-only reference.
    tracer: Option<Arc<BoxedTracer>>,
    /// Reads the W3C headers directly ([`Reference::Lean`]).
    lean: bool,
    /// The context-only reference's span ids, from a linear congruential
    /// sequence: cheap and non-zero.
    next: u64,
}

impl<S> ReferenceService<S> {
    /// A child of `parent` with the next span id, and no span object.
    fn child_context(&mut self, parent: &Context) -> Context {
        let span = parent.span();
        self.child_of(parent, span.span_context())
    }

    /// `cx` with a child of `p` as its span context, with the next span id.
    fn child_of(&mut self, cx: &Context, p: &SpanContext) -> Context {
        self.next = self
            .next
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        cx.with_remote_span_context(SpanContext::new(
            p.trace_id(),
            SpanId::from(self.next | 1),
            p.trace_flags(),
            false,
            p.trace_state().clone(),
        ))
    }
}

impl<S, B, R> tower::Service<Request<B>> for ReferenceService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ReferenceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if self.lean {
            // One pass over the headers, the values parsed without a
            // carrier, one context: the child of the caller's span.
            let mut w3c = W3cHeaders::default();
            for (name, value) in request.headers() {
                match name.as_str() {
                    "traceparent" => w3c.traceparent = Some(value.as_bytes()),
                    "tracestate" => w3c.tracestate = value.to_str().ok(),
                    "baggage" => w3c.baggage = value.to_str().ok(),
                    _ => {}
                }
            }
            let parent = W3cPropagator::new().extract_parts(&w3c);
            let cx = match parent.span_context {
                Some(sc) => self.child_of(&parent.context, &sc),
                None => parent.context,
            };
            return self.attached_call(request, cx, false);
        }
        let parent = observability_http::extract_context(request.headers());
        let (cx, end_span) = match &self.tracer {
            Some(tracer) => {
                let span = tracer
                    .span_builder(request.method().as_str().to_owned())
                    .with_kind(SpanKind::Server)
                    .start_with_context(&**tracer, &parent);
                (parent.with_span(span), true)
            }
            None => (self.child_context(&parent), false),
        };
        self.attached_call(request, cx, end_span)
    }
}

impl<S> ReferenceService<S> {
    /// Calls the inner service with `cx` current; the future keeps it.
    fn attached_call<B>(
        &mut self,
        request: Request<B>,
        cx: Context,
        end_span: bool,
    ) -> ReferenceFuture<S::Future>
    where
        S: tower::Service<Request<B>>,
    {
        let inner = {
            let _attached = cx.clone().attach();
            self.inner.call(request)
        };
        ReferenceFuture {
            inner,
            cx,
            end_span,
        }
    }
}

pin_project_lite::pin_project! {
    /// Polls the handler with the request's context current; ends its span,
    /// if it has one, with the response.
    pub(crate) struct ReferenceFuture<F> {
        #[pin]
        inner: F,
        cx: Context,
        end_span: bool,
    }
}

impl<F: Future> Future for ReferenceFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _attached = this.cx.clone().attach();
        let output = this.inner.poll(task);
        if *this.end_span && output.is_ready() {
            this.cx.span().end();
        }
        output
    }
}
