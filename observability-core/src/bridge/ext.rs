//! OpenTelemetry operations on `tracing` spans made by `init()`'s
//! subscriber.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, Status, TraceContextExt};
use opentelemetry::{Context, Key, KeyValue, Value};
use tracing_subscriber::Registry;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::{State, add_link, context_of};

/// OpenTelemetry operations on a `tracing` span: its context (to propagate
/// or to read its ids), its parent (a context extracted from a message or
/// request), links, attributes, status and events without `tracing` fields.
///
/// For spans of the subscriber [`init`](crate::init) installs (and of
/// [`TelemetryGuard::dispatch`](crate::TelemetryGuard::dispatch) and
/// [`ServiceTelemetry`](crate::ServiceTelemetry)); on a span of another
/// subscriber each call does nothing (the context is empty, `set_parent`
/// says [`SetParentError::LayerNotFound`]). For a subscriber built with
/// `tracing-opentelemetry`, use its own `OpenTelemetrySpanExt`.
///
/// ```
/// use observability_core::OpenTelemetrySpanExt;
/// use observability_core::opentelemetry::trace::TraceContextExt;
///
/// let span = tracing::info_span!("process");
/// let trace_id = span.context().span().span_context().trace_id();
/// ```
pub trait OpenTelemetrySpanExt {
    /// Makes `cx`'s span the parent of this span (a remote parent extracted
    /// from a message or request). The span is decided on again by the
    /// sampler under its new parent. Call it before the span is first
    /// entered; after that the span has started and keeps its parent
    /// ([`SetParentError::AlreadyStarted`]).
    fn set_parent(&self, cx: Context) -> Result<(), SetParentError>;

    /// Links this span to `cx` (a span it follows from, such as the
    /// producer of a message it processes). Invalid contexts are ignored.
    fn add_link(&self, cx: SpanContext);

    /// [`add_link`](Self::add_link) with attributes on the link.
    fn add_link_with_attributes(&self, cx: SpanContext, attributes: Vec<KeyValue>);

    /// The context holding this span: its trace and span ids, to inject
    /// into an outgoing request or message. Starts the span if it has not
    /// started.
    fn context(&self) -> Context;

    /// Sets an attribute on this span, without a `tracing` field.
    fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>);

    /// Sets this span's status.
    fn set_status(&self, status: Status);

    /// Adds an event to this span, now, without `tracing::event!`.
    fn add_event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>);

    /// [`add_event`](Self::add_event) at `timestamp`.
    fn add_event_with_timestamp(
        &self,
        name: impl Into<Cow<'static, str>>,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    );
}

/// Why [`OpenTelemetrySpanExt::set_parent`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetParentError {
    /// The span is not one of this crate's subscriber (another subscriber,
    /// or a disabled span).
    LayerNotFound,
    /// The span has started (it was entered, or its context read): its
    /// parent is set.
    AlreadyStarted,
}

impl fmt::Display for SetParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LayerNotFound => "the span was not made by observability's subscriber",
            Self::AlreadyStarted => "the span has started: set its parent before entering it",
        })
    }
}

impl std::error::Error for SetParentError {}

/// Runs `f` on `span`'s registry record, if the span is one of a
/// subscriber built on `tracing-subscriber`'s registry.
fn with_span<T>(span: &tracing::Span, f: impl FnOnce(&SpanRef<'_, Registry>) -> T) -> Option<T> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let span = registry.span(id)?;
        Some(f(&span))
    })
    .flatten()
}

impl OpenTelemetrySpanExt for tracing::Span {
    fn set_parent(&self, cx: Context) -> Result<(), SetParentError> {
        with_span(self, |span| {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<State>() {
                Some(State::Pending(pending)) => {
                    pending.reparent(cx);
                    Ok(())
                }
                Some(State::Started { .. } | State::Starting) => {
                    Err(SetParentError::AlreadyStarted)
                }
                None => Err(SetParentError::LayerNotFound),
            }
        })
        .unwrap_or(Err(SetParentError::LayerNotFound))
    }

    fn add_link(&self, cx: SpanContext) {
        self.add_link_with_attributes(cx, Vec::new());
    }

    fn add_link_with_attributes(&self, cx: SpanContext, attributes: Vec<KeyValue>) {
        if cx.is_valid() {
            with_span(self, |span| add_link(span, cx, attributes));
        }
    }

    fn context(&self) -> Context {
        with_span(self, context_of).flatten().unwrap_or_default()
    }

    fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>) {
        let kv = KeyValue::new(key, value);
        with_span(self, |span| {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<State>() {
                Some(State::Pending(p)) => p.attributes.push(kv),
                Some(State::Started {
                    cx,
                    recording: true,
                }) => cx.span().set_attribute(kv),
                _ => {}
            }
        });
    }

    fn set_status(&self, status: Status) {
        with_span(self, |span| {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<State>() {
                Some(State::Pending(p)) => p.status = status,
                Some(State::Started {
                    cx,
                    recording: true,
                }) => cx.span().set_status(status),
                _ => {}
            }
        });
    }

    fn add_event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        self.add_event_with_timestamp(name, SystemTime::now(), attributes);
    }

    fn add_event_with_timestamp(
        &self,
        name: impl Into<Cow<'static, str>>,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) {
        let name = name.into();
        with_span(self, |span| {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<State>() {
                Some(State::Pending(p)) if p.sampled => p.events.push(
                    opentelemetry::trace::Event::new(name, timestamp, attributes, 0),
                ),
                Some(State::Started {
                    cx,
                    recording: true,
                }) => cx
                    .span()
                    .add_event_with_timestamp(name, timestamp, attributes),
                _ => {}
            }
        });
    }
}
