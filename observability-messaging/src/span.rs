//! PRODUCER and CONSUMER spans, created through the OpenTelemetry API and
//! made the current context while the user's code runs.

use std::borrow::Cow;
use std::fmt::{self, Display};
use std::future::Future;
use std::sync::Arc;

use opentelemetry::context::FutureExt;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Link, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, InstrumentationScope, KeyValue};

pub(crate) const MESSAGING_SYSTEM: &str = "messaging.system";
pub(crate) const MESSAGING_OPERATION_TYPE: &str = "messaging.operation.type";
pub(crate) const MESSAGING_OPERATION_NAME: &str = "messaging.operation.name";
pub(crate) const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
pub(crate) const MESSAGING_MESSAGE_ID: &str = "messaging.message.id";
pub(crate) const ERROR_TYPE: &str = "error.type";

/// The attributes every messaging span carries (messaging semantic
/// conventions): `messaging.system`, `messaging.operation.type`,
/// `messaging.operation.name` and `messaging.destination.name`, with room for
/// `extra` more.
pub(crate) fn convention_attributes(
    system: &'static str,
    operation_type: &'static str,
    operation_name: &'static str,
    destination: impl Into<opentelemetry::StringValue>,
    extra: usize,
) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(4 + extra);
    attributes.push(KeyValue::new(MESSAGING_SYSTEM, system));
    attributes.push(KeyValue::new(MESSAGING_OPERATION_TYPE, operation_type));
    attributes.push(KeyValue::new(MESSAGING_OPERATION_NAME, operation_name));
    attributes.push(KeyValue::new(
        MESSAGING_DESTINATION_NAME,
        destination.into(),
    ));
    attributes
}

/// Why a consumer wrapper's `run` failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessError<E> {
    /// The handler failed: the consumer span is marked failed and the message
    /// is left for redelivery (or nacked).
    Handler(E),
    /// The handler succeeded but settling the message (deleting it from SQS,
    /// acking it on RabbitMQ) failed: it will be delivered again.
    Settle(Box<dyn std::error::Error + Send + Sync>),
}

impl<E: Display> Display for ProcessError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The handler's own error, as it wrote it.
            Self::Handler(e) => e.fmt(f),
            Self::Settle(e) => write!(f, "the message was handled but could not be settled: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ProcessError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Handler(e) => Some(e),
            Self::Settle(e) => Some(e.as_ref()),
        }
    }
}

/// How a consumer span relates to the producer's context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParentMode {
    /// The producer's span is the parent: one trace from producer to
    /// consumer (the default).
    #[default]
    Parent,
    /// The consumer span starts its own trace (child of the current context)
    /// and links to the producer's span.
    Link,
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("observability-messaging")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Where the wrappers take their tracer: the global provider (looked up at
/// each span, so wrappers made before `init()` still work) unless a
/// provider was given.
#[derive(Clone, Default)]
pub(crate) struct TracerChoice(Option<Arc<BoxedTracer>>);

impl fmt::Debug for TracerChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "TracerChoice::Provider"
        } else {
            "TracerChoice::Global"
        })
    }
}

impl TracerChoice {
    /// The tracer of `provider`.
    pub(crate) fn from_provider<P>(provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        Self(Some(Arc::new(BoxedTracer::new(Box::new(
            provider.tracer_with_scope(scope()),
        )))))
    }
}

/// The `tracer_provider` option every wrapper's builder has (a builder with
/// a `tracer: TracerChoice` field).
macro_rules! tracer_provider_option {
    () => {
        /// Uses this provider instead of the global one (for a service with a
        /// provider of its own).
        pub fn tracer_provider<P>(mut self, provider: &P) -> Self
        where
            P: opentelemetry::trace::TracerProvider,
            P::Tracer: Send + Sync + 'static,
            <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
        {
            self.tracer = $crate::span::TracerChoice::from_provider(provider);
            self
        }
    };
}
pub(crate) use tracer_provider_option;

/// Starts a span and returns the context holding it.
pub(crate) fn start(
    tracer: &TracerChoice,
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    parent: &Context,
    attributes: Vec<KeyValue>,
    links: Vec<Link>,
) -> Context {
    start_at(tracer, name, kind, parent, attributes, links, None)
}

/// [`start`], with a start time in the past (a span whose links are only
/// known once the operation is done).
pub(crate) fn start_at(
    tracer: &TracerChoice,
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    parent: &Context,
    attributes: Vec<KeyValue>,
    links: Vec<Link>,
    start_time: Option<std::time::SystemTime>,
) -> Context {
    let global;
    let tracer: &BoxedTracer = match &tracer.0 {
        Some(tracer) => tracer,
        None => {
            global = opentelemetry::global::tracer_with_scope(scope());
            &global
        }
    };
    let mut builder = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .with_links(links);
    if let Some(start) = start_time {
        builder = builder.with_start_time(start);
    }
    parent.with_span(builder.start_with_context(tracer, parent))
}

/// Runs `f` with `cx` current, records an error result on the span, ends it.
pub(crate) async fn run_in<F, Fut, T, E>(cx: Context, f: F) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let future = {
        let _attached = cx.clone().attach();
        f()
    };
    let result = future.with_context(cx.clone()).await;
    if let Err(error) = &result {
        fail(&cx, "handler", error);
    }
    cx.span().end();
    result
}

/// Marks the span failed.
pub(crate) fn fail(cx: &Context, error_type: &'static str, error: &dyn Display) {
    let span = cx.span();
    span.set_attribute(KeyValue::new(ERROR_TYPE, error_type));
    span.set_status(Status::error(error.to_string()));
}

/// What settling a message failed with.
#[cfg(any(feature = "amqp", feature = "sqs"))]
pub(crate) type SettleError = Box<dyn std::error::Error + Send + Sync>;

/// The shape every consumer wrapper shares: a CONSUMER span for the message,
/// the handler run inside it, then the message settled — `settle(true)`
/// after success (its failure is the caller's `ProcessError::Settle`),
/// `settle(false)` after a failure (its own failure is ignored: the
/// handler's error is the one to report).
#[cfg(any(feature = "amqp", feature = "sqs"))]
pub(crate) async fn process<F, Fut, T, E, S, SFut>(
    tracer: &TracerChoice,
    name: String,
    producer: &Context,
    mode: ParentMode,
    attributes: Vec<KeyValue>,
    handler: F,
    settle: S,
) -> Result<T, ProcessError<E>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
    S: FnOnce(bool) -> SFut,
    SFut: Future<Output = Result<(), SettleError>>,
{
    let timed = crate::metrics::Timed::start(&attributes);
    let cx = consumer_span(tracer, name, producer, mode, attributes);
    let metrics_cx = cx.clone();
    let result = run_in(cx, || async move {
        match handler().await {
            Ok(value) => {
                settle(true).await.map_err(ProcessError::Settle)?;
                Ok(value)
            }
            Err(error) => {
                let _ = settle(false).await;
                Err(ProcessError::Handler(error))
            }
        }
    })
    .await;
    let _attached = metrics_cx.attach();
    timed.processed(match &result {
        Ok(_) => None,
        Err(ProcessError::Handler(_)) => Some("handler"),
        Err(ProcessError::Settle(_)) => Some("settle"),
    });
    result
}

/// The consumer span for a message whose producer context is `producer`.
pub(crate) fn consumer_span(
    tracer: &TracerChoice,
    name: String,
    producer: &Context,
    mode: ParentMode,
    attributes: Vec<KeyValue>,
) -> Context {
    let producer_sc = producer.span().span_context().clone();
    match mode {
        ParentMode::Parent if producer_sc.is_valid() => start(
            tracer,
            name,
            SpanKind::Consumer,
            producer,
            attributes,
            Vec::new(),
        ),
        _ => {
            let links = if producer_sc.is_valid() {
                vec![Link::with_context(producer_sc)]
            } else {
                Vec::new()
            };
            start(
                tracer,
                name,
                SpanKind::Consumer,
                &Context::current(),
                attributes,
                links,
            )
        }
    }
}
