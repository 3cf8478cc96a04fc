#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod aggregate;
mod bound;
mod config;
mod data;
mod instrument;
mod observable;
pub mod otlp;
pub mod prometheus;
mod provider;
mod service;

pub use bound::{BoundHistogram, Histogram, global, set_global};
pub use config::{DEFAULT_CARDINALITY_LIMIT, ExemplarFilter, MetricsConfig, TemporalityPreference};
pub use data::{
    Collection, Data, Exemplar, HistogramPoint, Metric, Number, NumberPoint, ScopeMetrics,
    Temporality,
};
pub use provider::{DEFAULT_BOUNDS, MeterProvider};
pub use service::PrometheusService;
