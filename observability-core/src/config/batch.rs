//! The batch processor's settings and the span limits, every one bounded.

use std::time::Duration;

use opentelemetry_sdk::trace::SpanLimits;

use crate::env::{self, Env, Warnings, parse_millis, parse_u64};

/// The batch span processor's resolved settings (`OTEL_BSP_*`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BatchSettings {
    pub(crate) schedule_delay: Duration,
    pub(crate) export_timeout: Duration,
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    /// Estimated bytes of queued spans at most.
    pub(crate) max_queue_bytes: usize,
    /// Bytes of one export request at most.
    pub(crate) max_request_bytes: usize,
    /// Exports in flight at once at most.
    pub(crate) max_concurrent_exports: usize,
}

/// Bounds of the size, count and time settings: any value a variable can
/// hold resolves to something the process can afford (a warning says when
/// a value was brought back within its bound).
pub(crate) mod bounds {
    use std::time::Duration;

    /// `OTEL_BSP_MAX_QUEUE_SIZE`.
    pub(crate) const QUEUE_SPANS: u64 = 1 << 20;
    /// `OBSERVABILITY_BSP_MAX_QUEUE_BYTES`.
    pub(crate) const QUEUE_BYTES: (u64, u64, u64) = (1 << 20, 16 << 20, 4 << 30);
    /// `OBSERVABILITY_OTLP_MAX_REQUEST_BYTES`.
    pub(crate) const REQUEST_BYTES: (u64, u64, u64) = (64 << 10, 3 << 20, 64 << 20);
    /// Every duration (`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_EXPORT_TIMEOUT`,
    /// `OTEL_EXPORTER_OTLP_*TIMEOUT`).
    pub(crate) const DURATION: Duration = Duration::from_secs(3600);
    /// Every count limit (`OTEL_*_COUNT_LIMIT`).
    pub(crate) const COUNT: u64 = 1 << 16;
    /// The default of `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, in characters.
    pub(crate) const VALUE_LENGTH: usize = 4096;
}

/// A count from `name`: `default` when unset or invalid, at most `max`, and
/// never 0 when `positive`.
pub(crate) fn bounded_u64(
    env: &Env,
    name: &str,
    default: u64,
    max: u64,
    positive: bool,
    w: &mut Warnings,
) -> u64 {
    match parse_u64(env, name, w) {
        Some(0) if positive => {
            w.push(format!("{name}=0 is not allowed; using {default}"));
            default
        }
        Some(n) if n > max => {
            w.push(format!("{name}={n} is more than {max}; using {max}"));
            max
        }
        Some(n) => n,
        None => default,
    }
}

/// A byte size from `name` within `(min, default, max)`.
pub(super) fn bounded_bytes(
    env: &Env,
    name: &str,
    (min, default, max): (u64, u64, u64),
    w: &mut Warnings,
) -> usize {
    let n = bounded_u64(env, name, default, max, true, w);
    let n = if n < min {
        w.push(format!("{name}={n} is less than {min}; using {min}"));
        min
    } else {
        n
    };
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A duration in milliseconds from `name`, at most [`bounds::DURATION`].
pub(crate) fn bounded_millis(env: &Env, name: &str, w: &mut Warnings) -> Option<Duration> {
    let millis = parse_millis(env, name, w)?;
    if millis > bounds::DURATION {
        w.push(format!(
            "{name}={} is more than {} (one hour); using {}",
            millis.as_millis(),
            bounds::DURATION.as_millis(),
            bounds::DURATION.as_millis()
        ));
        return Some(bounds::DURATION);
    }
    Some(millis)
}

pub(super) fn resolve_batch(env: &Env, w: &mut Warnings) -> BatchSettings {
    let max_queue_size = bounded_u64(
        env,
        env::OTEL_BSP_MAX_QUEUE_SIZE,
        2048,
        bounds::QUEUE_SPANS,
        true,
        w,
    ) as usize;
    let mut max_export_batch_size = bounded_u64(
        env,
        env::OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
        512,
        bounds::QUEUE_SPANS,
        true,
        w,
    ) as usize;
    if max_export_batch_size > max_queue_size {
        if env.get(env::OTEL_BSP_MAX_EXPORT_BATCH_SIZE).is_some() {
            w.push(format!(
                "{}={max_export_batch_size} is larger than the queue ({max_queue_size}); using {max_queue_size}",
                env::OTEL_BSP_MAX_EXPORT_BATCH_SIZE
            ));
        }
        max_export_batch_size = max_queue_size;
    }
    BatchSettings {
        schedule_delay: bounded_millis(env, env::OTEL_BSP_SCHEDULE_DELAY, w)
            .unwrap_or(Duration::from_secs(5)),
        export_timeout: bounded_millis(env, env::OTEL_BSP_EXPORT_TIMEOUT, w)
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(30)),
        max_queue_size,
        max_export_batch_size,
        max_queue_bytes: bounded_bytes(
            env,
            env::OBSERVABILITY_BSP_MAX_QUEUE_BYTES,
            bounds::QUEUE_BYTES,
            w,
        ),
        max_request_bytes: bounded_bytes(
            env,
            env::OBSERVABILITY_OTLP_MAX_REQUEST_BYTES,
            bounds::REQUEST_BYTES,
            w,
        ),
        max_concurrent_exports: concurrent_exports(env, w),
    }
}

/// `OTEL_BSP_MAX_CONCURRENT_EXPORTS`: 4 unless set, at most
/// [`MAX_CONCURRENT_EXPORTS`] (the worker polls every export in flight each
/// time one of them wakes it).
pub(super) fn concurrent_exports(env: &Env, w: &mut Warnings) -> usize {
    const DEFAULT: u64 = 4;
    let name = env::OTEL_BSP_MAX_CONCURRENT_EXPORTS;
    match parse_u64(env, name, w) {
        Some(0) => {
            w.push(format!("{name}=0 is not allowed; using {DEFAULT}"));
            DEFAULT as usize
        }
        Some(n) if n > MAX_CONCURRENT_EXPORTS as u64 => {
            w.push(format!(
                "{name}={n} is more than {MAX_CONCURRENT_EXPORTS}; using {MAX_CONCURRENT_EXPORTS}"
            ));
            MAX_CONCURRENT_EXPORTS
        }
        Some(n) => n as usize,
        None => DEFAULT as usize,
    }
}

/// The most batch exports in flight at once that the settings allow.
pub(crate) const MAX_CONCURRENT_EXPORTS: usize = 64;

pub(super) fn resolve_limits(env: &Env, w: &mut Warnings) -> (SpanLimits, Option<usize>) {
    let count = |name: &str, w: &mut Warnings| -> Option<u32> {
        let n = parse_u64(env, name, w)?;
        let max = bounds::COUNT;
        if n > max {
            w.push(format!("{name}={n} is more than {max}; using {max}"));
        }
        Some(u32::try_from(n.min(max)).unwrap_or(u32::MAX))
    };
    // The general limit, read once (it stands in for three specific ones).
    let general = count(env::OTEL_ATTRIBUTE_COUNT_LIMIT, w);
    let mut limits = SpanLimits::default();
    if let Some(n) = count(env::OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, w).or(general) {
        limits.max_attributes_per_span = n;
    }
    if let Some(n) = count(env::OTEL_SPAN_EVENT_COUNT_LIMIT, w) {
        limits.max_events_per_span = n;
    }
    if let Some(n) = count(env::OTEL_SPAN_LINK_COUNT_LIMIT, w) {
        limits.max_links_per_span = n;
    }
    if let Some(n) = count(env::OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT, w).or(general) {
        limits.max_attributes_per_event = n;
    }
    if let Some(n) = count(env::OTEL_LINK_ATTRIBUTE_COUNT_LIMIT, w).or(general) {
        limits.max_attributes_per_link = n;
    }
    // Request text (headers, paths, user agents) flows into attributes: a
    // value is bounded by default, unless a variable says otherwise.
    let value_length = parse_u64(env, env::OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, w)
        .or_else(|| parse_u64(env, env::OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, w))
        .map_or(bounds::VALUE_LENGTH, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
    (limits, Some(value_length))
}
