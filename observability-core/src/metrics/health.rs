//! The SDK's own health as metrics, named as the semantic conventions for
//! OpenTelemetry SDK metrics say (`otel.sdk.*`), read at each collection
//! from the counters behind `TelemetryGuard::stats()`:
//!
//! - `otel.sdk.processor.span.processed` — spans the processor is done
//!   with: handed to the exporter, or dropped with `error.type`
//!   `queue_full` or `already_shutdown`;
//! - `otel.sdk.exporter.span.exported` — spans whose export ended, failed
//!   ones with `error.type` (`timeout`, `unreachable`, `rejected`,
//!   `encoding`, `too_large`, `_OTHER`);
//! - `otel.sdk.exporter.span.inflight`, `otel.sdk.processor.span.queue.size`
//!   and `otel.sdk.processor.span.queue.capacity`.

use std::sync::{Arc, Mutex};

use observability_metrics::MeterProvider;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;

use super::started::{RESULTS, SpanCounts};
use crate::export::FailureCause;
use crate::export::queue::Shared;

const COMPONENT_TYPE: &str = "otel.component.type";
const COMPONENT_NAME: &str = "otel.component.name";
const ERROR_TYPE: &str = "error.type";

type Processors = Arc<Mutex<Vec<Arc<Shared>>>>;

fn each(processors: &Processors, mut f: impl FnMut(usize, &Shared)) {
    let processors = processors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for (i, shared) in processors.iter().enumerate() {
        f(i, shared);
    }
}

fn processor(i: usize) -> [KeyValue; 2] {
    [
        KeyValue::new(COMPONENT_TYPE, "batching_span_processor"),
        KeyValue::new(COMPONENT_NAME, format!("batching_span_processor/{i}")),
    ]
}

fn exporter(i: usize, shared: &Shared) -> [KeyValue; 2] {
    [
        KeyValue::new(COMPONENT_TYPE, shared.component_type),
        KeyValue::new(COMPONENT_NAME, format!("{}/{i}", shared.component_type)),
    ]
}

fn with(mut attributes: Vec<KeyValue>, error: Option<&'static str>) -> Vec<KeyValue> {
    if let Some(error) = error {
        attributes.push(KeyValue::new(ERROR_TYPE, error));
    }
    attributes
}

/// Gives `shared` the histogram `otel.sdk.exporter.operation.duration`.
pub(super) fn watch_exports(provider: &MeterProvider, shared: &Shared) {
    let histogram = provider
        .meter("observability-core")
        .f64_histogram("otel.sdk.exporter.operation.duration")
        .with_unit("s")
        .with_description("The duration of exporting a batch of telemetry records.")
        .build();
    let _ = shared.export_duration.set(histogram);
}

/// Registers the `otel.sdk.*` instruments on `provider`.
pub(super) fn register(
    provider: &MeterProvider,
    processors: Processors,
    span_counts: Arc<SpanCounts>,
) {
    let meter = provider.meter("observability-core");
    for shared in processors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        watch_exports(provider, shared);
    }
    let _started = meter
        .u64_observable_counter("otel.sdk.span.started")
        .with_unit("{span}")
        .with_description("The number of created spans.")
        .with_callback(move |observer| {
            for (count, result) in span_counts.0.iter().zip(RESULTS) {
                observer.observe(
                    count.load(std::sync::atomic::Ordering::Relaxed),
                    &[KeyValue::new("otel.span.sampling_result", result)],
                );
            }
        })
        .build();
    let p = Arc::clone(&processors);
    let _processed = meter
        .u64_observable_counter("otel.sdk.processor.span.processed")
        .with_unit("{span}")
        .with_description("The number of spans for which the processing has finished, either successful or failed.")
        .with_callback(move |observer| {
            each(&p, |i, shared| {
                let s = shared.stats();
                let handed = s.exported + s.dropped_export_failed + s.dropped_too_large + shared.in_flight();
                for (count, error) in [
                    (handed, None),
                    (s.dropped_queue_full, Some("queue_full")),
                    (s.dropped_at_shutdown, Some("already_shutdown")),
                ] {
                    observer.observe(count, &with(processor(i).to_vec(), error));
                }
            });
        })
        .build();
    let p = Arc::clone(&processors);
    let _exported = meter
        .u64_observable_counter("otel.sdk.exporter.span.exported")
        .with_unit("{span}")
        .with_description(
            "The number of spans for which the export has finished, either successful or failed.",
        )
        .with_callback(move |observer| {
            each(&p, |i, shared| {
                let s = shared.stats();
                let base = exporter(i, shared).to_vec();
                observer.observe(s.exported, &base);
                observer.observe(s.dropped_too_large, &with(base.clone(), Some("too_large")));
                for cause in FailureCause::ALL {
                    observer.observe(
                        s.failures.get(cause),
                        &with(base.clone(), Some(cause.as_str())),
                    );
                }
            });
        })
        .build();
    let p = Arc::clone(&processors);
    let _inflight = meter
        .i64_observable_up_down_counter("otel.sdk.exporter.span.inflight")
        .with_unit("{span}")
        .with_description("The number of spans which were passed to the exporter, but that have not been exported yet.")
        .with_callback(move |observer| {
            each(&p, |i, shared| {
                let n = i64::try_from(shared.in_flight()).unwrap_or(i64::MAX);
                observer.observe(n, &exporter(i, shared));
            });
        })
        .build();
    let p = Arc::clone(&processors);
    let _size = meter
        .i64_observable_up_down_counter("otel.sdk.processor.span.queue.size")
        .with_unit("{span}")
        .with_description(
            "The number of spans in the queue of a given instance of an SDK span processor.",
        )
        .with_callback(move |observer| {
            each(&p, |i, shared| {
                observer.observe(
                    i64::try_from(shared.len()).unwrap_or(i64::MAX),
                    &processor(i),
                );
            });
        })
        .build();
    let _capacity = meter
        .i64_observable_up_down_counter("otel.sdk.processor.span.queue.capacity")
        .with_unit("{span}")
        .with_description("The maximum number of spans the queue of a given instance of an SDK span processor can hold.")
        .with_callback(move |observer| {
            each(&processors, |i, shared| {
                let capacity = i64::try_from(shared.bounds.spans).unwrap_or(i64::MAX);
                observer.observe(capacity, &processor(i));
            });
        })
        .build();
}
