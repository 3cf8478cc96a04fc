//! What the global tracer provider's sampler decides before it sees a span.
//!
//! A parent-based sampler drops every span whose parent was not sampled
//! (a caller whose `traceparent` flags say `00`, or a span of this process
//! dropped that way), and `always_off` drops every span, whatever their
//! names and attributes. Whoever installs the global tracer provider
//! (`observability_core::init()`) registers that here, with a way to count
//! what is dropped this way; the HTTP layers read it when they resolve
//! their tracer and, for such a span, make the child span context the
//! sampler would have made (the parent's trace, flags and state, a new span
//! id, not sampled) without starting a span that could only be dropped.
//! Nothing downstream can tell the difference: the span would not have
//! recorded.

use std::fmt;
use std::sync::{Arc, RwLock};

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId};

/// The spans the global tracer provider's sampler drops unseen.
#[derive(Clone)]
pub struct DropRule {
    /// Every span, not only those under an unsampled parent.
    everything: bool,
    on_drop: Arc<dyn Fn() + Send + Sync>,
}

impl fmt::Debug for DropRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropRule")
            .field("everything", &self.everything)
            .finish_non_exhaustive()
    }
}

impl DropRule {
    /// A parent-based sampler: spans under a parent (remote or local) that
    /// was not sampled are dropped. `on_drop` is called for each span
    /// dropped this way (spans started, by sampling result, are counted).
    pub fn parent_based(on_drop: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self {
            everything: false,
            on_drop,
        }
    }

    /// A sampler that drops every span (`always_off`).
    pub fn everything(on_drop: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self {
            everything: true,
            on_drop,
        }
    }

    /// Whether a span whose parent is `parent` (its valid span context, or
    /// `None` for a root) is dropped unseen.
    #[inline]
    pub fn drops(&self, parent: Option<&SpanContext>) -> bool {
        self.everything || parent.is_some_and(|sc| sc.is_valid() && !sc.is_sampled())
    }

    /// Counts one span dropped without a span being started.
    #[inline]
    pub fn count_drop(&self) {
        (self.on_drop)();
    }
}

/// The span context the SDK gives a span its sampler dropped: `trace_id`
/// (the parent's, or a new one for a root), a new `span_id`, flags `00`,
/// local, and the parent's trace state. The W3C propagator still sends
/// the caller's `random` flag, kept beside the context when extracted.
#[inline]
pub fn dropped_span_context(
    trace_id: TraceId,
    span_id: SpanId,
    parent: Option<&SpanContext>,
) -> SpanContext {
    let state = parent.map(|p| p.trace_state().clone()).unwrap_or_default();
    SpanContext::new(trace_id, span_id, TraceFlags::default(), false, state)
}

static RULE: RwLock<Option<DropRule>> = RwLock::new(None);

/// Registers what the global tracer provider's sampler drops unseen, or
/// `None` when nothing is known (another provider was installed).
pub fn set_global_drop_rule(rule: Option<DropRule>) {
    match RULE.write() {
        Ok(mut slot) => *slot = rule,
        Err(poisoned) => *poisoned.into_inner() = rule,
    }
}

/// What [`set_global_drop_rule`] registered last.
pub fn global_drop_rule() -> Option<DropRule> {
    match RULE.read() {
        Ok(slot) => slot.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    fn remote(flags: u8) -> SpanContext {
        SpanContext::new(
            TraceId::from(1),
            SpanId::from(2),
            TraceFlags::new(flags),
            true,
            TraceState::default(),
        )
    }

    #[test]
    fn parent_based_drops_only_under_an_unsampled_parent() {
        let rule = DropRule::parent_based(Arc::new(|| {}));
        assert!(rule.drops(Some(&remote(0))));
        assert!(rule.drops(Some(&remote(2))));
        assert!(!rule.drops(Some(&remote(1))));
        assert!(!rule.drops(Some(&remote(3))));
        assert!(!rule.drops(None));
        assert!(!rule.drops(Some(&SpanContext::empty_context())));
        let off = DropRule::everything(Arc::new(|| {}));
        assert!(off.drops(None) && off.drops(Some(&remote(1))));
    }
}
