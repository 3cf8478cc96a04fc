//! The worker on the export thread: takes batches from the queue (at most
//! a batch's spans and bytes each), has up to
//! `OTEL_BSP_MAX_CONCURRENT_EXPORTS` of them in flight, and counts how each
//! ended.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::queue::{Control, Queued, Shared};
use super::{Batch, Outcome, Sink};
use crate::config::BatchSettings;
use crate::scrub::Scrubber;

/// How one batch export ended.
struct Finished {
    len: u64,
    outcome: Outcome,
    /// How long the export took, retries included.
    took: Duration,
}

/// An export in flight.
type Running = std::pin::Pin<Box<dyn Future<Output = Finished> + Send>>;

/// A sink that has not ended its export this long after the deadline it
/// was given is cut off, and the batch counted as failed.
const GRACE: Duration = Duration::from_secs(1);

pub(crate) struct Worker {
    shared: Arc<Shared>,
    sink: Box<dyn Sink>,
    control: mpsc::UnboundedReceiver<Control>,
    schedule_delay: Duration,
    export_timeout: Duration,
    /// Exports in flight at once at most.
    max_concurrent: usize,
    /// The exports in flight (polled by this worker's task).
    running: Vec<Running>,
    /// Applied to each batch before export, off the request path.
    scrubber: Option<Arc<Scrubber>>,
    /// A span taken from the queue that did not fit in the last batch's
    /// bytes: the first of the next batch.
    carry: Option<Queued>,
    /// Whether the last export failed (for the "recovered" note).
    failing: bool,
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        sink: Box<dyn Sink>,
        control: mpsc::UnboundedReceiver<Control>,
        batch: &BatchSettings,
        scrubber: Option<Arc<Scrubber>>,
    ) -> Self {
        Self {
            shared,
            sink,
            control,
            schedule_delay: batch.schedule_delay,
            export_timeout: batch.export_timeout,
            max_concurrent: batch.max_concurrent_exports.max(1),
            running: Vec::new(),
            scrubber,
            carry: None,
            failing: false,
        }
    }

    /// Spans waiting: queued, and the one carried over.
    fn pending(&self) -> usize {
        self.shared.len() + usize::from(self.carry.is_some())
    }

    pub(crate) async fn run(mut self) {
        let mut next_tick = tokio::time::Instant::now() + self.schedule_delay;
        loop {
            tokio::select! {
                biased;
                message = self.control.recv() => match message {
                    Some(Control::Flush(reply)) => {
                        self.export_up_to(self.pending(), None).await;
                        self.sink.tick(true);
                        reply.send();
                    }
                    Some(Control::Shutdown { deadline, reply }) => {
                        self.export_up_to(self.pending(), Some(deadline)).await;
                        self.sink.tick(true);
                        let mut left = self.shared.drain();
                        if self.carry.take().is_some() {
                            self.shared.counters.in_flight.fetch_sub(1, Ordering::AcqRel);
                            left += 1;
                        }
                        self.shared.counters.dropped_at_shutdown.fetch_add(left, Ordering::Relaxed);
                        self.sink.shutdown();
                        self.shared.finished.store(true, Ordering::Release);
                        reply.send();
                        return;
                    }
                    None => {
                        self.shared.finished.store(true, Ordering::Release);
                        return;
                    }
                },
                () = self.shared.notify.notified() => self.export_full_batches().await,
                () = tokio::time::sleep_until(next_tick) => {
                    self.export_up_to(self.pending(), None).await;
                    self.sink.tick(false);
                    next_tick = tokio::time::Instant::now() + self.schedule_delay;
                }
            }
        }
    }

    /// Exports up to `count` waiting spans, in batches, at most
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
            remaining = remaining.saturating_sub(taken);
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
                && self.pending() >= shared.bounds.batch_spans
            {
                self.start(shared.bounds.batch_spans, None);
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

    /// Takes a batch (at most `count` spans, and at most the batch's bytes
    /// unless a single span is all it holds) and starts exporting it;
    /// returns how many spans it took.
    fn start(&mut self, count: usize, deadline: Option<Instant>) -> usize {
        let bounds = self.shared.bounds;
        let n = count.min(bounds.batch_spans);
        let mut batch = Batch::with_capacity(Arc::clone(&self.shared), n.min(1024));
        let mut bytes = 0;
        while batch.len() < n {
            // A span taken from the queue is in flight until its export is
            // counted (the one carried over already is).
            let queued = match self.carry.take() {
                Some(queued) => queued,
                None => match self.shared.pop() {
                    Some(queued) => {
                        self.shared
                            .counters
                            .in_flight
                            .fetch_add(1, Ordering::AcqRel);
                        queued
                    }
                    None => break,
                },
            };
            if !batch.is_empty() && bytes + queued.bytes > bounds.batch_bytes {
                self.carry = Some(queued);
                break;
            }
            bytes += queued.bytes;
            batch.push(queued.span);
        }
        if batch.is_empty() {
            return 0;
        }
        if let Some(scrubber) = &self.scrubber {
            let list = scrubber.reads_request_attributes();
            for span in batch.iter_mut() {
                if list {
                    span.materialize();
                }
                scrubber.scrub(span);
            }
        }
        let taken = batch.len();
        let len = taken as u64;
        let mut until = Instant::now() + self.export_timeout;
        if let Some(deadline) = deadline {
            until = until.min(deadline);
        }
        let export = self.sink.export(batch, until);
        self.running.push(Box::pin(async move {
            let started = Instant::now();
            let cut_off = tokio::time::Instant::from_std(until + GRACE);
            let outcome = tokio::time::timeout_at(cut_off, export)
                .await
                .unwrap_or_else(|_| Outcome::failed(len, super::error::ExportError::Deadline));
            Finished {
                len,
                outcome,
                took: started.elapsed(),
            }
        }));
        taken
    }

    /// Waits for the first of the running exports to end, and counts it.
    async fn finish_one(&mut self) {
        if let Some(finished) = next_finished(&mut self.running).await {
            self.count(finished);
        }
    }

    /// Counts an ended export: sent, too large, failed (the warnings come
    /// from the reporter, which watches these counters).
    fn count(&mut self, Finished { len, outcome, took }: Finished) {
        self.shared.record_export(took, &outcome);
        let counters = &self.shared.counters;
        counters.in_flight.fetch_sub(len, Ordering::AcqRel);
        // Whatever the sink did not account for is counted as failed.
        let mut failures = outcome.failed;
        let accounted = outcome.sent + outcome.too_large + failures.total();
        failures.other += len.saturating_sub(accounted);
        let failed = failures.total();
        counters.exported.fetch_add(outcome.sent, Ordering::Relaxed);
        counters
            .dropped_too_large
            .fetch_add(outcome.too_large, Ordering::Relaxed);
        if failed > 0 {
            if let Some(error) = outcome.error {
                *self
                    .shared
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
            }
            counters.add_failures(failures);
            self.failing = true;
        } else if self.failing && outcome.sent > 0 {
            self.failing = false;
            self.shared.recovered.store(true, Ordering::Release);
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
