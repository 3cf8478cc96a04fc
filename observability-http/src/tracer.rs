//! Where the layers get their tracer: the global provider (resolved at the
//! first request, so a layer built before `init()` still works), or a
//! provider given to the builder. With the global provider comes what its
//! sampler drops unseen, as registered by whoever installed it
//! ([`observability_propagation::sampling`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use observability_propagation::sampling::{self, DropRule};
use opentelemetry::InstrumentationScope;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::TracerProvider;

#[derive(Clone)]
pub(crate) struct TracerSource {
    scope: &'static str,
    tracer: Arc<OnceLock<Resolved>>,
}

/// A tracer, and what its provider's sampler drops unseen when known.
struct Resolved {
    tracer: BoxedTracer,
    drop_rule: Option<DropRule>,
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
        });
        Self {
            scope: scope_name,
            tracer: Arc::new(cell),
        }
    }

    fn resolved(&self) -> &Resolved {
        self.tracer.get_or_init(|| Resolved {
            drop_rule: sampling::global_drop_rule(),
            tracer: opentelemetry::global::tracer_with_scope(scope(self.scope)),
        })
    }

    pub(crate) fn get(&self) -> &BoxedTracer {
        &self.resolved().tracer
    }

    /// The tracer, and what its sampler drops unseen.
    pub(crate) fn with_drop_rule(&self) -> (&BoxedTracer, Option<&DropRule>) {
        let resolved = self.resolved();
        (&resolved.tracer, resolved.drop_rule.as_ref())
    }
}
