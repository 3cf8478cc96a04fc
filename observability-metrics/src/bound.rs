//! Recording without finding the series again: a histogram of this
//! provider bound to one attribute set records straight into its buckets
//! (the OpenTelemetry API's bound instruments are experimental, and a
//! provider that does not implement them drops what they record, so
//! instrumentation that knows it records into this provider uses these),
//! and the provider `init()` installed, for such instrumentation to find.

use std::sync::{Arc, OnceLock, RwLock};

use opentelemetry::{InstrumentationScope, KeyValue};

use crate::MeterProvider;
use crate::aggregate::Buckets;
use crate::data::Number;
use crate::instrument::{Instrument, Series};

/// A histogram of a [`MeterProvider`], the same instrument as the one the
/// OpenTelemetry API gives for its name in its scope.
#[derive(Clone)]
pub struct Histogram(pub(crate) Arc<Instrument<Buckets>>);

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Histogram")
            .field(&self.0.descriptor.name)
            .finish()
    }
}

impl Histogram {
    /// The series of `attributes` as a handle (the overflow series when the
    /// cardinality limit is reached).
    pub fn bind(&self, attributes: &[KeyValue]) -> BoundHistogram {
        BoundHistogram {
            series: self.0.bind(attributes),
            instrument: Arc::clone(&self.0),
        }
    }

    /// Records `value` for `attributes`, with the current span as exemplar
    /// when the filter lets it.
    pub fn record(&self, value: f64, attributes: &[KeyValue]) {
        self.0.record(Number::F64(value), attributes);
    }
}

/// A histogram's series for one attribute set.
#[derive(Clone)]
pub struct BoundHistogram {
    instrument: Arc<Instrument<Buckets>>,
    series: Arc<Series<Buckets>>,
}

impl std::fmt::Debug for BoundHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundHistogram")
            .field("attributes", &self.series.attributes)
            .finish()
    }
}

impl BoundHistogram {
    /// Records `value`, with the current span as exemplar when the filter
    /// lets it.
    pub fn record(&self, value: f64) {
        self.instrument.record_in(&self.series, Number::F64(value));
    }
}

impl MeterProvider {
    /// The histogram `name` of `scope` (made if new, with these bounds).
    pub fn histogram(
        &self,
        scope: InstrumentationScope,
        name: &str,
        unit: &str,
        description: &str,
        bounds: Vec<f64>,
    ) -> Histogram {
        Histogram(self.histogram_instrument(scope, name, unit, description, bounds))
    }
}

fn global_cell() -> &'static RwLock<Option<MeterProvider>> {
    static GLOBAL: OnceLock<RwLock<Option<MeterProvider>>> = OnceLock::new();
    GLOBAL.get_or_init(|| RwLock::new(None))
}

/// Makes `provider` the one instrumentation finds with [`global`] (set next
/// to `opentelemetry::global::set_meter_provider`, as `init()` does).
pub fn set_global(provider: MeterProvider) {
    *global_cell().write().unwrap_or_else(|e| e.into_inner()) = Some(provider);
}

/// The provider [`set_global`] installed, if any.
pub fn global() -> Option<MeterProvider> {
    global_cell()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}
