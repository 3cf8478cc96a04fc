//! Where the layers get their tracer: the global provider (resolved at the
//! first request, so a layer built before `init()` still works), or a
//! provider given to the builder. With the global provider comes what its
//! sampler drops unseen and how its spans start without the tracer, as
//! registered by whoever installed it ([`observability_propagation::sampling`],
//! [`observability_propagation::starter`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use observability_propagation::sampling::{self, DropRule};
use observability_propagation::starter::{self, SpanStarter};
use opentelemetry::InstrumentationScope;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{SpanContext, TracerProvider};

use crate::ids;

#[derive(Clone)]
pub(crate) struct TracerSource {
    scope: &'static str,
    tracer: Arc<OnceLock<Resolved>>,
}

/// A tracer, and when known what its provider's sampler drops unseen and
/// how its spans start without it.
struct Resolved {
    tracer: BoxedTracer,
    drop_rule: Option<DropRule>,
    starter: Option<(Arc<dyn SpanStarter>, InstrumentationScope)>,
}

impl fmt::Debug for TracerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracerSource")
            .field("scope", &self.scope)
            .field("resolved", &self.tracer.get().is_some())
            .finish()
    }
}

fn scope(name: &'static str) -> InstrumentationScope {
    InstrumentationScope::builder(Cow::Borrowed(name))
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

impl TracerSource {
    pub(crate) fn global(scope: &'static str) -> Self {
        Self {
            scope,
            tracer: Arc::new(OnceLock::new()),
        }
    }

    pub(crate) fn from_provider<P>(scope_name: &'static str, provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        let tracer = BoxedTracer::new(Box::new(provider.tracer_with_scope(scope(scope_name))));
        let cell = OnceLock::new();
        // Nothing is known of this provider's sampler.
        let _ = cell.set(Resolved {
            tracer,
            drop_rule: None,
            starter: None,
        });
        Self {
            scope: scope_name,
            tracer: Arc::new(cell),
        }
    }

    #[inline]
    fn resolved(&self) -> &Resolved {
        self.tracer.get_or_init(|| Resolved {
            drop_rule: sampling::global_drop_rule(),
            starter: starter::global_span_starter().map(|s| (s, scope(self.scope))),
            tracer: opentelemetry::global::tracer_with_scope(scope(self.scope)),
        })
    }

    /// How the provider's spans start without its tracer, and the scope
    /// they are of, when known (see [`starter`]).
    #[inline]
    pub(crate) fn starter(&self) -> Option<(&dyn SpanStarter, &InstrumentationScope)> {
        let (starter, scope) = self.resolved().starter.as_ref()?;
        Some((starter.as_ref(), scope))
    }

    /// The tracer, and what its sampler drops unseen.
    #[inline]
    pub(crate) fn with_drop_rule(&self) -> (&BoxedTracer, Option<&DropRule>) {
        let resolved = self.resolved();
        (&resolved.tracer, resolved.drop_rule.as_ref())
    }
}

/// The span context of a span `rule` drops under `parent` (the parent's
/// span context, `None` for a root), counted as dropped: the one the SDK
/// would give it (see [`sampling::dropped_span_context`]). `None` when the
/// sampler has to be asked.
#[inline]
pub(crate) fn dropped_child(rule: &DropRule, parent: Option<&SpanContext>) -> Option<SpanContext> {
    if !rule.drops(parent) {
        return None;
    }
    rule.count_drop();
    let trace_id = parent.map_or_else(ids::trace_id, SpanContext::trace_id);
    Some(sampling::dropped_span_context(
        trace_id,
        ids::span_id(),
        parent,
    ))
}
