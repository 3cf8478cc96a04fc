//! The meter provider: meters per scope, their instruments, observable
//! instruments' callbacks, and collection into a [`Collection`].

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use opentelemetry::InstrumentationScope;
use opentelemetry::metrics::{
    AsyncInstrument, AsyncInstrumentBuilder, Callback, Counter, Gauge, Histogram, HistogramBuilder,
    InstrumentBuilder, InstrumentProvider, Meter, ObservableCounter, ObservableGauge,
    ObservableUpDownCounter, UpDownCounter,
};

use crate::aggregate::{Aggregator, Buckets, LastValue, NumKind, Sum};
use crate::config::{Kind, MetricsConfig, TemporalityPreference};
use crate::data::{
    Collection, Data, HistogramPoint, Metric, NumberPoint, ScopeMetrics, Temporality,
};
use crate::instrument::{Descriptor, Instrument, Sync};
use crate::observable::{Observable, Observer};

/// The histogram bounds when none are given (specification "Metrics SDK",
/// "Explicit Bucket Histogram Aggregation").
pub const DEFAULT_BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// Instrument names longer than this are cut (the specification's limit).
const MAX_NAME: usize = 255;

/// A source of metrics, as collection sees it.
pub(crate) trait Collect: Send + std::marker::Sync {
    fn collect(&self, preference: TemporalityPreference) -> Option<Metric>;
}

struct Entry {
    name: String,
    kind: Kind,
    collect: Arc<dyn Collect>,
    any: Arc<dyn Any + Send + std::marker::Sync>,
}

struct Scope {
    scope: InstrumentationScope,
    entries: Vec<Entry>,
}

struct Registry {
    config: MetricsConfig,
    scopes: Mutex<Vec<Scope>>,
    /// One collection at a time (delta resets must not interleave).
    collecting: Mutex<()>,
}

/// An OpenTelemetry [`MeterProvider`](opentelemetry::metrics::MeterProvider)
/// whose instruments keep exemplars, collected on demand by an exporter or
/// a scrape. Clones share the same instruments.
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use observability_metrics::{MeterProvider, MetricsConfig};
///
/// let provider = MeterProvider::new(MetricsConfig::default());
/// let orders = provider.meter("shop").u64_counter("orders").build();
/// orders.add(1, &[]);
/// let collected = provider.collect();
/// assert!(collected.metric("orders").is_some());
/// ```
#[derive(Clone)]
pub struct MeterProvider {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for MeterProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterProvider")
            .field("config", &self.registry.config)
            .finish_non_exhaustive()
    }
}

impl MeterProvider {
    /// A provider with `config`.
    pub fn new(config: MetricsConfig) -> Self {
        Self {
            registry: Arc::new(Registry {
                config,
                scopes: Mutex::new(Vec::new()),
                collecting: Mutex::new(()),
            }),
        }
    }

    /// The settings it was made with.
    pub fn config(&self) -> &MetricsConfig {
        &self.registry.config
    }

    /// Reads every instrument (running the observable instruments'
    /// callbacks), with the temporality of the configured preference.
    pub fn collect(&self) -> Collection {
        let _one = self
            .registry
            .collecting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let sources: Vec<(InstrumentationScope, Vec<Arc<dyn Collect>>)> = self
            .registry
            .scopes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|s| {
                let collects = s.entries.iter().map(|e| Arc::clone(&e.collect)).collect();
                (s.scope.clone(), collects)
            })
            .collect();
        let preference = self.registry.config.temporality;
        let scopes = sources
            .into_iter()
            .map(|(scope, collects)| ScopeMetrics {
                scope,
                metrics: collects
                    .iter()
                    .filter_map(|c| c.collect(preference))
                    .filter(|m| !m.is_empty())
                    .collect(),
            })
            .filter(|s| !s.metrics.is_empty())
            .collect();
        Collection { scopes }
    }

    /// The instrument named `name` of `kind` in `scope`, made by `make` if
    /// there is none yet (the specification asks for the same instrument
    /// when the same identity is asked twice).
    fn instrument<T: Any + Send + std::marker::Sync>(
        &self,
        scope: &InstrumentationScope,
        name: &str,
        kind: Kind,
        make: impl FnOnce() -> (Arc<T>, Arc<dyn Collect>),
    ) -> Arc<T> {
        let mut scopes = self
            .registry
            .scopes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let entries = scope_entries(&mut scopes, scope);
        let existing = entries
            .iter()
            .filter(|e| e.kind == kind && e.name.eq_ignore_ascii_case(name))
            .find_map(|e| Arc::clone(&e.any).downcast::<T>().ok());
        if let Some(existing) = existing {
            return existing;
        }
        let (made, collect) = make();
        entries.push(Entry {
            name: name.to_owned(),
            kind,
            collect,
            any: Arc::clone(&made) as Arc<dyn Any + Send + std::marker::Sync>,
        });
        made
    }
}

/// The instruments of `scope`, added if new.
fn scope_entries<'a>(
    scopes: &'a mut Vec<Scope>,
    scope: &InstrumentationScope,
) -> &'a mut Vec<Entry> {
    let index = match scopes.iter().position(|s| &s.scope == scope) {
        Some(index) => index,
        None => {
            scopes.push(Scope {
                scope: scope.clone(),
                entries: Vec::new(),
            });
            scopes.len() - 1
        }
    };
    &mut scopes[index].entries
}

impl MeterProvider {
    /// The histogram instrument `name` of `scope`, made if new.
    pub(crate) fn histogram_instrument(
        &self,
        scope: InstrumentationScope,
        name: &str,
        unit: &str,
        description: &str,
        bounds: Vec<f64>,
    ) -> Arc<Instrument<Buckets>> {
        let scoped = ScopeProvider {
            provider: self.clone(),
            scope,
        };
        let d = descriptor(
            name,
            Some(description),
            Some(unit),
            Kind::Histogram,
            NumKind::F64,
        );
        scoped.sync::<Buckets>(d, valid_bounds(Some(&bounds)))
    }
}

impl opentelemetry::metrics::MeterProvider for MeterProvider {
    fn meter_with_scope(&self, scope: InstrumentationScope) -> Meter {
        Meter::new(Arc::new(ScopeProvider {
            provider: self.clone(),
            scope,
        }))
    }
}

/// The instruments of one meter.
struct ScopeProvider {
    provider: MeterProvider,
    scope: InstrumentationScope,
}

fn descriptor(
    name: &str,
    description: Option<&str>,
    unit: Option<&str>,
    kind: Kind,
    num: NumKind,
) -> Descriptor {
    let mut name = name.to_owned();
    if name.len() > MAX_NAME {
        let mut cut = MAX_NAME;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    Descriptor {
        name,
        description: description.unwrap_or_default().to_owned(),
        unit: unit.unwrap_or_default().to_owned(),
        kind,
        num,
    }
}

/// Bounds a histogram may use: finite and increasing, else the default.
fn valid_bounds(bounds: Option<&Vec<f64>>) -> Vec<f64> {
    match bounds {
        Some(b) if b.iter().all(|v| v.is_finite()) && b.windows(2).all(|w| w[0] < w[1]) => {
            b.clone()
        }
        _ => DEFAULT_BOUNDS.to_vec(),
    }
}

impl ScopeProvider {
    fn sync<A: Aggregator>(&self, descriptor: Descriptor, config: A::Config) -> Arc<Instrument<A>>
    where
        Arc<Instrument<A>>: IntoCollect,
    {
        let settings = &self.provider.registry.config;
        let (name, kind) = (descriptor.name.clone(), descriptor.kind);
        self.provider.instrument(&self.scope, &name, kind, || {
            let made = Arc::new(Instrument::<A>::new(
                descriptor,
                config,
                settings.cardinality_limit,
                settings.exemplar_filter,
            ));
            let collect = Arc::clone(&made).into_collect();
            (made, collect)
        })
    }

    fn observable<T: Send + std::marker::Sync + 'static>(
        &self,
        descriptor: Descriptor,
        callbacks: Vec<Callback<T>>,
    ) where
        Observer: AsyncInstrument<T>,
    {
        // Every registration adds its callbacks (they are not shared).
        let kind = descriptor.kind;
        let name = descriptor.name.clone();
        let limit = self.provider.registry.config.cardinality_limit;
        let made = Arc::new(Observable {
            descriptor,
            callbacks,
            limit,
            start: SystemTime::now(),
            previous: Mutex::new(Vec::new()),
        });
        let collect: Arc<dyn Collect> = made.clone();
        let mut scopes = self
            .provider
            .registry
            .scopes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        scope_entries(&mut scopes, &self.scope).push(Entry {
            name,
            kind,
            collect,
            any: made,
        });
    }
}

/// Turns a typed instrument into what collection reads.
trait IntoCollect {
    fn into_collect(self) -> Arc<dyn Collect>;
}

impl IntoCollect for Arc<Instrument<Sum>> {
    fn into_collect(self) -> Arc<dyn Collect> {
        self
    }
}
impl IntoCollect for Arc<Instrument<LastValue>> {
    fn into_collect(self) -> Arc<dyn Collect> {
        self
    }
}
impl IntoCollect for Arc<Instrument<Buckets>> {
    fn into_collect(self) -> Arc<dyn Collect> {
        self
    }
}

fn number_points<A>(instrument: &Instrument<A>, temporality: Temporality) -> Vec<NumberPoint>
where
    A: Aggregator<Point = crate::aggregate::NumberRead>,
{
    let time = SystemTime::now();
    let mut points = Vec::new();
    let start = instrument.read(temporality, |attributes, read| {
        points.push(NumberPoint {
            attributes: attributes.to_vec(),
            start: time,
            time,
            value: read.value,
            exemplars: read.exemplar.into_iter().collect(),
        });
    });
    for p in &mut points {
        p.start = start;
    }
    points
}

pub(crate) fn metric(descriptor: &Descriptor, data: Data) -> Metric {
    Metric {
        name: descriptor.name.clone(),
        description: descriptor.description.clone(),
        unit: descriptor.unit.clone(),
        data,
    }
}

impl Collect for Instrument<Sum> {
    fn collect(&self, preference: TemporalityPreference) -> Option<Metric> {
        let temporality = preference.of(self.descriptor.kind);
        let points = number_points(self, temporality);
        let monotonic = self.descriptor.kind == Kind::Counter;
        Some(metric(
            &self.descriptor,
            Data::Sum {
                points,
                monotonic,
                temporality,
            },
        ))
    }
}

impl Collect for Instrument<LastValue> {
    fn collect(&self, _: TemporalityPreference) -> Option<Metric> {
        let points = number_points(self, Temporality::Cumulative);
        Some(metric(&self.descriptor, Data::Gauge { points }))
    }
}

impl Collect for Instrument<Buckets> {
    fn collect(&self, preference: TemporalityPreference) -> Option<Metric> {
        let temporality = preference.of(Kind::Histogram);
        let time = SystemTime::now();
        let bounds = self.config().clone();
        let mut points = Vec::new();
        let start = self.read(temporality, |attributes, read| {
            let count = read.counts.iter().sum();
            points.push(HistogramPoint {
                attributes: attributes.to_vec(),
                start: time,
                time,
                count,
                sum: read.sum,
                min: (count > 0).then_some(read.min),
                max: (count > 0).then_some(read.max),
                bounds: bounds.clone(),
                counts: read.counts,
                exemplars: read.exemplars,
            });
        });
        for p in &mut points {
            p.start = start;
        }
        Some(metric(
            &self.descriptor,
            Data::Histogram {
                points,
                temporality,
            },
        ))
    }
}

/// The descriptor of an instrument builder's instrument.
macro_rules! descriptor_of {
    ($builder:expr, $kind:expr, $num:expr) => {
        descriptor(
            &$builder.name,
            $builder.description.as_deref(),
            $builder.unit.as_deref(),
            $kind,
            $num,
        )
    };
}

macro_rules! sync_method {
    ($method:ident, $ty:ident<$t:ty>, $agg:ty, $kind:expr, $num:expr) => {
        fn $method(&self, builder: InstrumentBuilder<'_, $ty<$t>>) -> $ty<$t> {
            let d = descriptor_of!(builder, $kind, $num);
            $ty::new(Arc::new(Sync(self.sync::<$agg>(d, ()))))
        }
    };
}

macro_rules! histogram_method {
    ($method:ident, $t:ty, $num:expr) => {
        fn $method(&self, builder: HistogramBuilder<'_, Histogram<$t>>) -> Histogram<$t> {
            let d = descriptor_of!(builder, Kind::Histogram, $num);
            let bounds = valid_bounds(builder.boundaries.as_ref());
            Histogram::new(Arc::new(Sync(self.sync::<Buckets>(d, bounds))))
        }
    };
}

macro_rules! observable_method {
    ($method:ident, $ty:ident<$t:ty>, $kind:expr, $num:expr) => {
        fn $method(&self, builder: AsyncInstrumentBuilder<'_, $ty<$t>, $t>) -> $ty<$t> {
            let d = descriptor_of!(builder, $kind, $num);
            self.observable(d, builder.callbacks);
            $ty::new()
        }
    };
}

impl InstrumentProvider for ScopeProvider {
    sync_method!(u64_counter, Counter<u64>, Sum, Kind::Counter, NumKind::I64);
    sync_method!(f64_counter, Counter<f64>, Sum, Kind::Counter, NumKind::F64);
    sync_method!(
        i64_up_down_counter,
        UpDownCounter<i64>,
        Sum,
        Kind::UpDownCounter,
        NumKind::I64
    );
    sync_method!(
        f64_up_down_counter,
        UpDownCounter<f64>,
        Sum,
        Kind::UpDownCounter,
        NumKind::F64
    );
    sync_method!(u64_gauge, Gauge<u64>, LastValue, Kind::Gauge, NumKind::I64);
    sync_method!(i64_gauge, Gauge<i64>, LastValue, Kind::Gauge, NumKind::I64);
    sync_method!(f64_gauge, Gauge<f64>, LastValue, Kind::Gauge, NumKind::F64);
    histogram_method!(f64_histogram, f64, NumKind::F64);
    histogram_method!(u64_histogram, u64, NumKind::I64);
    observable_method!(
        u64_observable_counter,
        ObservableCounter<u64>,
        Kind::ObservableCounter,
        NumKind::I64
    );
    observable_method!(
        f64_observable_counter,
        ObservableCounter<f64>,
        Kind::ObservableCounter,
        NumKind::F64
    );
    observable_method!(
        i64_observable_up_down_counter,
        ObservableUpDownCounter<i64>,
        Kind::ObservableUpDownCounter,
        NumKind::I64
    );
    observable_method!(
        f64_observable_up_down_counter,
        ObservableUpDownCounter<f64>,
        Kind::ObservableUpDownCounter,
        NumKind::F64
    );
    observable_method!(
        u64_observable_gauge,
        ObservableGauge<u64>,
        Kind::ObservableGauge,
        NumKind::I64
    );
    observable_method!(
        i64_observable_gauge,
        ObservableGauge<i64>,
        Kind::ObservableGauge,
        NumKind::I64
    );
    observable_method!(
        f64_observable_gauge,
        ObservableGauge<f64>,
        Kind::ObservableGauge,
        NumKind::F64
    );
}
