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

/// Installs the propagators globally: the W3C ones alone (the default) as
/// one [`W3cPropagator`], which the server layer recognises and reads the
/// headers for directly; any other list as the composite.
pub(crate) fn install_global(kinds: &[PropagatorKind]) {
    use PropagatorKind::{Baggage, TraceContext};
    match kinds {
        [TraceContext] => {
            opentelemetry::global::set_text_map_propagator(W3cPropagator::trace_context_only());
        }
        [TraceContext, Baggage] | [Baggage, TraceContext] => {
            opentelemetry::global::set_text_map_propagator(W3cPropagator::new());
        }
        _ => opentelemetry::global::set_text_map_propagator(build(kinds)),
    }
}

#[cfg(all(test, feature = "propagators"))]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;
    use std::collections::HashMap;

    /// The specification's composite: each extracts in turn, a later one
    /// winning where it finds a context; every one injects.
    #[test]
    fn later_propagators_win_and_all_inject() {
        let headers: HashMap<String, String> = [
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let trace_of = |kinds: &[PropagatorKind]| {
            let cx = build(kinds).extract(&headers);
            cx.span().span_context().trace_id().to_string()
        };
        use PropagatorKind::{B3, TraceContext, Xray};
        assert_eq!(
            trace_of(&[TraceContext, B3]),
            "80f198ee56343ba864fe8b2a57d3eff7"
        );
        assert_eq!(
            trace_of(&[B3, TraceContext]),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        // A propagator that finds nothing leaves the earlier one's context.
        assert_eq!(
            trace_of(&[TraceContext, Xray]),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let cx = build(&[TraceContext]).extract(&headers);
        let mut out: HashMap<String, String> = HashMap::new();
        build(&[TraceContext, B3, Xray]).inject_context(&cx, &mut out);
        assert!(out.contains_key("traceparent") && out.contains_key("b3"));
        assert!(out.contains_key("x-amzn-trace-id"), "{out:?}");
    }
}
