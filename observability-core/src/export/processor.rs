//! The batch span processor: a bounded lock-free queue filled by the
//! application's threads and drained by a task on the export thread.
//!
//! The application never waits: a span that finds the queue full is dropped
//! and counted. Export, flush and shutdown all have deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use opentelemetry::Context;
use opentelemetry::Value;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use tokio::sync::{Notify, mpsc, oneshot};

use super::Sink;
use super::runtime::{Reporter, in_export_thread};
use crate::config::BatchSettings;
use crate::scrub::Scrubber;

/// Export counts of one processor, or of all of them added up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans the exporter accepted.
    pub exported: u64,
    /// Spans dropped because the queue was full (the exporter could not keep
    /// up, or the collector was unreachable for long).
    pub dropped_queue_full: u64,
    /// Spans dropped because their export failed or timed out.
    pub dropped_export_failed: u64,
    /// Spans dropped because they ended after shutdown began, or were still
    /// queued when the shutdown deadline passed.
    pub dropped_at_shutdown: u64,
}

impl ExportStats {
    /// All dropped spans.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_export_failed + self.dropped_at_shutdown
    }

    pub(crate) fn add(&mut self, other: ExportStats) {
        self.exported += other.exported;
        self.dropped_queue_full += other.dropped_queue_full;
        self.dropped_export_failed += other.dropped_export_failed;
        self.dropped_at_shutdown += other.dropped_at_shutdown;
    }
}

#[derive(Debug, Default)]
struct Counters {
    exported: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_export_failed: AtomicU64,
    dropped_at_shutdown: AtomicU64,
    /// Spans taken from the queue and not yet counted as exported or dropped.
    in_flight: AtomicU64,
}

/// How a waiter hears that a flush or shutdown is done.
#[derive(Debug)]
pub(crate) enum Reply {
    Blocking(std::sync::mpsc::SyncSender<()>),
    Async(oneshot::Sender<()>),
    /// Nobody waits.
    Ignored,
}

impl Reply {
    fn send(self) {
        match self {
            Self::Ignored => {}
            Self::Blocking(tx) => {
                let _ = tx.try_send(());
            }
            Self::Async(tx) => {
                let _ = tx.send(());
            }
        }
    }
}

#[derive(Debug)]
pub(crate) enum Control {
    Flush(Reply),
    Shutdown { deadline: Instant, reply: Reply },
}

#[derive(Debug)]
pub(crate) struct Shared {
    queue: ArrayQueue<SpanData>,
    notify: Notify,
    batch_size: usize,
    counters: Counters,
    closed: AtomicBool,
    control: mpsc::UnboundedSender<Control>,
}

impl Shared {
    pub(crate) fn stats(&self) -> ExportStats {
        let c = &self.counters;
        ExportStats {
            exported: c.exported.load(Ordering::Relaxed),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
            dropped_export_failed: c.dropped_export_failed.load(Ordering::Relaxed),
            dropped_at_shutdown: c.dropped_at_shutdown.load(Ordering::Relaxed),
        }
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Starts shutdown: new spans are refused from now on. Returns `false`
    /// when shutdown had already begun.
    pub(crate) fn begin_shutdown(&self, deadline: Instant, reply: Reply) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        if let Err(mpsc::error::SendError(Control::Shutdown { reply, .. })) =
            self.control.send(Control::Shutdown { deadline, reply })
        {
            reply.send(); // the worker is gone: nothing left to wait for
        }
        true
    }

    /// After shutdown: counts what is still queued as dropped, and, once the
    /// export thread has stopped (`stopped`), the batch it was exporting.
    pub(crate) fn abandon(&self, stopped: bool) {
        let mut left = 0;
        while self.queue.pop().is_some() {
            left += 1;
        }
        if stopped {
            left += self.counters.in_flight.swap(0, Ordering::AcqRel);
        }
        self.counters
            .dropped_at_shutdown
            .fetch_add(left, Ordering::Relaxed);
    }

    pub(crate) fn request_flush(&self, reply: Reply) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        self.control.send(Control::Flush(reply)).is_ok()
    }
}

/// The span processor installed in the tracer provider.
#[derive(Debug)]
pub(crate) struct QueueProcessor {
    shared: Arc<Shared>,
    value_length_limit: Option<usize>,
    flush_timeout: Duration,
}

impl QueueProcessor {
    /// A processor and the worker that drains it (to be spawned on the export
    /// runtime).
    pub(crate) fn new(
        sink: Box<dyn Sink>,
        batch: &BatchSettings,
        value_length_limit: Option<usize>,
        scrubber: Option<Arc<Scrubber>>,
        reporter: Reporter,
    ) -> (Self, Arc<Shared>, impl Future<Output = ()> + Send + 'static) {
        let (control, control_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(batch.max_queue_size.max(1)),
            notify: Notify::new(),
            batch_size: batch.max_export_batch_size.max(1),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            control,
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            sink,
            control: control_rx,
            schedule_delay: batch.schedule_delay,
            export_timeout: batch.export_timeout,
            max_concurrent: batch.max_concurrent_exports.max(1),
            running: Vec::new(),
            reporter,
            scrubber,
            seen_queue_full: 0,
        };
        let processor = Self {
            shared: Arc::clone(&shared),
            value_length_limit,
            flush_timeout: batch.export_timeout,
        };
        (processor, shared, worker.run())
    }

    fn wait(&self, rx: std::sync::mpsc::Receiver<()>, timeout: Duration) -> OTelSdkResult {
        match rx.recv_timeout(timeout) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Ok(()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(timeout)),
        }
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, mut span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let counters = &self.shared.counters;
        if self.shared.closed.load(Ordering::Relaxed) {
            counters.dropped_at_shutdown.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(limit) = self.value_length_limit {
            truncate_values(&mut span, limit);
        }
        match self.shared.queue.push(span) {
            Ok(()) => {
                if self.shared.queue.len() >= self.shared.batch_size {
                    self.shared.notify.notify_one();
                }
            }
            Err(_) => {
                counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            }
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

/// Truncates string values longer than `limit` characters
/// (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`).
fn truncate_values(span: &mut SpanData, limit: usize) {
    let cut = |value: &mut Value| {
        if let Value::String(s) = value {
            let text = s.as_str();
            if let Some((idx, _)) = text.char_indices().nth(limit) {
                *value = Value::from(text[..idx].to_owned());
            }
        }
    };
    for kv in &mut span.attributes {
        cut(&mut kv.value);
    }
    for event in span.events.events.iter_mut() {
        for kv in &mut event.attributes {
            cut(&mut kv.value);
        }
    }
    for link in span.links.links.iter_mut() {
        for kv in &mut link.attributes {
            cut(&mut kv.value);
        }
    }
}

/// How one batch export ended: its size, and its result or the timeout
/// that cut it off.
struct Finished {
    len: u64,
    outcome: Result<Result<(), String>, Duration>,
}

/// An export in flight.
type Running = std::pin::Pin<Box<dyn Future<Output = Finished> + Send>>;

struct Worker {
    shared: Arc<Shared>,
    sink: Box<dyn Sink>,
    control: mpsc::UnboundedReceiver<Control>,
    schedule_delay: Duration,
    export_timeout: Duration,
    /// Exports in flight at once at most.
    max_concurrent: usize,
    /// The exports in flight (polled by this worker's task).
    running: Vec<Running>,
    reporter: Reporter,
    /// Applied to each batch before export, off the request path.
    scrubber: Option<Arc<Scrubber>>,
    seen_queue_full: u64,
}

impl Worker {
    async fn run(mut self) {
        let mut next_tick = tokio::time::Instant::now() + self.schedule_delay;
        loop {
            tokio::select! {
                biased;
                message = self.control.recv() => match message {
                    Some(Control::Flush(reply)) => {
                        let pending = self.shared.queue.len();
                        self.export_up_to(pending, None).await;
                        self.sink.tick(true);
                        reply.send();
                    }
                    Some(Control::Shutdown { deadline, reply }) => {
                        let pending = self.shared.queue.len();
                        self.export_up_to(pending, Some(deadline)).await;
                        self.sink.tick(true);
                        let mut left = 0;
                        while self.shared.queue.pop().is_some() {
                            left += 1;
                        }
                        self.shared.counters.dropped_at_shutdown.fetch_add(left, Ordering::Relaxed);
                        self.sink.shutdown();
                        reply.send();
                        return;
                    }
                    None => return,
                },
                () = self.shared.notify.notified() => self.export_full_batches().await,
                () = tokio::time::sleep_until(next_tick) => {
                    let pending = self.shared.queue.len();
                    self.export_up_to(pending, None).await;
                    self.sink.tick(false);
                    next_tick = tokio::time::Instant::now() + self.schedule_delay;
                }
            }
            self.report_queue_full();
        }
    }

    /// Exports up to `count` queued spans, in batches, at most
    /// `max_concurrent` at once, each bounded by the export timeout and by
    /// `deadline`; returns when all have ended.
    async fn export_up_to(&mut self, count: usize, deadline: Option<Instant>) {
        let mut remaining = count;
        while remaining > 0 {
            if self.running.len() >= self.max_concurrent {
                self.finish_one().await;
                continue;
            }
            let taken = self.start(remaining, deadline);
            if taken == 0 {
                break;
            }
            remaining -= taken;
        }
        while !self.running.is_empty() {
            self.finish_one().await;
        }
    }

    /// Exports full batches while the queue holds one, keeping up to
    /// `max_concurrent` in flight: while one waits for the collector's
    /// answer, the next is already on its way. Returns when the queue holds
    /// less than a batch and every export has ended.
    async fn export_full_batches(&mut self) {
        let shared = Arc::clone(&self.shared);
        loop {
            while self.running.len() < self.max_concurrent
                && shared.queue.len() >= shared.batch_size
            {
                self.start(shared.batch_size, None);
            }
            if self.running.is_empty() {
                return;
            }
            // An export ends, or (with room for another) a batch fills up.
            let room = self.running.len() < self.max_concurrent;
            let finished = tokio::select! {
                finished = next_finished(&mut self.running) => finished,
                () = shared.notify.notified(), if room => None,
            };
            if let Some(finished) = finished {
                self.count(finished);
            }
        }
    }

    /// Takes up to a batch (at most `count` spans) from the queue and starts
    /// exporting it; returns how many spans it took.
    fn start(&mut self, count: usize, deadline: Option<Instant>) -> usize {
        let n = count.min(self.shared.batch_size);
        let mut batch = Vec::with_capacity(n);
        while batch.len() < n {
            match self.shared.queue.pop() {
                Some(span) => batch.push(span),
                None => break,
            }
        }
        if batch.is_empty() {
            return 0;
        }
        if let Some(scrubber) = &self.scrubber {
            batch.iter_mut().for_each(|span| scrubber.scrub(span));
        }
        let taken = batch.len();
        let len = taken as u64;
        let mut timeout = self.export_timeout;
        if let Some(deadline) = deadline {
            timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
        }
        self.shared
            .counters
            .in_flight
            .fetch_add(len, Ordering::AcqRel);
        let export = self.sink.export(batch);
        self.running.push(Box::pin(async move {
            let outcome = tokio::time::timeout(timeout, export)
                .await
                .map_err(|_| timeout);
            Finished { len, outcome }
        }));
        taken
    }

    /// Waits for the first of the running exports to end, and counts it.
    async fn finish_one(&mut self) {
        if let Some(finished) = next_finished(&mut self.running).await {
            self.count(finished);
        }
    }

    /// Counts an ended export as exported or dropped.
    fn count(&mut self, Finished { len, outcome }: Finished) {
        let counters = &self.shared.counters;
        counters.in_flight.fetch_sub(len, Ordering::AcqRel);
        match outcome {
            Ok(Ok(())) => {
                counters.exported.fetch_add(len, Ordering::Relaxed);
                self.reporter.recovered(self.sink.name());
            }
            Ok(Err(error)) => {
                counters
                    .dropped_export_failed
                    .fetch_add(len, Ordering::Relaxed);
                self.reporter.failure(self.sink.name(), len, &error);
            }
            Err(timeout) => {
                counters
                    .dropped_export_failed
                    .fetch_add(len, Ordering::Relaxed);
                self.reporter.failure(
                    self.sink.name(),
                    len,
                    &format!("export timed out after {timeout:?}"),
                );
            }
        }
    }

    fn report_queue_full(&mut self) {
        let now = self
            .shared
            .counters
            .dropped_queue_full
            .load(Ordering::Relaxed);
        if now > self.seen_queue_full {
            let new = now - self.seen_queue_full;
            self.seen_queue_full = now;
            self.reporter.failure(
                self.sink.name(),
                new,
                "the span queue is full (raise OTEL_BSP_MAX_QUEUE_SIZE, or sample less)",
            );
        }
    }
}
/// The first of `running` to end, removed from it; `None` when nothing is
/// running.
async fn next_finished(running: &mut Vec<Running>) -> Option<Finished> {
    std::future::poll_fn(|cx| {
        for i in 0..running.len() {
            if let std::task::Poll::Ready(finished) = running[i].as_mut().poll(cx) {
                drop(running.swap_remove(i));
                return std::task::Poll::Ready(Some(finished));
            }
        }
        if running.is_empty() {
            std::task::Poll::Ready(None)
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}
