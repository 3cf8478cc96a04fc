//! The batch span processor: a bounded queue filled by the application's
//! threads ([`queue`](super::queue)) and drained by a worker on the export
//! thread ([`worker`](super::worker)).
//!
//! The application never waits: a span that finds the queue full (in spans
//! or in bytes) is dropped and counted. Export, flush and shutdown all have
//! deadlines.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use tokio::sync::mpsc;

use super::Sink;
use super::queue::{
    Bounds, Exported, Refused, Reply, Shared, request_over, request_size, truncate_and_measure,
};
use super::report::Reporter;
use super::runtime::in_export_thread;
use super::worker::Worker;
use crate::config::BatchSettings;
use crate::scrub::Scrubber;

/// The span processor installed in the tracer provider.
#[derive(Debug)]
pub(crate) struct QueueProcessor {
    shared: Arc<Shared>,
    value_length_limit: Option<usize>,
    flush_timeout: Duration,
}

impl QueueProcessor {
    /// A processor and the tasks that drain it and report its drops (to be
    /// spawned on the export runtime).
    pub(crate) fn new(
        sink: Box<dyn Sink>,
        batch: &BatchSettings,
        value_length_limit: Option<usize>,
        scrubber: Option<Arc<Scrubber>>,
        reporter: Reporter,
    ) -> (
        Self,
        Arc<Shared>,
        impl Future<Output = ()> + Send + 'static,
        impl Future<Output = ()> + Send + 'static,
    ) {
        let (control, control_rx) = mpsc::unbounded_channel();
        let bounds = Bounds {
            spans: batch.max_queue_size.max(1),
            bytes: batch.max_queue_bytes.max(1),
            batch_spans: batch.max_export_batch_size.max(1),
            batch_bytes: batch.max_request_bytes.max(1),
        };
        let shared = Arc::new(Shared::new(bounds, control, sink.component_type()));
        let name = sink.name();
        let worker = Worker::new(Arc::clone(&shared), sink, control_rx, batch, scrubber);
        let watch = reporter.watch(Arc::clone(&shared), name);
        let processor = Self {
            shared: Arc::clone(&shared),
            value_length_limit,
            flush_timeout: batch.export_timeout,
        };
        (processor, shared, worker.run(), watch)
    }

    fn wait(&self, rx: std::sync::mpsc::Receiver<()>, timeout: Duration) -> OTelSdkResult {
        match rx.recv_timeout(timeout) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Ok(()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(timeout)),
        }
    }
}

impl QueueProcessor {
    /// [`on_end`](SpanProcessor::on_end) for a span in a box from
    /// [`empty_box`](Self::empty_box).
    pub(crate) fn end_boxed(&self, mut span: Box<Exported>) {
        let (mut request_bytes, longest) = span.http.as_ref().map_or((0, 0), request_size);
        // A request's value over the length limit is truncated in the list.
        if let (Some(http), Some(limit)) = (&span.http, self.value_length_limit)
            && longest > limit
            && request_over(http, limit)
        {
            span.materialize();
            request_bytes = 0;
        }
        if let Some(bytes) = self.admit(&mut span.data) {
            self.queued(self.shared.push_boxed(span, bytes + request_bytes));
        }
    }

    /// A box to start a span in, which the queue takes without moving the
    /// span again; it may have room for attributes an earlier span left.
    #[inline]
    pub(crate) fn empty_box(&self) -> Box<Exported> {
        self.shared.empty_box()
    }

    /// A sampled span's estimated size, once truncated to the limit; `None`
    /// for a span not to queue (not sampled, or shutdown began: counted).
    fn admit(&self, span: &mut SpanData) -> Option<usize> {
        if !span.span_context.is_sampled() {
            return None;
        }
        if self.shared.is_closed() {
            let counters = &self.shared.counters;
            counters.dropped_at_shutdown.fetch_add(1, Relaxed);
            return None;
        }
        Some(truncate_and_measure(span, self.value_length_limit))
    }

    /// Counts a refused span, or wakes the worker when a batch is ready.
    fn queued(&self, pushed: Result<(), Refused>) {
        let counters = &self.shared.counters;
        match pushed {
            Ok(()) => {
                if self.shared.len() >= self.shared.bounds.batch_spans {
                    self.shared.notify.notify_one();
                }
            }
            Err(Refused::Full) => {
                counters.dropped_queue_full.fetch_add(1, Relaxed);
            }
            Err(Refused::TooLarge) => {
                counters.dropped_too_large.fetch_add(1, Relaxed);
            }
            Err(Refused::Closed) => {
                counters.dropped_at_shutdown.fetch_add(1, Relaxed);
            }
        }
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, mut span: SpanData) {
        if let Some(bytes) = self.admit(&mut span) {
            self.queued(self.shared.push(span, bytes));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        if in_export_thread() {
            return Ok(());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if !self.shared.request_flush(Reply::Blocking(tx)) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.wait(rx, self.flush_timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if !self
            .shared
            .begin_shutdown(Instant::now() + timeout, Reply::Blocking(tx))
        {
            return Ok(()); // the guard already shut this processor down
        }
        if in_export_thread() {
            return Ok(());
        }
        self.wait(rx, timeout)
    }
}
