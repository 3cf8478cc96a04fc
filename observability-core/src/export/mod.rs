//! Exporters and the pipeline that feeds them.

mod console;
#[cfg(feature = "otlp-http")]
mod encode;
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
mod otlp;
pub(crate) mod processor;
pub(crate) mod runtime;

use std::future::Future;
use std::pin::Pin;

use opentelemetry_sdk::trace::SpanData;

pub use processor::ExportStats;

pub(crate) use console::ConsoleShared;
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
pub(crate) use otlp::{otlp_log_exporter, otlp_sink};

/// The future of one export.
pub(crate) type ExportFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A destination for finished spans, driven by one worker on the export
/// thread (so `&mut self` and no locking).
pub(crate) trait Sink: Send + 'static {
    /// A short name for diagnostics.
    fn name(&self) -> &'static str;
    /// Sends one batch. What needs the sink (encoding, bookkeeping) is done
    /// before this returns; the future only carries the batch to its
    /// destination, so that several can be in flight at once.
    fn export(&mut self, batch: Vec<SpanData>) -> ExportFuture<'static>;
    /// Called after every scheduled export (`flush_all` false) and on flush
    /// and shutdown (`flush_all` true).
    fn tick(&mut self, _flush_all: bool) {}
    /// Called once, last.
    fn shutdown(&mut self) {}
}
