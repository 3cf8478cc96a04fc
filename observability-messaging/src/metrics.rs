//! The messaging conventions' metrics ("Semantic conventions for messaging
//! metrics"), recorded through the global meter provider:
//! `messaging.client.operation.duration` and `messaging.client.sent.messages`
//! for sends, `messaging.process.duration` and
//! `messaging.client.consumed.messages` for each processed message. They
//! carry the spans' `messaging.system`, `messaging.operation.*` and
//! `messaging.destination.name` (plus `error.type` on failure), and are
//! recorded with the span current, for exemplars.

use std::sync::OnceLock;
use std::time::Instant;

use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::{InstrumentationScope, KeyValue};

use crate::span::ERROR_TYPE;

/// The conventions' boundaries for messaging durations, in seconds.
const BOUNDARIES: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

struct Instruments {
    operation: Histogram<f64>,
    process: Histogram<f64>,
    sent: Counter<u64>,
    consumed: Counter<u64>,
}

/// The instruments, made from the global meter provider at first use.
fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let scope = InstrumentationScope::builder("observability-messaging")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = opentelemetry::global::meter_with_scope(scope);
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(BOUNDARIES.to_vec())
                .build()
        };
        Instruments {
            operation: seconds(
                "messaging.client.operation.duration",
                "Duration of messaging operation initiated by a producer or consumer client.",
            ),
            process: seconds(
                "messaging.process.duration",
                "Duration of processing operation.",
            ),
            sent: meter
                .u64_counter("messaging.client.sent.messages")
                .with_unit("{message}")
                .with_description("Number of messages producer attempted to send to the broker.")
                .build(),
            consumed: meter
                .u64_counter("messaging.client.consumed.messages")
                .with_unit("{message}")
                .with_description("Number of messages that were delivered to the application.")
                .build(),
        }
    })
}

/// What an operation is timed with: the convention attributes of its span
/// (`messaging.system`, `messaging.operation.type`,
/// `messaging.operation.name`, `messaging.destination.name`).
pub(crate) struct Timed {
    start: Instant,
    attributes: Vec<KeyValue>,
}

impl Timed {
    /// Starts timing; `attributes` are the span's, of which the first four
    /// are the convention's.
    pub(crate) fn start(attributes: &[KeyValue]) -> Self {
        Self {
            start: Instant::now(),
            attributes: attributes.iter().take(4).cloned().collect(),
        }
    }

    fn with_error(mut self, error: Option<&'static str>) -> (f64, Vec<KeyValue>) {
        if let Some(error) = error {
            self.attributes.push(KeyValue::new(ERROR_TYPE, error));
        }
        (self.start.elapsed().as_secs_f64(), self.attributes)
    }

    /// A send of `messages` ended (with `error`'s type when it failed).
    pub(crate) fn sent(self, messages: u64, error: Option<&'static str>) {
        let instruments = instruments();
        let (seconds, attributes) = self.with_error(error);
        instruments.operation.record(seconds, &attributes);
        instruments.sent.add(messages, &attributes);
    }

    /// A message was processed (with `error`'s type when it failed).
    pub(crate) fn processed(self, error: Option<&'static str>) {
        let instruments = instruments();
        let (seconds, attributes) = self.with_error(error);
        instruments.process.record(seconds, &attributes);
        instruments.consumed.add(1, &attributes);
    }
}
