//! Which exporters spans and logs go to: `OTEL_TRACES_EXPORTER`, `OTEL_LOGS_EXPORTER`
//! and the builder.

use super::CodeSettings;
use crate::env::{self, Env, Warnings};

/// Where finished spans go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exporter {
    /// OTLP to a collector, over the protocol from [`Protocol`](crate::Protocol).
    Otlp,
    /// Each finished trace printed as an indented tree on standard error.
    Console,
    /// Nothing is exported (spans are still created, so ids propagate and
    /// appear in logs).
    None,
}

/// Whether logs are exported over OTLP: the choice made in code, else
/// `OTEL_LOGS_EXPORTER` (`otlp` or `none`; off when unset).
pub(super) fn resolve_logs_exporter(code: Option<bool>, env: &Env, w: &mut Warnings) -> bool {
    match code {
        Some(on) => on,
        None => match env.get(env::OTEL_LOGS_EXPORTER) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("otlp") => true,
            Some(v) if v.eq_ignore_ascii_case("none") => false,
            Some(v) => {
                w.push(format!(
                    "{}={v} is not supported (otlp or none); not exporting logs",
                    env::OTEL_LOGS_EXPORTER
                ));
                false
            }
        },
    }
}

pub(super) fn resolve_exporters(code: &CodeSettings, env: &Env, w: &mut Warnings) -> Vec<Exporter> {
    if let Some(forced) = &code.exporter {
        return dedup(forced.clone());
    }
    // A default given in code stands only while nothing points at a
    // collector: an OTLP endpoint in the environment means "export there".
    let endpoint_set = env.get(env::OTEL_EXPORTER_OTLP_ENDPOINT).is_some()
        || env.get(env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).is_some();
    let fallback = match &code.default_exporter {
        Some(default) if !endpoint_set => default.clone(),
        _ => vec![Exporter::Otlp],
    };
    let Some(value) = env.get(env::OTEL_TRACES_EXPORTER) else {
        return dedup(fallback);
    };
    let mut chosen = Vec::new();
    let mut none = false;
    let mut understood = false;
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.to_ascii_lowercase().as_str() {
            "otlp" => {
                understood = true;
                chosen.push(Exporter::Otlp)
            }
            "console" | "logging" => {
                understood = true;
                chosen.push(Exporter::Console)
            }
            "none" => {
                understood = true;
                none = true
            }
            "zipkin" | "jaeger" => w.push(format!(
                "{}: the `{item}` exporter is not supported by observability-core; ignoring it",
                env::OTEL_TRACES_EXPORTER
            )),
            _ => w.push(format!(
                "{}: `{item}` is not a known exporter; ignoring it",
                env::OTEL_TRACES_EXPORTER
            )),
        }
    }
    if !understood {
        return dedup(fallback);
    }
    if none && chosen.is_empty() {
        return vec![Exporter::None];
    }
    dedup(chosen)
}

pub(super) fn dedup(list: Vec<Exporter>) -> Vec<Exporter> {
    let mut out: Vec<Exporter> = Vec::with_capacity(list.len());
    for e in list {
        if e != Exporter::None && !out.contains(&e) {
            out.push(e);
        }
    }
    if out.is_empty() {
        out.push(Exporter::None);
    }
    out
}
