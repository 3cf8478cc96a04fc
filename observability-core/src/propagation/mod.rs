//! Propagators: how trace context and baggage cross process boundaries.
//!
//! [`init`](crate::init) installs them globally according to
//! `OTEL_PROPAGATORS` (default `tracecontext,baggage`). Both read every value
//! of a header through [`Extractor::get_all`](opentelemetry::propagation::Extractor::get_all);
//! a carrier that exposes only the first value makes repeated `traceparent`
//! headers undetectable.

mod baggage;
mod trace_context;

pub use baggage::BaggagePropagator;
pub use trace_context::{RANDOM_FLAG, TraceContextPropagator};

use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};

use crate::config::PropagatorKind;

/// The composite propagator for the resolved list.
pub(crate) fn build(kinds: &[PropagatorKind]) -> TextMapCompositePropagator {
    let list: Vec<Box<dyn TextMapPropagator + Send + Sync>> = kinds
        .iter()
        .map(|k| -> Box<dyn TextMapPropagator + Send + Sync> {
            match k {
                PropagatorKind::TraceContext => Box::new(TraceContextPropagator::new()),
                PropagatorKind::Baggage => Box::new(BaggagePropagator::new()),
            }
        })
        .collect();
    TextMapCompositePropagator::new(list)
}
