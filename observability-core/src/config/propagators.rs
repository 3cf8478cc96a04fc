//! Which propagators `OTEL_PROPAGATORS` names.

use crate::env::{self, Env, Warnings};

/// The propagators `OTEL_PROPAGATORS` can name that this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PropagatorKind {
    TraceContext,
    Baggage,
    /// B3, single header.
    B3,
    /// B3, multiple headers.
    B3Multi,
    Jaeger,
    Xray,
    OtTrace,
}

pub(super) fn resolve_propagators(env: &Env, w: &mut Warnings) -> Vec<PropagatorKind> {
    let default = vec![PropagatorKind::TraceContext, PropagatorKind::Baggage];
    let Some(value) = env.get(env::OTEL_PROPAGATORS) else {
        return default;
    };
    let mut out = Vec::new();
    let mut none = false;
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let kind = match item.to_ascii_lowercase().as_str() {
            "tracecontext" => PropagatorKind::TraceContext,
            "baggage" => PropagatorKind::Baggage,
            "none" => {
                none = true;
                continue;
            }
            name @ ("b3" | "b3multi" | "jaeger" | "xray" | "ottrace") => {
                let (kind, compiled, feature) = match name {
                    "b3" => (
                        PropagatorKind::B3,
                        cfg!(feature = "propagator-b3"),
                        "propagator-b3",
                    ),
                    "b3multi" => (
                        PropagatorKind::B3Multi,
                        cfg!(feature = "propagator-b3"),
                        "propagator-b3",
                    ),
                    "jaeger" => (
                        PropagatorKind::Jaeger,
                        cfg!(feature = "propagator-jaeger"),
                        "propagator-jaeger",
                    ),
                    "xray" => (
                        PropagatorKind::Xray,
                        cfg!(feature = "propagator-xray"),
                        "propagator-xray",
                    ),
                    _ => (
                        PropagatorKind::OtTrace,
                        cfg!(feature = "propagator-ottrace"),
                        "propagator-ottrace",
                    ),
                };
                if !compiled {
                    w.push(format!(
                        "{}: the `{item}` propagator needs the `{feature}` feature of observability-core; ignoring it",
                        env::OTEL_PROPAGATORS
                    ));
                    continue;
                }
                kind
            }
            _ => {
                w.push(format!(
                    "{}: `{item}` is not a known propagator; ignoring it",
                    env::OTEL_PROPAGATORS
                ));
                continue;
            }
        };
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    if none {
        if !out.is_empty() {
            w.push(format!(
                "{}={value} names `none` with other propagators; using none",
                env::OTEL_PROPAGATORS
            ));
        }
        return Vec::new();
    }
    out
}
