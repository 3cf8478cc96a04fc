//! What a collection returns: the metrics of every scope with their points,
//! ready for an encoder (OTLP, Prometheus, OpenMetrics) or a test.

use std::time::SystemTime;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry::{InstrumentationScope, KeyValue};

/// How the points of a sum or histogram relate to earlier collections
/// (OTLP's `AggregationTemporality`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temporality {
    /// Since the start of the process (or of the series).
    Cumulative,
    /// Since the previous collection.
    Delta,
}

/// A number as recorded: integer instruments stay integers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// From an `i64` or `u64` instrument.
    I64(i64),
    /// From an `f64` instrument.
    F64(f64),
}

impl Number {
    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            Self::I64(v) => v as f64,
            Self::F64(v) => v,
        }
    }
}

/// A measurement kept with the trace it was made in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    /// The trace of the span current when it was recorded.
    pub trace_id: TraceId,
    /// That span.
    pub span_id: SpanId,
    /// The measurement.
    pub value: Number,
    /// When it was recorded.
    pub time: SystemTime,
}

/// One point of a sum or gauge.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberPoint {
    /// The attribute set, sorted by key.
    pub attributes: Vec<KeyValue>,
    /// The start of the interval (sums).
    pub start: SystemTime,
    /// The time of the collection.
    pub time: SystemTime,
    /// The value.
    pub value: Number,
    /// Exemplars, at most one per series.
    pub exemplars: Vec<Exemplar>,
}

/// One point of an explicit-bucket histogram.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramPoint {
    /// The attribute set, sorted by key.
    pub attributes: Vec<KeyValue>,
    /// The start of the interval.
    pub start: SystemTime,
    /// The time of the collection.
    pub time: SystemTime,
    /// Measurements in the interval.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest, when any.
    pub min: Option<f64>,
    /// The largest, when any.
    pub max: Option<f64>,
    /// Upper bounds of the buckets (inclusive); one bucket more than
    /// bounds, the last up to infinity.
    pub bounds: Vec<f64>,
    /// Measurements per bucket (not cumulative).
    pub counts: Vec<u64>,
    /// At most one exemplar per bucket, in bucket order.
    pub exemplars: Vec<Exemplar>,
}

/// The points of one metric.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// Counters and up-down counters.
    Sum {
        /// The points.
        points: Vec<NumberPoint>,
        /// Whether it only goes up (a counter).
        monotonic: bool,
        /// Cumulative or delta.
        temporality: Temporality,
    },
    /// Gauges: the last value.
    Gauge {
        /// The points.
        points: Vec<NumberPoint>,
    },
    /// Histograms.
    Histogram {
        /// The points.
        points: Vec<HistogramPoint>,
        /// Cumulative or delta.
        temporality: Temporality,
    },
}

/// One metric (one instrument) and its points.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The instrument's name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its unit (UCUM, as given).
    pub unit: String,
    /// The points.
    pub data: Data,
}

impl Metric {
    /// Whether the metric has no point (nothing to export).
    pub fn is_empty(&self) -> bool {
        match &self.data {
            Data::Sum { points, .. } | Data::Gauge { points } => points.is_empty(),
            Data::Histogram { points, .. } => points.is_empty(),
        }
    }
}

/// The metrics of one instrumentation scope (one meter).
#[derive(Clone, Debug, PartialEq)]
pub struct ScopeMetrics {
    /// The meter's scope.
    pub scope: InstrumentationScope,
    /// Its metrics.
    pub metrics: Vec<Metric>,
}

/// Everything one collection returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Collection {
    /// Metrics per scope.
    pub scopes: Vec<ScopeMetrics>,
}

impl Collection {
    /// The metric named `name`, in any scope.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.scopes
            .iter()
            .flat_map(|s| &s.metrics)
            .find(|m| m.name == name)
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.scopes.iter().all(|s| s.metrics.is_empty())
    }
}
