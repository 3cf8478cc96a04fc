//! Baggage as one header per entry, `{prefix}{key}: {value}` (Jaeger's
//! `uberctx-`, OT's `ot-baggage-`).

use opentelemetry::Context;
use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::propagation::{Extractor, Injector};

/// Entries read at most (the W3C Baggage limit).
const MAX_ENTRIES: usize = 64;

/// `cx` with the entries of `extractor` whose names start with `prefix`
/// (compared without case) added to its baggage, each value through
/// `decode` (an entry it refuses is skipped).
pub(crate) fn extract(
    cx: Context,
    extractor: &dyn Extractor,
    prefix: &str,
    decode: fn(&str) -> Option<String>,
) -> Context {
    let entries: Vec<(String, String)> = extractor
        .keys()
        .into_iter()
        .filter_map(|key| {
            let name = key.to_ascii_lowercase().strip_prefix(prefix)?.to_owned();
            let value = decode(extractor.get(key)?)?;
            (!name.is_empty()).then_some((name, value))
        })
        .take(MAX_ENTRIES)
        .collect();
    if entries.is_empty() {
        return cx;
    }
    // What the context already carries, then these entries.
    let mut baggage = Baggage::new();
    for (key, (value, metadata)) in cx.baggage().iter() {
        baggage.insert_with_metadata(key.clone(), value.clone(), metadata.clone());
    }
    for (key, value) in entries {
        baggage.insert(key, value);
    }
    cx.with_baggage(baggage)
}

/// Writes every baggage entry of `cx` as `{prefix}{key}`, each value
/// through `encode`.
pub(crate) fn inject(
    cx: &Context,
    injector: &mut dyn Injector,
    prefix: &str,
    encode: fn(&str) -> String,
) {
    for (key, (value, _)) in cx.baggage().iter() {
        injector.set(&format!("{prefix}{}", key.as_str()), encode(value.as_str()));
    }
}
