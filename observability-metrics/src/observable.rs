//! Observable (asynchronous) instruments: their callbacks run at each
//! collection and observe into a list capped at the cardinality limit;
//! deltas of observable counters are taken against the last collection.

use std::sync::Mutex;
use std::time::SystemTime;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{AsyncInstrument, Callback};

use crate::config::{Kind, TemporalityPreference};
use crate::data::{Data, Metric, Number, NumberPoint, Temporality};
use crate::instrument::Descriptor;
use crate::provider::{Collect, metric};

/// An observable instrument: its callbacks run at each collection.
pub(crate) struct Observable<T> {
    pub(crate) descriptor: Descriptor,
    pub(crate) callbacks: Vec<Callback<T>>,
    pub(crate) limit: usize,
    pub(crate) start: SystemTime,
    /// The last cumulative values, for deltas.
    pub(crate) previous: Mutex<Vec<(Vec<KeyValue>, Number)>>,
}

/// What the callbacks observe into, capped at the cardinality limit.
pub(crate) struct Observer {
    points: Mutex<Vec<(Vec<KeyValue>, Number)>>,
    limit: usize,
}

impl Observer {
    fn push(&self, value: Number, attributes: &[KeyValue]) {
        let mut points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        if points.len() < self.limit {
            let mut attributes = attributes.to_vec();
            attributes.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
            attributes.dedup_by(|a, b| a.key == b.key);
            points.push((attributes, value));
        }
    }
}

impl AsyncInstrument<u64> for Observer {
    fn observe(&self, measurement: u64, attributes: &[KeyValue]) {
        self.push(
            Number::I64(measurement.min(i64::MAX as u64) as i64),
            attributes,
        );
    }
}
impl AsyncInstrument<i64> for Observer {
    fn observe(&self, measurement: i64, attributes: &[KeyValue]) {
        self.push(Number::I64(measurement), attributes);
    }
}
impl AsyncInstrument<f64> for Observer {
    fn observe(&self, measurement: f64, attributes: &[KeyValue]) {
        self.push(Number::F64(measurement), attributes);
    }
}

fn minus(a: Number, b: Number) -> Number {
    match (a, b) {
        (Number::I64(a), Number::I64(b)) => Number::I64(a.wrapping_sub(b)),
        (a, b) => Number::F64(a.as_f64() - b.as_f64()),
    }
}

impl<T: 'static> Collect for Observable<T>
where
    Observer: AsyncInstrument<T>,
    T: Send + std::marker::Sync,
{
    fn collect(&self, preference: TemporalityPreference) -> Option<Metric> {
        let observer = Observer {
            points: Mutex::new(Vec::new()),
            limit: self.limit,
        };
        for callback in &self.callbacks {
            callback(&observer);
        }
        let observed = observer
            .points
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let time = SystemTime::now();
        let temporality = preference.of(self.descriptor.kind);
        let mut previous = self.previous.lock().unwrap_or_else(|e| e.into_inner());
        let start = self.start;
        let points: Vec<NumberPoint> = observed
            .iter()
            .map(|(attributes, value)| {
                let value = match temporality {
                    Temporality::Cumulative => *value,
                    Temporality::Delta => previous
                        .iter()
                        .find(|(a, _)| a == attributes)
                        .map_or(*value, |(_, before)| minus(*value, *before)),
                };
                NumberPoint {
                    attributes: attributes.clone(),
                    start,
                    time,
                    value,
                    exemplars: Vec::new(),
                }
            })
            .collect();
        if temporality == Temporality::Delta {
            *previous = observed;
        }
        let data = match self.descriptor.kind {
            Kind::ObservableGauge => Data::Gauge { points },
            kind => Data::Sum {
                points,
                monotonic: kind == Kind::ObservableCounter,
                temporality,
            },
        };
        Some(metric(&self.descriptor, data))
    }
}
