//! Exporters and the pipeline that feeds them.

mod console;
#[cfg(feature = "otlp-http")]
mod encode;
pub(crate) mod error;
#[cfg(feature = "otlp-http")]
mod otlp;
pub(crate) mod processor;
pub(crate) mod queue;
pub(crate) mod report;
pub(crate) mod runtime;
mod worker;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

pub use error::{ExportFailures, FailureCause};
pub use queue::ExportStats;

pub(crate) use console::ConsoleShared;
#[cfg(feature = "otlp-http")]
pub(crate) use otlp::{MetricsSender, otlp_log_exporter, otlp_sink};
pub(crate) use queue::Batch;

/// How one export ended: of its spans, how many the destination accepted,
/// how many were dropped as too large to send (alone over the request size
/// limit, or refused as too large by the collector even alone), and how many
/// were lost to a failure, by cause, with the last failure.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) sent: u64,
    pub(crate) too_large: u64,
    pub(crate) failed: ExportFailures,
    pub(crate) error: Option<error::ExportError>,
}

impl Outcome {
    /// All `n` spans accepted.
    pub(crate) fn sent(n: u64) -> Self {
        Self {
            sent: n,
            ..Self::default()
        }
    }

    /// All `n` spans lost to `error`.
    pub(crate) fn failed(n: u64, error: error::ExportError) -> Self {
        let mut outcome = Self::default();
        outcome.fail(n, error);
        outcome
    }

    /// `n` more spans lost to `error`.
    pub(crate) fn fail(&mut self, n: u64, error: error::ExportError) {
        *self.failed.get_mut(error.cause()) += n;
        self.error = Some(error);
    }
}

/// The future of one export.
pub(crate) type ExportFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// A destination for finished spans, driven by one worker on the export
/// thread (so `&mut self` and no locking).
pub(crate) trait Sink: Send + 'static {
    /// A short name for diagnostics.
    fn name(&self) -> &'static str;
    /// Its `otel.component.type` in the SDK's own metrics.
    fn component_type(&self) -> &'static str {
        "span_exporter"
    }
    /// Sends one batch, ending by `deadline` (the worker's export timeout or
    /// the shutdown deadline) with every span accounted for in the
    /// [`Outcome`]. What needs the sink (encoding, bookkeeping) is done
    /// before this returns; the future only carries the batch to its
    /// destination, so that several can be in flight at once.
    fn export(&mut self, batch: Batch, deadline: Instant) -> ExportFuture<'static>;
    /// Called after every scheduled export (`flush_all` false) and on flush
    /// and shutdown (`flush_all` true).
    fn tick(&mut self, _flush_all: bool) {}
    /// Called once, last.
    fn shutdown(&mut self) {}
}

/// Whether two spans' scopes are the same. Spans of one tracer carry
/// copies of its scope whose text is usually the same `'static` string, so
/// equal pointers settle it without comparing the text.
pub(crate) fn same_scope(
    a: &opentelemetry::InstrumentationScope,
    b: &opentelemetry::InstrumentationScope,
) -> bool {
    fn same_text(a: Option<&str>, b: Option<&str>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
    let shared = std::ptr::eq(a.name(), b.name())
        && same_text(a.version(), b.version())
        && same_text(a.schema_url(), b.schema_url())
        && a.attributes().next().is_none()
        && b.attributes().next().is_none();
    shared || a == b
}
