//! Propagators: how trace context and baggage cross process boundaries
//! (the `observability-propagation` crate, re-exported).
//!
//! [`init`](crate::init) installs them globally according to
//! `OTEL_PROPAGATORS` (default `tracecontext,baggage`): `tracecontext`,
//! `baggage`, and with their features `b3`, `b3multi`, `jaeger`, `xray` and
//! `ottrace`, in any order, composed as the specification says (each
//! extracts in turn, a later one winning where it finds a context; all
//! inject). The W3C ones read every value of a header through
//! [`Extractor::get_all`](opentelemetry::propagation::Extractor::get_all); a
//! carrier that exposes only the first value makes repeated `traceparent`
//! headers undetectable.

pub use observability_propagation::*;

use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};

use crate::config::PropagatorKind;

/// The composite propagator for the resolved list (kinds whose feature is
/// not compiled in were warned about and left out when resolving).
pub(crate) fn build(kinds: &[PropagatorKind]) -> TextMapCompositePropagator {
    let list: Vec<Box<dyn TextMapPropagator + Send + Sync>> = kinds
        .iter()
        .filter_map(|k| -> Option<Box<dyn TextMapPropagator + Send + Sync>> {
            Some(match k {
                PropagatorKind::TraceContext => Box::new(TraceContextPropagator::new()),
                PropagatorKind::Baggage => Box::new(BaggagePropagator::new()),
                #[cfg(feature = "propagator-b3")]
                PropagatorKind::B3 => Box::new(B3Propagator::new(B3Encoding::SingleHeader)),
                #[cfg(feature = "propagator-b3")]
                PropagatorKind::B3Multi => Box::new(B3Propagator::new(B3Encoding::MultipleHeaders)),
                #[cfg(feature = "propagator-jaeger")]
                PropagatorKind::Jaeger => Box::new(JaegerPropagator::new()),
                #[cfg(feature = "propagator-xray")]
                PropagatorKind::Xray => Box::new(XrayPropagator::new()),
                #[cfg(feature = "propagator-ottrace")]
                PropagatorKind::OtTrace => Box::new(OtTracePropagator::new()),
                #[allow(unreachable_patterns)]
                _ => return None,
            })
        })
        .collect();
    TextMapCompositePropagator::new(list)
}
