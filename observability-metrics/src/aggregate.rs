//! The state of one series: atomic numbers and buckets, and exemplar slots
//! that never make a recording thread wait.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use opentelemetry::trace::{SpanId, TraceId};

use crate::data::{Exemplar, Number};

/// Whether an instrument records integers or floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumKind {
    I64,
    F64,
}

/// A number kept in an `AtomicU64`: an `i64` as its two's complement, an
/// `f64` as its bits.
#[derive(Debug)]
struct AtomicNumber(AtomicU64);

impl AtomicNumber {
    fn zero() -> Self {
        Self(AtomicU64::new(0))
    }

    fn add(&self, value: Number) {
        match value {
            Number::I64(v) => {
                self.0.fetch_add(v as u64, Ordering::Relaxed);
            }
            Number::F64(v) => add_f64(&self.0, v),
        }
    }

    fn store(&self, value: Number) {
        self.0.store(bits(value), Ordering::Relaxed);
    }

    fn read(&self, kind: NumKind, reset: bool) -> Number {
        let raw = if reset {
            self.0.swap(0, Ordering::Relaxed)
        } else {
            self.0.load(Ordering::Relaxed)
        };
        from_bits(kind, raw)
    }
}

fn bits(value: Number) -> u64 {
    match value {
        Number::I64(v) => v as u64,
        Number::F64(v) => v.to_bits(),
    }
}

fn from_bits(kind: NumKind, raw: u64) -> Number {
    match kind {
        NumKind::I64 => Number::I64(raw as i64),
        NumKind::F64 => Number::F64(f64::from_bits(raw)),
    }
}

/// Adds `v` to the float whose bits `cell` holds.
fn add_f64(cell: &AtomicU64, v: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some((f64::from_bits(old) + v).to_bits())
    });
}

/// Keeps `cell` at the lesser (`less`) or greater of itself and `v`.
fn bound_f64(cell: &AtomicU64, v: f64, less: bool) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        let old = f64::from_bits(old);
        let replace = if less { v < old } else { v > old };
        replace.then_some(v.to_bits())
    });
}

/// The span a measurement was made in, when it may become an exemplar.
pub(crate) type SpanRef = (TraceId, SpanId);

/// One exemplar, the last offered (the specification allows keeping the
/// last measurement per bucket). A slot another thread is writing is
/// skipped, never waited for.
#[derive(Debug, Default)]
pub(crate) struct ExemplarSlot(Mutex<Option<Exemplar>>);

impl ExemplarSlot {
    fn offer(&self, span: SpanRef, value: Number) {
        if let Ok(mut slot) = self.0.try_lock() {
            *slot = Some(Exemplar {
                trace_id: span.0,
                span_id: span.1,
                value,
                time: SystemTime::now(),
            });
        }
    }

    /// The exemplar, emptied when `reset` (delta temporality).
    fn read(&self, reset: bool) -> Option<Exemplar> {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if reset { slot.take() } else { *slot }
    }
}

/// What a series of one kind of instrument keeps.
pub(crate) trait Aggregator: Send + Sync + 'static {
    /// What every series of an instrument shares (a histogram's bounds).
    type Config: Send + Sync + 'static;
    /// What a collection reads.
    type Point;
    fn new(config: &Self::Config) -> Self;
    fn record(&self, config: &Self::Config, value: Number, span: Option<SpanRef>);
    /// The state since the start (or the last reset), `None` when nothing
    /// was recorded since the last reset.
    fn read(&self, config: &Self::Config, kind: NumKind, reset: bool) -> Option<Self::Point>;
}

/// A number, whether anything was recorded, and one exemplar: the state
/// of a sum (counters, up-down counters) and of a last value (gauges).
#[derive(Debug)]
pub(crate) struct Cell {
    value: AtomicNumber,
    recorded: AtomicBool,
    exemplar: ExemplarSlot,
}

impl Cell {
    fn new() -> Self {
        Self {
            value: AtomicNumber::zero(),
            recorded: AtomicBool::new(false),
            exemplar: ExemplarSlot::default(),
        }
    }

    fn offer(&self, value: Number, span: Option<SpanRef>) {
        if let Some(span) = span {
            self.exemplar.offer(span, value);
        }
    }

    /// The value and exemplar when something was recorded (since the last
    /// reset, when `reset`; emptied then).
    fn read(&self, kind: NumKind, reset: bool) -> Option<NumberRead> {
        let recorded = if reset {
            self.recorded.swap(false, Ordering::Relaxed)
        } else {
            self.recorded.load(Ordering::Relaxed)
        };
        recorded.then(|| NumberRead {
            value: self.value.read(kind, reset),
            exemplar: self.exemplar.read(reset),
        })
    }
}

/// A sum (counters, up-down counters).
#[derive(Debug)]
pub(crate) struct Sum(Cell);

/// A last value (gauges).
#[derive(Debug)]
pub(crate) struct LastValue(Cell);

/// What a sum or last value reads as.
pub(crate) struct NumberRead {
    pub(crate) value: Number,
    pub(crate) exemplar: Option<Exemplar>,
}

impl Aggregator for Sum {
    type Config = ();
    type Point = NumberRead;

    fn new(_: &()) -> Self {
        Self(Cell::new())
    }

    fn record(&self, _: &(), value: Number, span: Option<SpanRef>) {
        self.0.value.add(value);
        if !self.0.recorded.load(Ordering::Relaxed) {
            self.0.recorded.store(true, Ordering::Relaxed);
        }
        self.0.offer(value, span);
    }

    fn read(&self, _: &(), kind: NumKind, reset: bool) -> Option<NumberRead> {
        self.0.read(kind, reset)
    }
}

impl Aggregator for LastValue {
    type Config = ();
    type Point = NumberRead;

    fn new(_: &()) -> Self {
        Self(Cell::new())
    }

    fn record(&self, _: &(), value: Number, span: Option<SpanRef>) {
        self.0.value.store(value);
        self.0.recorded.store(true, Ordering::Relaxed);
        self.0.offer(value, span);
    }

    fn read(&self, _: &(), kind: NumKind, _reset: bool) -> Option<NumberRead> {
        // A gauge keeps its last value across collections.
        self.0.read(kind, false)
    }
}

/// An explicit-bucket histogram: a count per bucket, sum, min and max,
/// and an exemplar slot per bucket (the aligned-histogram reservoir).
#[derive(Debug)]
pub(crate) struct Buckets {
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    exemplars: Box<[ExemplarSlot]>,
}

/// What a histogram series reads as.
pub(crate) struct BucketsRead {
    pub(crate) counts: Vec<u64>,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) exemplars: Vec<Exemplar>,
}

impl Aggregator for Buckets {
    /// The upper bounds, increasing.
    type Config = Vec<f64>;
    type Point = BucketsRead;

    fn new(bounds: &Vec<f64>) -> Self {
        let n = bounds.len() + 1;
        Self {
            counts: (0..n).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
            exemplars: (0..n).map(|_| ExemplarSlot::default()).collect(),
        }
    }

    /// Records `value` in its bucket (a bucket holds values up to and
    /// including its bound); NaN is ignored.
    fn record(&self, bounds: &Vec<f64>, value: Number, span: Option<SpanRef>) {
        let v = value.as_f64();
        if v.is_nan() {
            return;
        }
        let index = bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len());
        self.counts[index].fetch_add(1, Ordering::Relaxed);
        add_f64(&self.sum, v);
        bound_f64(&self.min, v, true);
        bound_f64(&self.max, v, false);
        if let Some(span) = span {
            self.exemplars[index].offer(span, value);
        }
    }

    fn read(&self, _: &Vec<f64>, _: NumKind, reset: bool) -> Option<BucketsRead> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| {
                if reset {
                    c.swap(0, Ordering::Relaxed)
                } else {
                    c.load(Ordering::Relaxed)
                }
            })
            .collect();
        if counts.iter().all(|&c| c == 0) {
            return None;
        }
        let take = |cell: &AtomicU64, empty: f64| {
            f64::from_bits(if reset {
                cell.swap(empty.to_bits(), Ordering::Relaxed)
            } else {
                cell.load(Ordering::Relaxed)
            })
        };
        Some(BucketsRead {
            counts,
            sum: take(&self.sum, 0.0),
            min: take(&self.min, f64::INFINITY),
            max: take(&self.max, f64::NEG_INFINITY),
            exemplars: self
                .exemplars
                .iter()
                .filter_map(|e| e.read(reset))
                .collect(),
        })
    }
}
