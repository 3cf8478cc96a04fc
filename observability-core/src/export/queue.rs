//! The span queue between the application's threads and the export
//! worker: bounded in spans and in bytes, allocated as it fills (not up
//! front), with the counters behind [`ExportStats`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_queue::{ArrayQueue, SegQueue};
use observability_propagation::starter::{HttpServerRequest, RequestValue};
use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;
use tokio::sync::{Notify, mpsc, oneshot};

use super::error::{ExportError, ExportFailures, FailureCause};

/// Export counts of one processor, or of all of them added up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans the exporter accepted.
    pub exported: u64,
    /// Spans dropped because the queue was full, in spans or in bytes (the
    /// exporter could not keep up, or the collector was unreachable for
    /// long).
    pub dropped_queue_full: u64,
    /// Spans dropped because their export failed or timed out (the sum
    /// of [`failures`](Self::failures)).
    pub dropped_export_failed: u64,
    /// The spans of [`dropped_export_failed`](Self::dropped_export_failed)
    /// by cause.
    pub failures: ExportFailures,
    /// Spans dropped because they were too large to send: alone over the
    /// request size limit, or refused as too large by the collector.
    pub dropped_too_large: u64,
    /// Spans dropped because they ended after shutdown began, or were still
    /// queued or being exported when the shutdown deadline passed.
    pub dropped_at_shutdown: u64,
}

impl ExportStats {
    /// All dropped spans.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_export_failed
            + self.dropped_too_large
            + self.dropped_at_shutdown
    }

    pub(crate) fn add(&mut self, other: ExportStats) {
        self.exported += other.exported;
        self.dropped_queue_full += other.dropped_queue_full;
        self.dropped_export_failed += other.dropped_export_failed;
        self.failures.add(other.failures);
        self.dropped_too_large += other.dropped_too_large;
        self.dropped_at_shutdown += other.dropped_at_shutdown;
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) exported: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_export_failed: AtomicU64,
    /// `dropped_export_failed` by cause, in the order of `FailureCause::ALL`.
    failures: [AtomicU64; FailureCause::ALL.len()],
    pub(crate) dropped_too_large: AtomicU64,
    pub(crate) dropped_at_shutdown: AtomicU64,
    /// Spans taken from the queue and not yet counted as exported or dropped.
    pub(crate) in_flight: AtomicU64,
}

impl Counters {
    /// Counts spans lost to failed exports, in all and by cause.
    pub(crate) fn add_failures(&self, failures: ExportFailures) {
        for (counter, cause) in self.failures.iter().zip(FailureCause::ALL) {
            counter.fetch_add(failures.get(cause), Ordering::Relaxed);
        }
        self.dropped_export_failed
            .fetch_add(failures.total(), Ordering::Relaxed);
    }

    fn failures(&self) -> ExportFailures {
        let mut failures = ExportFailures::default();
        for (counter, cause) in self.failures.iter().zip(FailureCause::ALL) {
            *failures.get_mut(cause) = counter.load(Ordering::Relaxed);
        }
        failures
    }
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
    pub(crate) fn send(self) {
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

/// A queued span and its estimated encoded size. The span is boxed once,
/// when it is queued, in a box an earlier export left ([`Boxes`]): the
/// queue, the batch and the export move a pointer, not the span's 350
/// bytes, and the queue's blocks stay small.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) span: Box<Exported>,
    pub(crate) bytes: usize,
}

/// A span as the export queue holds it: the processors' form, and an HTTP
/// server span's request attributes as they are (they come before the
/// span's own list) until something needs them as a list
/// ([`materialize`](Self::materialize)). Only the OTLP encoder reads them
/// as they are; it reads as the `SpanData` otherwise.
#[derive(Clone, Debug)]
pub(crate) struct Exported {
    pub(crate) data: SpanData,
    pub(crate) http: Option<HttpServerRequest>,
}

impl Exported {
    pub(crate) fn new(data: SpanData) -> Self {
        Self { data, http: None }
    }

    /// How many attributes the span has, the request's included.
    pub(crate) fn attribute_count(&self) -> usize {
        self.http.as_ref().map_or(0, HttpServerRequest::count) + self.data.attributes.len()
    }

    /// Whether `more` attributes fit within `limit` beside the span's:
    /// without counting the request's when all it could hold would fit.
    #[inline]
    pub(crate) fn has_room_for(&self, more: usize, limit: usize) -> bool {
        let listed = self.data.attributes.len() + more;
        listed + HttpServerRequest::KEYS.len() <= limit || self.attribute_count() + more <= limit
    }

    /// Puts the request's attributes at the head of the span's list.
    pub(crate) fn materialize(&mut self) {
        if let Some(http) = self.http.take() {
            let own = std::mem::take(&mut self.data.attributes);
            http.push_to(&mut self.data.attributes);
            self.data.attributes.extend(own);
        }
    }

    /// The span with every attribute in its list.
    pub(crate) fn into_data(mut self) -> SpanData {
        self.materialize();
        self.data
    }
}

impl std::ops::Deref for Exported {
    type Target = SpanData;

    fn deref(&self) -> &SpanData {
        &self.data
    }
}

impl std::ops::DerefMut for Exported {
    fn deref_mut(&mut self) -> &mut SpanData {
        &mut self.data
    }
}

/// The encoded size [`truncate_and_measure`] estimates for the request's
/// attributes, and the length in bytes of its longest value.
pub(crate) fn request_size(http: &HttpServerRequest) -> (usize, usize) {
    let (mut bytes, mut longest) = (0, 0);
    http.for_each(|key, value| {
        bytes += key.len()
            + 8
            + match value {
                RequestValue::Text(text) => {
                    longest = longest.max(text.len());
                    text.len() + 6
                }
                RequestValue::Int(_) => 12,
            };
    });
    (bytes, longest)
}

/// Whether one of the request's values is longer than `limit` characters
/// (then the span's list takes them, to be truncated there).
pub(crate) fn request_over(http: &HttpServerRequest, limit: usize) -> bool {
    let mut over = false;
    http.for_each(|_, value| {
        if let RequestValue::Text(text) = value {
            over |= text.len() > limit && text.chars().nth(limit).is_some();
        }
    });
    over
}

/// The bounds of a queue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// Spans held at most (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub(crate) spans: usize,
    /// Estimated encoded bytes held at most.
    pub(crate) bytes: usize,
    /// Spans per export at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    pub(crate) batch_spans: usize,
    /// Estimated encoded bytes per export at most: a request never goes
    /// over the collector's limit.
    pub(crate) batch_bytes: usize,
}

/// Emptied boxes kept at most: one export's worth of spans, up to 4,096
/// (a batch size set very large keeps no more than this after a burst).
const MAX_KEPT_BOXES: usize = 4096;

/// The room for attributes an emptied box keeps at most, for the next span
/// started in it (a server span has about a dozen): with the box, 1.5 KB,
/// so at most 6.2 MB in all. A longer list is freed.
const MAX_KEPT_ATTRIBUTES: usize = 16;

/// The text of a scope an emptied box keeps at most (a scope with
/// attributes is not kept): at most 0.5 MB in all.
const MAX_KEPT_SCOPE_BYTES: usize = 128;

/// Boxes whose spans were exported, emptied, for the spans queued next: a
/// span is boxed without going to the allocator, which serves a box freed
/// on another thread (the export thread) slowly. A box keeps the room its
/// span's attributes had and its scope, for a span started in it
/// ([`Shared::empty_box`]).
/// They are kept in a ring made up front of [`Boxes::new`]'s `cap` slots (a
/// pointer and a stamp each, 16 bytes), and no more: taking and giving back
/// a box cost no allocation and less than a growing queue's steps.
#[derive(Debug)]
struct Boxes {
    free: ArrayQueue<Box<Exported>>,
}

/// A span holding nothing on the heap: what an emptied box holds, but for
/// the room its attributes had and its scope.
pub(crate) fn empty_span() -> SpanData {
    SpanData {
        span_context: opentelemetry::trace::SpanContext::NONE,
        parent_span_id: opentelemetry::trace::SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: opentelemetry::trace::SpanKind::Internal,
        name: std::borrow::Cow::Borrowed(""),
        start_time: std::time::SystemTime::UNIX_EPOCH,
        end_time: std::time::SystemTime::UNIX_EPOCH,
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: opentelemetry_sdk::trace::SpanEvents::default(),
        links: opentelemetry_sdk::trace::SpanLinks::default(),
        status: opentelemetry::trace::Status::Unset,
        instrumentation_scope: opentelemetry::InstrumentationScope::default(),
    }
}

/// Makes `span` [`empty_span`] where it is (moving its 350 bytes out would
/// cost a copy), but for the room its attributes had and its scope, kept
/// within [`MAX_KEPT_ATTRIBUTES`] and [`MAX_KEPT_SCOPE_BYTES`].
fn empty_in_place(span: &mut SpanData) {
    let SpanData {
        span_context,
        parent_span_id,
        parent_span_is_remote,
        span_kind,
        name,
        start_time,
        end_time,
        attributes,
        dropped_attributes_count,
        events,
        links,
        status,
        instrumentation_scope: scope,
    } = span;
    *span_context = opentelemetry::trace::SpanContext::NONE;
    *parent_span_id = opentelemetry::trace::SpanId::INVALID;
    *parent_span_is_remote = false;
    *span_kind = opentelemetry::trace::SpanKind::Internal;
    *name = std::borrow::Cow::Borrowed("");
    *start_time = std::time::SystemTime::UNIX_EPOCH;
    *end_time = std::time::SystemTime::UNIX_EPOCH;
    attributes.clear();
    if attributes.capacity() > MAX_KEPT_ATTRIBUTES {
        *attributes = Vec::new();
    }
    *dropped_attributes_count = 0;
    *events = opentelemetry_sdk::trace::SpanEvents::default();
    *links = opentelemetry_sdk::trace::SpanLinks::default();
    *status = opentelemetry::trace::Status::Unset;
    let text = scope.name().len()
        + scope.version().map_or(0, str::len)
        + scope.schema_url().map_or(0, str::len);
    if text > MAX_KEPT_SCOPE_BYTES || scope.attributes().next().is_some() {
        *scope = opentelemetry::InstrumentationScope::default();
    }
}

impl Boxes {
    fn new(cap: usize) -> Self {
        Self {
            free: ArrayQueue::new(cap.max(1)),
        }
    }

    /// A kept box, or a new one, holding [`empty_span`] but for the room
    /// for attributes and the scope it kept.
    fn empty(&self) -> Box<Exported> {
        self.free
            .pop()
            .unwrap_or_else(|| Box::new(Exported::new(empty_span())))
    }

    /// `span` in a box, a kept one when there is one (whose room for
    /// attributes is freed: `span` has its own).
    fn boxed(&self, span: SpanData) -> Box<Exported> {
        match self.free.pop() {
            Some(mut kept) => {
                kept.data = span;
                kept
            }
            None => Box::new(Exported::new(span)),
        }
    }

    /// Drops the span in `boxed` (on this thread, the export thread) and
    /// keeps the box, if there is room, with its attributes' room up to
    /// [`MAX_KEPT_ATTRIBUTES`] and its scope when small
    /// ([`MAX_KEPT_SCOPE_BYTES`]): the next span started in the box is
    /// usually of the same scope, which it then need not copy.
    fn recycle(&self, mut boxed: Box<Exported>) {
        if !self.free.is_full() {
            empty_in_place(&mut boxed.data);
            boxed.http = None;
            // Full by now (another thread gave one back first): dropped.
            let _ = self.free.push(boxed);
        }
    }

    /// Takes the span out of `boxed`, and keeps the box if there is room.
    fn take(&self, mut boxed: Box<Exported>) -> SpanData {
        boxed.materialize();
        let span = std::mem::replace(&mut boxed.data, empty_span());
        self.recycle(boxed);
        span
    }
}

/// The spans of one export. Dropping it (when the export ends) empties
/// their boxes for the spans queued next.
#[derive(Debug)]
pub(crate) struct Batch {
    // Boxed on purpose: the boxes go back to `Boxes` for reuse.
    #[allow(clippy::vec_box)]
    spans: Vec<Box<Exported>>,
    shared: Arc<Shared>,
}

impl Batch {
    pub(crate) fn with_capacity(shared: Arc<Shared>, capacity: usize) -> Self {
        Self {
            spans: Vec::with_capacity(capacity),
            shared,
        }
    }

    pub(crate) fn push(&mut self, span: Box<Exported>) {
        self.spans.push(span);
    }

    /// The spans, taken out of their boxes.
    pub(crate) fn into_spans(mut self) -> impl Iterator<Item = SpanData> {
        let spans = std::mem::take(&mut self.spans);
        let shared = Arc::clone(&self.shared);
        spans.into_iter().map(move |boxed| shared.boxes.take(boxed))
    }
}

#[cfg(test)]
impl From<Vec<SpanData>> for Batch {
    /// A batch of its own, for tests.
    fn from(spans: Vec<SpanData>) -> Self {
        Self {
            spans: spans
                .into_iter()
                .map(|span| Box::new(Exported::new(span)))
                .collect(),
            shared: tests::shared(1),
        }
    }
}

impl std::ops::Deref for Batch {
    type Target = [Box<Exported>];

    fn deref(&self) -> &Self::Target {
        &self.spans
    }
}

impl std::ops::DerefMut for Batch {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.spans
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for boxed in self.spans.drain(..) {
            self.shared.boxes.recycle(boxed);
        }
    }
}

/// The slots of the ring of queued spans at most (the queue's bound when
/// smaller), made up front at 24 bytes each: 96 KiB at most. A span goes
/// in and out of the ring without an allocation, in fewer steps than
/// through a growing queue.
const RING_SLOTS: usize = 4096;

/// The queued spans: the ring, and behind it, for a bound set above
/// [`RING_SLOTS`], a queue that takes memory only as it fills. Spans are
/// taken from the ring first: a span that overflowed may leave after
/// later ones (the order of spans in an export carries no meaning).
#[derive(Debug)]
struct Spans {
    ring: ArrayQueue<Queued>,
    overflow: SegQueue<Queued>,
}

impl Spans {
    fn new(bound: usize) -> Self {
        Self {
            ring: ArrayQueue::new(bound.clamp(1, RING_SLOTS)),
            overflow: SegQueue::new(),
        }
    }

    fn push(&self, queued: Queued) {
        if let Err(queued) = self.ring.push(queued) {
            self.overflow.push(queued);
        }
    }

    fn pop(&self) -> Option<Queued> {
        self.ring.pop().or_else(|| self.overflow.pop())
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    queue: Spans,
    boxes: Boxes,
    len: AtomicUsize,
    bytes: AtomicUsize,
    pub(crate) bounds: Bounds,
    pub(crate) notify: Notify,
    pub(crate) counters: Counters,
    closed: AtomicBool,
    /// Set when the worker has ended.
    pub(crate) finished: AtomicBool,
    /// Set when an export succeeded after failures (the reporter says so).
    pub(crate) recovered: AtomicBool,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    /// The last export failure, for the warning that reports it.
    pub(crate) last_error: Mutex<Option<ExportError>>,
    /// The exporter's `otel.component.type` (SDK metrics conventions).
    pub(crate) component_type: &'static str,
    /// `otel.sdk.exporter.operation.duration`, once metrics are set up.
    pub(crate) export_duration: std::sync::OnceLock<opentelemetry::metrics::Histogram<f64>>,
}

/// Why a span was not queued.
pub(crate) enum Refused {
    Full,
    TooLarge,
    Closed,
}

impl Shared {
    pub(crate) fn new(
        bounds: Bounds,
        control: mpsc::UnboundedSender<Control>,
        component_type: &'static str,
    ) -> Self {
        Self {
            queue: Spans::new(bounds.spans),
            boxes: Boxes::new(bounds.batch_spans.min(MAX_KEPT_BOXES)),
            len: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            bounds,
            notify: Notify::new(),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            recovered: AtomicBool::new(false),
            control,
            last_error: Mutex::new(None),
            component_type,
            export_duration: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn stats(&self) -> ExportStats {
        let c = &self.counters;
        ExportStats {
            exported: c.exported.load(Ordering::Relaxed),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
            dropped_export_failed: c.dropped_export_failed.load(Ordering::Relaxed),
            failures: c.failures(),
            dropped_too_large: c.dropped_too_large.load(Ordering::Relaxed),
            dropped_at_shutdown: c.dropped_at_shutdown.load(Ordering::Relaxed),
        }
    }

    /// Records how long one export took (with `error.type` when it lost
    /// spans), once metrics are set up.
    pub(crate) fn record_export(&self, took: std::time::Duration, outcome: &super::Outcome) {
        let Some(histogram) = self.export_duration.get() else {
            return;
        };
        let error = match &outcome.error {
            Some(error) => Some(error.cause().as_str()),
            None if outcome.too_large > 0 => Some("too_large"),
            None => None,
        };
        let component = opentelemetry::KeyValue::new("otel.component.type", self.component_type);
        match error {
            Some(error) => histogram.record(
                took.as_secs_f64(),
                &[component, opentelemetry::KeyValue::new("error.type", error)],
            ),
            None => histogram.record(took.as_secs_f64(), &[component]),
        }
    }

    /// Spans taken from the queue and not yet exported or dropped.
    pub(crate) fn in_flight(&self) -> u64 {
        self.counters.in_flight.load(Ordering::Relaxed)
    }

    /// Spans queued.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Queues a span of `bytes` estimated bytes, within the bounds. The
    /// counters are reserved first, so concurrent pushes never overshoot.
    pub(crate) fn push(&self, span: SpanData, bytes: usize) -> Result<(), Refused> {
        self.reserve(bytes)?;
        self.queue.push(Queued {
            span: self.boxes.boxed(span),
            bytes,
        });
        Ok(())
    }

    /// [`push`](Self::push) for a span already in a box (from
    /// [`empty_box`](Self::empty_box)); a refused span's box is kept for reuse.
    pub(crate) fn push_boxed(&self, span: Box<Exported>, bytes: usize) -> Result<(), Refused> {
        if let Err(refused) = self.reserve(bytes) {
            self.boxes.recycle(span);
            return Err(refused);
        }
        self.queue.push(Queued { span, bytes });
        Ok(())
    }

    /// A box for a span to be started in and queued with
    /// [`push_boxed`](Self::push_boxed): one an earlier export emptied, with
    /// the room its attributes had and its scope, when there is one. It holds
    /// [`empty_span`] but for those.
    #[inline]
    pub(crate) fn empty_box(&self) -> Box<Exported> {
        self.boxes.empty()
    }

    /// Reserves room for a span of `bytes`, within the bounds.
    fn reserve(&self, bytes: usize) -> Result<(), Refused> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Refused::Closed);
        }
        if bytes > self.bounds.batch_bytes {
            return Err(Refused::TooLarge);
        }
        if self.len.fetch_add(1, Ordering::AcqRel) >= self.bounds.spans {
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        if self.bytes.fetch_add(bytes, Ordering::AcqRel) + bytes > self.bounds.bytes {
            self.bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        Ok(())
    }

    /// Takes the oldest span.
    pub(crate) fn pop(&self) -> Option<Queued> {
        let queued = self.queue.pop()?;
        self.bytes.fetch_sub(queued.bytes, Ordering::AcqRel);
        self.len.fetch_sub(1, Ordering::AcqRel);
        Some(queued)
    }

    /// Empties the queue; how many spans it held.
    pub(crate) fn drain(&self) -> u64 {
        let mut left = 0;
        while self.pop().is_some() {
            left += 1;
        }
        left
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
    /// export thread has stopped (`stopped`), the batches it was exporting.
    pub(crate) fn abandon(&self, stopped: bool) {
        let mut left = self.drain();
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

/// Truncates string values (attributes of the span, its events and links)
/// and the span's name to `limit` characters, on a UTF-8 boundary, and
/// returns the span's estimated encoded size in bytes. The estimate is at
/// least what the OTLP encoding takes (every field's tag and length counted
/// generously), so batches cut by it stay under the request limit.
pub(crate) fn truncate_and_measure(span: &mut SpanData, limit: Option<usize>) -> usize {
    fn cut(text: &str, limit: Option<usize>) -> Option<usize> {
        let limit = limit?;
        if text.len() <= limit {
            return None; // fewer bytes than the limit: fewer characters too
        }
        text.char_indices().nth(limit).map(|(idx, _)| idx)
    }
    fn value(value: &mut Value, limit: Option<usize>) -> usize {
        match value {
            Value::String(s) => {
                if let Some(idx) = cut(s.as_str(), limit) {
                    *value = Value::from(s.as_str()[..idx].to_owned());
                }
                match value {
                    Value::String(s) => s.as_str().len() + 6,
                    _ => 6,
                }
            }
            Value::Array(array) => 8 + array_bytes(array),
            _ => 12,
        }
    }
    fn array_bytes(array: &opentelemetry::Array) -> usize {
        use opentelemetry::Array;
        match array {
            Array::String(items) => items.iter().map(|s| s.as_str().len() + 8).sum(),
            Array::Bool(items) => items.len() * 4,
            Array::I64(items) => items.len() * 12,
            Array::F64(items) => items.len() * 12,
            _ => 0,
        }
    }
    fn attributes(attributes: &mut [opentelemetry::KeyValue], limit: Option<usize>) -> usize {
        attributes
            .iter_mut()
            .map(|kv| kv.key.as_str().len() + 8 + value(&mut kv.value, limit))
            .sum()
    }
    if let Some(idx) = cut(&span.name, limit) {
        span.name = span.name[..idx].to_owned().into();
    }
    // Ids, times, kind, flags and the field tags of a span. (`tracestate`
    // is left out: counting it would allocate on every span; the sink
    // splits a request whose real size is over the limit.)
    let mut bytes = 96 + span.name.len();
    bytes += attributes(&mut span.attributes, limit);
    for event in span.events.events.iter_mut() {
        bytes += 24 + event.name.len() + attributes(&mut event.attributes, limit);
    }
    for link in span.links.links.iter_mut() {
        bytes += 56 + attributes(&mut link.attributes, limit);
    }
    if let opentelemetry::trace::Status::Error { description } = &span.status {
        bytes += 8 + description.len();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use observability_propagation::starter::HttpServerRequest;
    use opentelemetry::{InstrumentationScope, KeyValue};

    use super::*;

    /// A queue of 100 spans with batches of `batch_spans`, for tests.
    pub(super) fn shared(batch_spans: usize) -> Arc<Shared> {
        let bounds = Bounds {
            spans: 100,
            bytes: 1 << 20,
            batch_spans,
            batch_bytes: 1 << 20,
        };
        let (control, _) = mpsc::unbounded_channel();
        Arc::new(Shared::new(bounds, control, "test"))
    }

    fn span(name: &str, attributes: usize) -> SpanData {
        let mut span = empty_span();
        span.name = name.to_owned().into();
        span.attributes = (0..attributes)
            .map(|i| KeyValue::new(format!("key.{i}"), i as i64))
            .collect();
        span
    }

    fn batch_of(shared: &Arc<Shared>) -> Batch {
        let mut batch = Batch::with_capacity(Arc::clone(shared), 8);
        while let Some(queued) = shared.pop() {
            batch.push(queued.span);
        }
        batch
    }

    #[test]
    fn a_queue_bound_above_the_ring_overflows_into_a_growing_queue_and_loses_nothing() {
        let bound = RING_SLOTS + 3;
        let bounds = Bounds {
            spans: bound,
            bytes: 1 << 30,
            batch_spans: 8,
            batch_bytes: 1 << 20,
        };
        let (control, _) = mpsc::unbounded_channel();
        let shared = Shared::new(bounds, control, "test");
        assert_eq!(shared.queue.ring.capacity(), RING_SLOTS);
        for i in 0..bound {
            assert!(shared.push(span(&i.to_string(), 0), 10).is_ok(), "{i}");
        }
        assert_eq!(shared.queue.overflow.len(), 3, "the three over the ring");
        assert!(matches!(
            shared.push(span("over", 0), 10),
            Err(Refused::Full)
        ));
        // Room again: the next span goes into the ring, and every span
        // comes out once, the ring's first.
        let first = shared.pop().unwrap();
        assert_eq!(first.span.name, "0");
        assert!(shared.push(span("next", 0), 10).is_ok());
        let mut names = vec![first.span.name.to_string()];
        while let Some(queued) = shared.pop() {
            names.push(queued.span.name.to_string());
        }
        assert_eq!(shared.len(), 0);
        assert_eq!(names.len(), bound + 1);
        assert_eq!(
            names[RING_SLOTS], "next",
            "after the ring's, before the overflow"
        );
        let mut expected: Vec<String> = (0..bound).map(|i| i.to_string()).collect();
        expected.push("next".to_owned());
        names.sort();
        expected.sort();
        assert_eq!(names, expected);
        // A smaller bound makes a ring of its size.
        assert_eq!(self::shared(2).queue.ring.capacity(), 100);
    }

    #[test]
    fn exported_boxes_are_kept_empty_up_to_the_cap_and_reused() {
        let shared = shared(2);
        for i in 0..3 {
            assert!(shared.push(span(&format!("s{i}"), 4), 10).is_ok());
        }
        drop(batch_of(&shared));
        // Three boxes came back; two are kept, holding nothing but the room
        // their attributes had.
        assert_eq!(shared.boxes.free.len(), 2);
        let kept = shared.boxes.free.pop().unwrap();
        assert!(kept.name.is_empty() && kept.attributes.is_empty());
        assert_eq!(kept.attributes.capacity(), 4);
        assert!(shared.boxes.free.push(kept).is_ok());
        // The next spans take the kept boxes and hold what they were given.
        assert!(shared.push(span("next", 1), 10).is_ok());
        assert!(shared.push(span("after", 0), 10).is_ok());
        assert!(shared.push(span("fresh", 2), 10).is_ok());
        assert_eq!(shared.boxes.free.len(), 0);
        let batch = batch_of(&shared);
        let names: Vec<&str> = batch.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["next", "after", "fresh"]);
        let attributes: Vec<usize> = batch.iter().map(|s| s.attributes.len()).collect();
        assert_eq!(attributes, [1, 0, 2]);
        // Taken out of their boxes, the spans are whole; the boxes are kept.
        let spans: Vec<SpanData> = batch.into_spans().collect();
        assert_eq!(spans[2].name, "fresh");
        assert_eq!(spans[2].attributes, span("fresh", 2).attributes);
        assert_eq!(shared.boxes.free.len(), 2);
        // A very large batch size keeps no more boxes than the bound.
        assert_eq!(self::shared(1 << 20).boxes.free.capacity(), MAX_KEPT_BOXES);
    }

    #[test]
    fn a_span_started_in_an_emptied_box_reuses_its_attributes_room_and_scope_within_bounds() {
        let shared = shared(4);
        let mut first = shared.empty_box();
        assert_eq!(first.attributes.capacity(), 0, "no box was kept yet");
        first.data = span("first", 3);
        first.instrumentation_scope = InstrumentationScope::builder("lib").build();
        let room = first.attributes.as_ptr();
        assert!(shared.push_boxed(first, 10).is_ok());
        let mut wide = shared.empty_box();
        wide.data = span("wide", MAX_KEPT_ATTRIBUTES + 1);
        wide.instrumentation_scope = InstrumentationScope::builder("lib")
            .with_attributes([KeyValue::new("k", "v")])
            .build();
        assert!(shared.push_boxed(wide, 10).is_ok());
        drop(batch_of(&shared));
        // The first span's list came back empty, in the same allocation,
        // with its scope; the list longer than the bound did not, nor the
        // scope with attributes.
        let reused = shared.empty_box();
        assert!(reused.attributes.is_empty() && reused.name.is_empty());
        assert_eq!(reused.attributes.as_ptr(), room);
        assert_eq!(reused.attributes.capacity(), 3);
        assert_eq!(reused.instrumentation_scope.name(), "lib");
        let other = shared.empty_box();
        assert_eq!(other.attributes.capacity(), 0);
        assert_eq!(other.instrumentation_scope, InstrumentationScope::default());
        assert_eq!(shared.boxes.free.len(), 0);
    }

    fn request(user_agent: &str) -> HttpServerRequest {
        HttpServerRequest {
            method: "GET",
            method_original: None,
            route: Some("/orders/{id}".into()),
            path: "/orders/7".into(),
            query: Some("page=2".into()),
            scheme: "https".into(),
            server_address: Some("shop.example".into()),
            server_port: Some(443),
            client_address: Some("10.0.0.7".into()),
            peer: Some(("10.0.0.7".into(), 51000)),
            protocol_version: Some("1.1"),
            user_agent: Some(user_agent.to_owned().into()),
            status_code: None,
        }
    }

    #[test]
    fn the_request_attributes_come_first_and_are_measured_as_in_the_list() {
        let http = request("curl/8.5");
        let mut exported = Exported::new(span("s", 2));
        exported.http = Some(http.clone());
        assert_eq!(exported.attribute_count(), 12 + 2);
        // Room within a limit, the request's counted when it matters.
        for (more, limit, room) in [(0, 14, true), (1, 14, false), (2, 16, true), (3, 16, false)] {
            assert_eq!(
                exported.has_room_for(more, limit),
                room,
                "{more} under {limit}"
            );
        }
        assert!(exported.has_room_for(100, 128));
        let (typed_bytes, longest) = request_size(&http);
        assert_eq!(longest, "/orders/{id}".len());
        let own_bytes = truncate_and_measure(&mut exported.data.clone(), None);
        exported.materialize();
        assert!(exported.http.is_none());
        let mut list = Vec::new();
        http.push_to(&mut list);
        assert_eq!(list.len(), 12);
        list.extend(span("s", 2).attributes);
        assert_eq!(exported.attributes, list);
        assert_eq!(
            typed_bytes + own_bytes,
            truncate_and_measure(&mut exported.data, None),
            "the estimate is the list's"
        );
    }

    #[test]
    fn a_request_value_over_the_length_limit_is_found() {
        let long = "é".repeat(40);
        assert!(request_over(&request(&long), 39));
        assert!(!request_over(&request(&long), 40), "characters, not bytes");
        assert_eq!(request_size(&request(&long)).1, 80);
    }

    #[test]
    fn a_refused_boxed_span_leaves_its_box_for_reuse() {
        let shared = shared(2);
        let mut boxed = shared.empty_box();
        boxed.data = span("late", 3);
        shared.begin_shutdown(Instant::now(), Reply::Ignored);
        assert!(matches!(shared.push_boxed(boxed, 10), Err(Refused::Closed)));
        assert_eq!(shared.len(), 0);
        assert_eq!(shared.boxes.free.len(), 1);
        let kept = shared.boxes.free.pop().unwrap();
        assert!(kept.name.is_empty() && kept.attributes.is_empty());
        assert_eq!(kept.attributes.capacity(), 3);
    }
}
