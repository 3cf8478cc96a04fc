//! What a [`MeterProvider`](crate::MeterProvider) is built with.

use crate::data::Temporality;

/// Which measurements may become exemplars (`OTEL_METRICS_EXEMPLAR_FILTER`,
/// specification "Metrics SDK", "ExemplarFilter").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExemplarFilter {
    /// Those made inside a sampled span (the default).
    #[default]
    TraceBased,
    /// Every measurement with a valid span context current.
    AlwaysOn,
    /// None.
    AlwaysOff,
}

/// The temporality preference of an exporter
/// (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`, OTLP exporter
/// specification): which instruments report deltas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TemporalityPreference {
    /// Every instrument cumulative (the default, and what Prometheus needs).
    #[default]
    Cumulative,
    /// Counters, observable counters and histograms as deltas; up-down
    /// counters cumulative.
    Delta,
    /// Counters and histograms as deltas; observable counters and up-down
    /// counters cumulative.
    LowMemory,
}

/// The kinds of instrument, for temporality and encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    UpDownCounter,
    ObservableCounter,
    ObservableUpDownCounter,
    Gauge,
    ObservableGauge,
    Histogram,
}

impl TemporalityPreference {
    /// The temporality of `kind` under this preference.
    pub(crate) fn of(self, kind: Kind) -> Temporality {
        use Kind::*;
        match (self, kind) {
            (Self::Delta, Counter | ObservableCounter | Histogram)
            | (Self::LowMemory, Counter | Histogram) => Temporality::Delta,
            _ => Temporality::Cumulative,
        }
    }
}

/// The default cap on distinct attribute sets per instrument (the
/// specification's default cardinality limit).
pub const DEFAULT_CARDINALITY_LIMIT: usize = 2000;

/// The settings of a [`MeterProvider`](crate::MeterProvider).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Which measurements may become exemplars.
    pub exemplar_filter: ExemplarFilter,
    /// Which instruments report deltas.
    pub temporality: TemporalityPreference,
    /// Distinct attribute sets per instrument at most; measurements with a
    /// new set past it go to one overflow series
    /// (`otel.metric.overflow=true`).
    pub cardinality_limit: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            exemplar_filter: ExemplarFilter::default(),
            temporality: TemporalityPreference::default(),
            cardinality_limit: DEFAULT_CARDINALITY_LIMIT,
        }
    }
}

impl MetricsConfig {
    /// Sets the exemplar filter.
    pub fn with_exemplar_filter(mut self, filter: ExemplarFilter) -> Self {
        self.exemplar_filter = filter;
        self
    }

    /// Sets the temporality preference.
    pub fn with_temporality(mut self, temporality: TemporalityPreference) -> Self {
        self.temporality = temporality;
        self
    }

    /// Sets the cardinality limit (at least 2: one series and the
    /// overflow).
    pub fn with_cardinality_limit(mut self, limit: usize) -> Self {
        self.cardinality_limit = limit.max(2);
        self
    }
}
