//! Span and trace ids for the span contexts the layers make without the
//! SDK (a span its sampler drops unseen): random, from a generator
//! per thread (SplitMix64) seeded from the standard library's random keys.
//! Ids of spans that are never recorded only need to be unlikely to repeat.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

use opentelemetry::trace::{SpanId, TraceId};

thread_local! {
    static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0_u8));
}

/// The next number of this thread's sequence.
#[inline]
fn next() -> u64 {
    STATE.with(|state| {
        let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A random span id (never the invalid all-zero one).
#[inline]
pub(crate) fn span_id() -> SpanId {
    SpanId::from(next().max(1))
}

/// A random trace id (never the invalid all-zero one).
pub(crate) fn trace_id() -> TraceId {
    TraceId::from((u128::from(next()) << 64) | u128::from(next().max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_do_not_repeat() {
        let ids: std::collections::HashSet<SpanId> = (0..10_000).map(|_| span_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(!ids.contains(&SpanId::INVALID));
        assert_ne!(trace_id(), trace_id());
        assert_ne!(trace_id(), TraceId::INVALID);
    }
}
