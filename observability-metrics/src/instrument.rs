//! Instruments: the series of each attribute set, found without a lock
//! that writers hold (a read lock, taken for writing only when a new set
//! appears), capped in number with an overflow series.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use opentelemetry::metrics::SyncInstrument;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue, Value};

use crate::aggregate::{Aggregator, NumKind, SpanRef};
use crate::config::{ExemplarFilter, Kind};
use crate::data::{Number, Temporality};

/// The attribute the overflow series carries (specification "Metrics
/// SDK", "Overflow attribute").
pub(crate) const OVERFLOW_KEY: &str = "otel.metric.overflow";

/// Name, description, unit and kind of an instrument.
#[derive(Clone, Debug)]
pub(crate) struct Descriptor {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) unit: String,
    pub(crate) kind: Kind,
    pub(crate) num: NumKind,
}

/// One attribute set and its state.
#[derive(Debug)]
pub(crate) struct Series<A> {
    /// Sorted by key.
    pub(crate) attributes: Vec<KeyValue>,
    /// As first recorded: callers usually give a set in the same order
    /// every time, so it is compared in that order first.
    as_given: Vec<KeyValue>,
    pub(crate) state: A,
}

/// The key of the series map is already a hash.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type SeriesMap<A> = HashMap<u64, Vec<Arc<Series<A>>>, BuildHasherDefault<Prehashed>>;

/// A synchronous instrument with aggregator `A`.
pub(crate) struct Instrument<A: Aggregator> {
    pub(crate) descriptor: Descriptor,
    config: A::Config,
    series: RwLock<SeriesMap<A>>,
    overflow: Arc<Series<A>>,
    overflowed: AtomicBool,
    limit: usize,
    filter: ExemplarFilter,
    /// When the instrument was made, or last collected with a reset.
    start: Mutex<SystemTime>,
}

impl<A: Aggregator> std::fmt::Debug for Instrument<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrument")
            .field("descriptor", &self.descriptor)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregator> Instrument<A> {
    pub(crate) fn new(
        descriptor: Descriptor,
        config: A::Config,
        limit: usize,
        filter: ExemplarFilter,
    ) -> Self {
        let overflow = Arc::new(Series {
            attributes: vec![KeyValue::new(OVERFLOW_KEY, true)],
            as_given: Vec::new(),
            state: A::new(&config),
        });
        Self {
            descriptor,
            series: RwLock::new(SeriesMap::default()),
            overflow,
            overflowed: AtomicBool::new(false),
            // One place is the overflow series'.
            limit: limit.saturating_sub(1).max(1),
            filter,
            start: Mutex::new(SystemTime::now()),
            config,
        }
    }

    /// Records `value` for `attributes`.
    pub(crate) fn record(&self, value: Number, attributes: &[KeyValue]) {
        let span = exemplar_span(self.filter);
        let hash = hash_set(attributes);
        {
            let map = self.series.read().unwrap_or_else(|e| e.into_inner());
            if let Some(series) = find(&map, hash, attributes) {
                series.state.record(&self.config, value, span);
                return;
            }
        }
        self.insert(hash, attributes)
            .state
            .record(&self.config, value, span);
    }

    /// The series of `attributes`, made if new (the overflow series past
    /// the limit): a handle that records without finding it again.
    pub(crate) fn bind(&self, attributes: &[KeyValue]) -> Arc<Series<A>> {
        let hash = hash_set(attributes);
        {
            let map = self.series.read().unwrap_or_else(|e| e.into_inner());
            if let Some(series) = find(&map, hash, attributes) {
                return Arc::clone(series);
            }
        }
        self.insert(hash, attributes)
    }

    /// Records `value` in `series` (one of this instrument's).
    pub(crate) fn record_in(&self, series: &Series<A>, value: Number) {
        series
            .state
            .record(&self.config, value, exemplar_span(self.filter));
    }

    /// The series of `attributes`, added under the write lock unless it is
    /// there by now; the overflow series once the limit is reached.
    fn insert(&self, hash: u64, attributes: &[KeyValue]) -> Arc<Series<A>> {
        let mut map = self.series.write().unwrap_or_else(|e| e.into_inner());
        if let Some(series) = find(&map, hash, attributes) {
            return Arc::clone(series);
        }
        let len: usize = map.values().map(Vec::len).sum();
        if len >= self.limit {
            self.overflowed.store(true, Ordering::Relaxed);
            return Arc::clone(&self.overflow);
        }
        let series = Arc::new(Series {
            attributes: sorted(attributes),
            as_given: attributes.to_vec(),
            state: A::new(&self.config),
        });
        map.entry(hash).or_default().push(Arc::clone(&series));
        series
    }

    /// Reads every series that has something to report, with the start of
    /// the interval and whether the instrument reports deltas.
    pub(crate) fn read(
        &self,
        temporality: Temporality,
        mut each: impl FnMut(&[KeyValue], A::Point),
    ) -> SystemTime {
        let reset = temporality == Temporality::Delta;
        let now = SystemTime::now();
        let start = {
            let mut start = self.start.lock().unwrap_or_else(|e| e.into_inner());
            let was = *start;
            if reset {
                *start = now;
            }
            was
        };
        let map = self.series.read().unwrap_or_else(|e| e.into_inner());
        let kind = self.descriptor.num;
        for series in map.values().flatten() {
            if let Some(point) = series.state.read(&self.config, kind, reset) {
                each(&series.attributes, point);
            }
        }
        if self.overflowed.load(Ordering::Relaxed)
            && let Some(point) = self.overflow.state.read(&self.config, kind, reset)
        {
            each(&self.overflow.attributes, point);
        }
        start
    }

    pub(crate) fn config(&self) -> &A::Config {
        &self.config
    }
}

/// The span current for a measurement, if the filter lets it become an
/// exemplar.
fn exemplar_span(filter: ExemplarFilter) -> Option<SpanRef> {
    if filter == ExemplarFilter::AlwaysOff {
        return None;
    }
    Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        let eligible = sc.is_valid() && (sc.is_sampled() || filter == ExemplarFilter::AlwaysOn);
        eligible.then(|| (sc.trace_id(), sc.span_id()))
    })
}

/// The series of `attributes` (in any order) in `map`.
fn find<'a, A>(
    map: &'a SeriesMap<A>,
    hash: u64,
    attributes: &[KeyValue],
) -> Option<&'a Arc<Series<A>>> {
    let candidates = map.get(&hash)?;
    candidates
        .iter()
        .find(|s| in_order(&s.as_given, attributes))
        .or_else(|| {
            candidates
                .iter()
                .find(|s| same_set(&s.attributes, attributes))
        })
}

/// Whether two strings are equal, without reading them when they are the
/// same memory (static keys and interned values usually are).
fn same_str(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
}

fn same_kv(a: &KeyValue, b: &KeyValue) -> bool {
    same_str(a.key.as_str(), b.key.as_str())
        && match (&a.value, &b.value) {
            (Value::String(x), Value::String(y)) => same_str(x.as_str(), y.as_str()),
            (x, y) => x == y,
        }
}

/// Whether `stored` and `given` hold the same attributes in the same order.
fn in_order(stored: &[KeyValue], given: &[KeyValue]) -> bool {
    stored.len() == given.len() && stored.iter().zip(given).all(|(a, b)| same_kv(a, b))
}

/// Whether `stored` (sorted, unique keys) holds the same attributes as
/// `given` in any order.
fn same_set(stored: &[KeyValue], given: &[KeyValue]) -> bool {
    stored.len() == given.len() && given.iter().all(|kv| stored.iter().any(|s| same_kv(s, kv)))
}

/// `attributes` sorted by key, the first of a repeated key kept.
fn sorted(attributes: &[KeyValue]) -> Vec<KeyValue> {
    let mut out: Vec<KeyValue> = Vec::with_capacity(attributes.len());
    for kv in attributes {
        if !out.iter().any(|o| o.key == kv.key) {
            out.push(kv.clone());
        }
    }
    out.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    out
}

/// A hash of an attribute set that does not depend on its order: the sum
/// of its members' hashes. A member's hash reads a string's length and its
/// first and last eight bytes only: equal sets are compared member by
/// member anyway, so a rare collision costs a comparison, never a wrong
/// series.
fn hash_set(attributes: &[KeyValue]) -> u64 {
    attributes.iter().fold(0u64, |acc, kv| {
        let key = sample(kv.key.as_str().as_bytes());
        let value = match &kv.value {
            Value::Bool(b) => 1 + u64::from(*b),
            Value::I64(i) => 3 ^ (*i as u64),
            Value::F64(f) => 5 ^ f.to_bits(),
            Value::String(s) => sample(s.as_str().as_bytes()),
            other => sample(other.as_str().as_bytes()),
        };
        acc.wrapping_add(mix(key ^ value.rotate_left(17)))
    })
}

/// A string's length and first and last eight bytes, folded into a word.
fn sample(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let folded = if n >= 8 {
        word(0) ^ word(n - 8).rotate_left(32)
    } else {
        bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    folded ^ ((n as u64) << 56)
}

fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An instrument as the API sees it, for values of type `T`.
pub(crate) struct Sync<A: Aggregator>(pub(crate) std::sync::Arc<Instrument<A>>);

macro_rules! sync_instrument {
    ($t:ty, $convert:expr) => {
        impl<A: Aggregator> SyncInstrument<$t> for Sync<A> {
            fn measure(&self, measurement: $t, attributes: &[KeyValue]) {
                let convert: fn($t) -> Number = $convert;
                self.0.record(convert(measurement), attributes);
            }
        }
    };
}

sync_instrument!(u64, |v| Number::I64(v.min(i64::MAX as u64) as i64));
sync_instrument!(i64, Number::I64);
sync_instrument!(f64, Number::F64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_hash_ignores_order() {
        let a = [KeyValue::new("a", 1), KeyValue::new("b", "x")];
        let b = [KeyValue::new("b", "x"), KeyValue::new("a", 1)];
        assert_eq!(hash_set(&a), hash_set(&b));
        assert_ne!(hash_set(&a), hash_set(&[KeyValue::new("a", 2)]));
        assert!(same_set(&sorted(&a), &b));
        assert!(!same_set(&sorted(&a), &a[..1]));
    }
}
