//! Spans the global tracer provider can start without its tracer.
//!
//! Asking a tracer for a span goes through the SDK's generic path: a span
//! builder, the sampler's full result, a span boxed once by the SDK and once
//! more by the global tracer, and on end a copy into the form processors
//! take. Whoever installs the global tracer provider
//! (`observability_core::init()`) can register a [`SpanStarter`] here that
//! makes the same span (the same sampling decision, span context, limits and
//! processors) in one step; the HTTP layers use it for their spans when one
//! is registered, and the tracer otherwise. Nothing downstream can tell the
//! difference: the span in the context is a span like any other.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, RwLock};

use opentelemetry::trace::{SpanContext, SpanKind};
use opentelemetry::{Context, InstrumentationScope, KeyValue};

/// A span's name, with its attributes pushed onto the list given, asked for
/// only when the span records. The list is empty, but it may have room an
/// earlier span's attributes left (a starter can reuse it): push, do not
/// replace it.
pub type Describe<'a> = &'a mut dyn FnMut(&mut Vec<KeyValue>) -> Cow<'static, str>;

/// Starts spans as the global tracer provider's tracers would.
pub trait SpanStarter: Send + Sync + fmt::Debug {
    /// Starts a span of `scope` and `kind`, child of `parent_span` (the span
    /// context of the parent context's span when it has one, valid or not;
    /// `None` when it has no span), and returns `context` with the span as
    /// its span. `describe` gives the name and pushes the attributes, and is
    /// called only when the sampler keeps the span.
    ///
    /// `None` when the provider cannot start the span this way (it was shut
    /// down, or `context` suppresses telemetry): ask its tracer.
    fn start(
        &self,
        scope: &InstrumentationScope,
        kind: SpanKind,
        context: &Context,
        parent_span: Option<&SpanContext>,
        describe: Describe<'_>,
    ) -> Option<Context>;
}

static STARTER: RwLock<Option<Arc<dyn SpanStarter>>> = RwLock::new(None);

/// Registers how spans of the global tracer provider start without its
/// tracer, or `None` when they cannot. Whoever installs another global
/// tracer provider afterwards clears it, or the layers keep starting their
/// spans into the first one's processors.
pub fn set_global_span_starter(starter: Option<Arc<dyn SpanStarter>>) {
    match STARTER.write() {
        Ok(mut slot) => *slot = starter,
        Err(poisoned) => *poisoned.into_inner() = starter,
    }
}

/// What [`set_global_span_starter`] registered last.
pub fn global_span_starter() -> Option<Arc<dyn SpanStarter>> {
    match STARTER.read() {
        Ok(slot) => slot.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}
