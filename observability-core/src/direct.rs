//! Spans started without the SDK's tracer, by the HTTP layers
//! ([`observability_propagation::starter`]) and by the `tracing` bridge of
//! `init()`'s provider: [`DirectStarter`] makes the
//! span `SdkTracer::build_with_context` would make (opentelemetry_sdk 0.33,
//! `trace/tracer.rs`) — the same sampling decision, counted the same, the
//! same span context, limits and processors — and [`DirectSpan`] behaves as
//! the SDK's `Span` (`trace/span.rs`) does, down to the limits and the status
//! order. What it leaves out is the SDK's way there: the span builder, the
//! sampler's full result, the global tracer's second box, and on end the
//! copy into the processors' form (a span here holds that form from the
//! start, in a box the export queue takes as it is).
//!
//! The provider's processors are [`Installed`] in it, so that the starter
//! ends spans into the same processors and knows when the provider shut
//! down (it then gives way to the SDK, whose spans no longer record); the
//! pipeline says so too, for a provider without processors.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use observability_propagation::sampling::dropped_span_context;
use observability_propagation::starter::{Describe, SpanStarter, Started};
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SpanData, SpanLimits, SpanProcessor,
};

use crate::bridge::keeps;
use crate::config::SamplerSetting;
use crate::export::processor::QueueProcessor;
use crate::export::queue::{Exported, empty_span};
use crate::export::same_scope;
use crate::metrics::SpanCounts;

/// A processor of a provider: the export queue, whose spans are queued in
/// their boxes, or any other.
#[derive(Clone, Debug)]
pub(crate) enum End {
    Queue(Arc<QueueProcessor>),
    Other(Arc<dyn SpanProcessor>),
}

impl End {
    fn processor(&self) -> Arc<dyn SpanProcessor> {
        match self {
            End::Queue(queue) => Arc::clone(queue) as Arc<dyn SpanProcessor>,
            End::Other(other) => Arc::clone(other),
        }
    }

    #[inline]
    fn end(&self, span: Box<Exported>) {
        match self {
            End::Queue(queue) => queue.end_boxed(span),
            End::Other(other) => other.on_end(span.into_data()),
        }
    }
}

/// The processors of a provider, in the provider's order, and whether it
/// shut down.
#[derive(Debug, Default)]
pub(crate) struct Ends {
    processors: Vec<End>,
    closed: Arc<AtomicBool>,
}

impl Ends {
    /// `processors`, and what to install in the provider for each (in the
    /// same order).
    pub(crate) fn new(processors: Vec<End>) -> (Arc<Self>, Vec<Installed>) {
        let closed = Arc::new(AtomicBool::new(false));
        let installed = processors
            .iter()
            .map(|p| Installed {
                processor: p.processor(),
                closed: Arc::clone(&closed),
            })
            .collect();
        (Arc::new(Self { processors, closed }), installed)
    }

    /// Says the provider shut down (its processors' shutdown says so too).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A box to start a span in, holding an empty span: one the export
    /// queue takes as it is, with room for attributes and the scope of its
    /// last span, when the first processor is one.
    #[inline]
    fn empty_box(&self) -> Box<Exported> {
        match self.processors.first() {
            Some(End::Queue(queue)) => queue.empty_box(),
            _ => Box::new(Exported::new(empty_span())),
        }
    }

    /// Hands a finished span to every processor, as the SDK does: a copy to
    /// each but the last (the request's attributes in the list then, as
    /// every copy holds them).
    fn end(&self, mut span: Box<Exported>) {
        if let [rest @ .., last] = self.processors.as_slice() {
            if !rest.is_empty() {
                span.materialize();
            }
            for processor in rest {
                processor.end(Box::new((*span).clone()));
            }
            last.end(span);
        }
    }
}

/// A processor as installed in the provider: its shutdown also tells the
/// starter that the provider shut down.
#[derive(Debug)]
pub(crate) struct Installed {
    processor: Arc<dyn SpanProcessor>,
    closed: Arc<AtomicBool>,
}

impl SpanProcessor for Installed {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.processor.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.processor.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.processor.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.closed.store(true, Ordering::Release);
        self.processor.shutdown_with_timeout(timeout)
    }
}

/// Starts the spans of one provider without its tracer. Its processors'
/// `on_start` is not called: every processor `init()` installs ignores it.
#[derive(Debug)]
pub(crate) struct DirectStarter {
    sampler: SamplerSetting,
    counts: Arc<SpanCounts>,
    limits: SpanLimits,
    ends: Arc<Ends>,
    ids: RandomIdGenerator,
}

impl DirectStarter {
    pub(crate) fn new(
        sampler: SamplerSetting,
        counts: Arc<SpanCounts>,
        limits: SpanLimits,
        ends: Arc<Ends>,
    ) -> Self {
        Self {
            sampler,
            counts,
            limits,
            ends,
            ids: RandomIdGenerator::default(),
        }
    }

    /// Says the provider shut down (its processors' shutdown says so too).
    pub(crate) fn close(&self) {
        self.ends.close();
    }
}

impl SpanStarter for DirectStarter {
    fn start(
        &self,
        scope: &InstrumentationScope,
        kind: SpanKind,
        context: &Context,
        parent_span: Option<&SpanContext>,
        describe: Describe<'_>,
    ) -> Option<Started> {
        if self.ends.closed() || context.is_telemetry_suppressed() {
            return None;
        }
        // As `SdkTracer::build_with_context`: a new span id whatever the
        // decision; the parent's trace when it is valid.
        let span_id = self.ids.new_span_id();
        let trace_id = match parent_span.filter(|sc| sc.is_valid()) {
            Some(parent) => parent.trace_id(),
            None => self.ids.new_trace_id(),
        };
        let sampled = keeps(
            &self.sampler,
            parent_span.map(SpanContext::is_sampled),
            trace_id,
        );
        self.counts.count(sampled);
        if !sampled {
            let sc = dropped_span_context(trace_id, span_id, parent_span);
            return Some(Started {
                context: context.with_remote_span_context(sc),
                recording: false,
            });
        }
        // The attributes go straight into the box the span is queued in.
        let mut data = self.ends.empty_box();
        let Exported { data: span, http } = &mut *data;
        let name = describe(&mut span.attributes, http);
        self.fill_described(&mut data, scope, kind, name);
        Some(Started {
            context: self.record(context, parent_span, span_id, trace_id, data),
            recording: true,
        })
    }
}

/// What a span the sampler kept starts with, as a span builder holds it.
pub(crate) struct Kept {
    pub(crate) kind: SpanKind,
    pub(crate) name: Cow<'static, str>,
    /// Now when `None`.
    pub(crate) start_time: Option<SystemTime>,
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) events: Vec<Event>,
    pub(crate) links: Vec<Link>,
    pub(crate) status: Status,
}

impl DirectStarter {
    /// Starts a span the caller decided to keep, as the sampler would have
    /// on `trace_id` (the parent's when `context` has a valid span), and
    /// counts it. `kept` back when the provider shut down or `context`
    /// suppresses telemetry: ask the tracer.
    pub(crate) fn start_kept(
        &self,
        scope: &InstrumentationScope,
        context: &Context,
        trace_id: TraceId,
        kept: Kept,
    ) -> Result<Context, Box<Kept>> {
        if self.ends.closed() || context.is_telemetry_suppressed() {
            return Err(Box::new(kept));
        }
        self.counts.count(true);
        let span = context.span();
        let parent_span = context.has_active_span().then(|| span.span_context());
        let span_id = self.ids.new_span_id();
        let mut data = self.ends.empty_box();
        self.fill(&mut data, scope, kept);
        Ok(self.record(context, parent_span, span_id, trace_id, data))
    }

    /// Writes what `kept` holds into `data`, an empty span from
    /// [`Ends::empty_box`] (whose attributes may already be there: `kept`'s
    /// follow them; its scope may be an earlier span's), with the limits
    /// applied as
    /// `SdkTracer::build_recording_span` applies them.
    fn fill(&self, exported: &mut Exported, scope: &InstrumentationScope, kept: Kept) {
        let limits = &self.limits;
        let Kept {
            kind,
            name,
            start_time,
            mut attributes,
            mut events,
            mut links,
            status,
        } = kept;
        // The request's attributes stay as they are while the span's limit
        // leaves room for every one.
        if !exported.has_room_for(attributes.len(), limits.max_attributes_per_span as usize) {
            exported.materialize();
        }
        let data = &mut exported.data;
        // `kept`'s list itself when the box has no room for it (a new box).
        if data.attributes.is_empty() && data.attributes.capacity() < attributes.len() {
            std::mem::swap(&mut data.attributes, &mut attributes);
        } else {
            data.attributes.append(&mut attributes);
        }
        data.events.dropped_count = cap_each(
            &mut events,
            limits.max_events_per_span,
            limits.max_attributes_per_event,
        );
        set_empty(&mut data.events.events, events);
        data.links.dropped_count = cap_each(
            &mut links,
            limits.max_links_per_span,
            limits.max_attributes_per_link,
        );
        set_empty(&mut data.links.links, links);
        data.status = status;
        self.fill_head(data, scope, kind, name, start_time);
    }

    /// [`fill`](Self::fill) for a span that starts now with its name and
    /// the attributes `describe` put in the box, and nothing else: no
    /// events, links or status to write over the empty box's.
    fn fill_described(
        &self,
        exported: &mut Exported,
        scope: &InstrumentationScope,
        kind: SpanKind,
        name: Cow<'static, str>,
    ) {
        if !exported.has_room_for(0, self.limits.max_attributes_per_span as usize) {
            exported.materialize();
        }
        self.fill_head(&mut exported.data, scope, kind, name, None);
    }

    /// What every start writes: the attributes capped, the scope, the kind,
    /// the name and the times (now when `None`).
    fn fill_head(
        &self,
        data: &mut SpanData,
        scope: &InstrumentationScope,
        kind: SpanKind,
        name: Cow<'static, str>,
        start_time: Option<SystemTime>,
    ) {
        data.dropped_attributes_count =
            cap(&mut data.attributes, self.limits.max_attributes_per_span);
        // A kept box usually holds this scope already.
        if !same_scope(&data.instrumentation_scope, scope) {
            data.instrumentation_scope = scope.clone();
        }
        let start_time = start_time.unwrap_or_else(opentelemetry::time::now);
        data.span_kind = kind;
        data.name = name;
        data.start_time = start_time;
        data.end_time = start_time;
    }

    /// `context` with `data` (filled by [`fill`](Self::fill)) as its
    /// recording span: child of `parent_span` (the span context of the
    /// context's span, if it has one) when valid, with the sampler's trace
    /// state (that span's, valid or not).
    fn record(
        &self,
        context: &Context,
        parent_span: Option<&SpanContext>,
        span_id: SpanId,
        trace_id: TraceId,
        mut data: Box<Exported>,
    ) -> Context {
        let parent = parent_span.filter(|sc| sc.is_valid());
        let trace_state = parent_span
            .map(|sc| sc.trace_state().clone())
            .unwrap_or_default();
        let flags = parent
            .map_or(TraceFlags::default(), SpanContext::trace_flags)
            .with_sampled(true);
        let span_context = SpanContext::new(trace_id, span_id, flags, false, trace_state);
        data.parent_span_id = parent.map_or(SpanId::INVALID, SpanContext::span_id);
        data.parent_span_is_remote = parent.is_some_and(SpanContext::is_remote);
        data.span_context = span_context.clone();
        let span = DirectSpan {
            span_context,
            data: Some(data),
            limits: self.limits,
            ends: Arc::clone(&self.ends),
        };
        context.with_span(span)
    }
}

/// Sets a field of an empty span (`empty_span()`: its events and links own
/// nothing on the heap) without dropping what it held, which would cost a
/// call for nothing.
fn set_empty<T>(field: &mut T, value: T) {
    std::mem::forget(std::mem::replace(field, value));
}

/// Truncates `items` to `limit`; how many were dropped.
fn cap<T>(items: &mut Vec<T>, limit: u32) -> u32 {
    let dropped = items.len().saturating_sub(limit as usize);
    items.truncate(limit as usize);
    dropped as u32
}

/// An event or a link, whose attributes the span's limits cap.
trait WithAttributes {
    /// The attributes, and how many were dropped.
    fn attributes_mut(&mut self) -> (&mut Vec<KeyValue>, &mut u32);
}

impl WithAttributes for Event {
    fn attributes_mut(&mut self) -> (&mut Vec<KeyValue>, &mut u32) {
        (&mut self.attributes, &mut self.dropped_attributes_count)
    }
}

impl WithAttributes for Link {
    fn attributes_mut(&mut self) -> (&mut Vec<KeyValue>, &mut u32) {
        (&mut self.attributes, &mut self.dropped_attributes_count)
    }
}

/// Caps `items` at `limit` and each one's attributes at
/// `attributes_limit`, as `build_recording_span` caps a builder's events
/// and links; how many items were dropped.
fn cap_each<T: WithAttributes>(items: &mut Vec<T>, limit: u32, attributes_limit: u32) -> u32 {
    let dropped = cap(items, limit);
    for item in items.iter_mut() {
        let (attributes, dropped) = item.attributes_mut();
        *dropped = cap(attributes, attributes_limit);
    }
    dropped
}

/// Adds `item`, its attributes capped at `attributes_limit`, to `items`
/// when they are under `limit`, else counts it in `dropped`: the SDK's
/// `add_event` and `add_link`.
fn add_capped<T: WithAttributes>(
    items: &mut Vec<T>,
    dropped: &mut u32,
    (limit, attributes_limit): (u32, u32),
    mut item: T,
) {
    if items.len() < limit as usize {
        let (attributes, dropped_attributes) = item.attributes_mut();
        *dropped_attributes = cap(attributes, attributes_limit);
        items.push(item);
    } else {
        *dropped += 1;
    }
}

/// A recording span started by [`DirectStarter`]: the SDK's `Span`, holding
/// the processors' form of its data from the start.
#[derive(Debug)]
pub(crate) struct DirectSpan {
    span_context: SpanContext,
    /// `None` once ended. Boxed, so that the context's copy of the span is
    /// small and the queue takes the data without moving it.
    data: Option<Box<Exported>>,
    limits: SpanLimits,
    ends: Arc<Ends>,
}

impl DirectSpan {
    /// Ends the span at `timestamp`, or now when `None` and no end time was
    /// set, and hands it to the processors unless the provider shut down.
    fn end_at(&mut self, timestamp: Option<SystemTime>) {
        let Some(mut data) = self.data.take() else {
            return;
        };
        if self.ends.closed() {
            return;
        }
        if let Some(timestamp) = timestamp {
            data.end_time = timestamp;
        } else if data.end_time == data.start_time {
            data.end_time = opentelemetry::time::now();
        }
        self.ends.end(data);
    }
}

impl opentelemetry::trace::Span for DirectSpan {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        let limits = (
            self.limits.max_events_per_span,
            self.limits.max_attributes_per_event,
        );
        if let Some(data) = &mut self.data {
            let event = Event::new(name, timestamp, attributes, 0);
            let events = &mut data.events;
            add_capped(&mut events.events, &mut events.dropped_count, limits, event);
        }
    }

    fn span_context(&self) -> &SpanContext {
        &self.span_context
    }

    fn is_recording(&self) -> bool {
        self.data.is_some()
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        let limit = self.limits.max_attributes_per_span as usize;
        if let Some(data) = &mut self.data {
            if !data.has_room_for(1, limit) {
                data.dropped_attributes_count += 1;
            } else if !data
                .http
                .as_mut()
                .is_some_and(|http| http.keep_status_code(&attribute))
            {
                data.attributes.push(attribute);
            }
        }
    }

    fn set_status(&mut self, status: Status) {
        if let Some(data) = &mut self.data {
            // Ok > Error > Unset, as the SDK orders them.
            if status > data.status {
                data.status = status;
            }
        }
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        if let Some(data) = &mut self.data {
            data.name = new_name.into();
        }
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        let limits = (
            self.limits.max_links_per_span,
            self.limits.max_attributes_per_link,
        );
        if let Some(data) = &mut self.data {
            let link = Link::new(span_context, attributes, 0);
            let links = &mut data.links;
            add_capped(&mut links.links, &mut links.dropped_count, limits, link);
        }
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        self.end_at(Some(timestamp));
    }
}

impl Drop for DirectSpan {
    fn drop(&mut self) {
        self.end_at(None);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use opentelemetry::trace::{TraceId, TraceState, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use observability_propagation::starter::HttpServerRequest;

    use super::*;
    use crate::metrics::CountingSampler;

    /// Keeps every span it is given.
    #[derive(Debug, Default)]
    pub(crate) struct Keep(pub(crate) Mutex<Vec<SpanData>>);

    impl SpanProcessor for Keep {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    const LIMITS: SpanLimits = SpanLimits {
        max_attributes_per_span: 4,
        max_events_per_span: 2,
        max_links_per_span: 1,
        max_attributes_per_event: 1,
        max_attributes_per_link: 1,
    };

    pub(crate) fn scope() -> InstrumentationScope {
        InstrumentationScope::builder("test-scope")
            .with_version("1.2.3")
            .build()
    }

    /// Two processors (the copy to the first is the SDK's too), and what
    /// installs them.
    fn ends() -> (Arc<Keep>, Arc<Keep>, Arc<Ends>, Vec<Installed>) {
        let (a, b) = (Arc::new(Keep::default()), Arc::new(Keep::default()));
        let list = vec![End::Other(a.clone()), End::Other(b.clone())];
        let (ends, installed) = Ends::new(list);
        (a, b, ends, installed)
    }

    fn remote(flags: u8, remote: bool, state: &str) -> SpanContext {
        SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::new(flags),
            remote,
            state.parse::<TraceState>().unwrap(),
        )
    }

    /// What is the same for a span wherever it was started: everything
    /// but its own ids (whether they are valid instead) and times (their
    /// order instead).
    fn comparable(span: &SpanData, parent: &Context) -> String {
        let own = &span.span_context;
        let parent_trace = parent.span().span_context().trace_id();
        format!(
            "valid={} same_trace={} flags={:?} state={} remote={} parent={} parent_remote={} \
             kind={:?} name={} ordered={} attributes={:?} dropped={} events={:?} \
             links={:?} status={:?} scope={:?}",
            own.is_valid(),
            own.trace_id() == parent_trace,
            own.trace_flags(),
            own.trace_state().header(),
            own.is_remote(),
            span.parent_span_id,
            span.parent_span_is_remote,
            span.span_kind,
            span.name,
            span.start_time <= span.end_time,
            span.attributes,
            span.dropped_attributes_count,
            span.events
                .iter()
                .map(|e| (&e.name, &e.attributes, e.dropped_attributes_count))
                .collect::<Vec<_>>(),
            span.links
                .iter()
                .map(|l| (
                    l.span_context.span_id(),
                    &l.attributes,
                    l.dropped_attributes_count
                ))
                .collect::<Vec<_>>(),
            span.status,
            span.instrumentation_scope,
        ) + &format!(
            " events_dropped={} links_dropped={}",
            span.events.dropped_count, span.links.dropped_count
        )
    }

    /// What a handler does with the span in its context.
    fn exercise(cx: &Context, end_explicitly: bool) -> String {
        let span = cx.span();
        let before = format!(
            "recording={} sampled={} flags={:?} state={} remote={}",
            span.is_recording(),
            span.span_context().is_sampled(),
            span.span_context().trace_flags(),
            span.span_context().trace_state().header(),
            span.span_context().is_remote(),
        );
        for i in 0..3 {
            span.set_attribute(KeyValue::new(format!("late.{i}"), i));
        }
        for i in 0..3 {
            let attributes = vec![KeyValue::new("a", i), KeyValue::new("b", i)];
            span.add_event(format!("event {i}"), attributes);
        }
        for i in 0..2 {
            let link = remote(1, true, "");
            span.add_link(link, vec![KeyValue::new("l", i), KeyValue::new("m", i)]);
        }
        span.set_status(Status::error("second"));
        span.set_status(Status::Unset);
        span.set_status(Status::error("first"));
        span.set_status(Status::Ok);
        span.set_status(Status::error("after ok"));
        span.update_name("renamed");
        if end_explicitly {
            span.end();
            span.set_attribute(KeyValue::new("after.end", true));
        }
        before
    }

    #[test]
    fn starts_and_ends_the_span_the_sdk_does() {
        let parents = [
            Context::new(),
            Context::new().with_remote_span_context(remote(1, true, "")),
            Context::new().with_remote_span_context(remote(3, true, "a=1,b=2")),
            Context::new().with_remote_span_context(remote(0, true, "a=1")),
            Context::new().with_remote_span_context(remote(1, false, "")),
            Context::new().with_remote_span_context(SpanContext::empty_context()),
        ];
        let samplers = [
            SamplerSetting::AlwaysOn,
            SamplerSetting::AlwaysOff,
            SamplerSetting::ParentBased(Box::new(SamplerSetting::AlwaysOn)),
            SamplerSetting::ParentBased(Box::new(SamplerSetting::AlwaysOff)),
        ];
        let mut recorded = 0;
        for sampler in &samplers {
            let (sdk_a, sdk_b, _, installed) = ends();
            let sdk_counts = Arc::new(SpanCounts::default());
            let mut builder = SdkTracerProvider::builder()
                .with_span_limits(LIMITS)
                .with_sampler(CountingSampler {
                    inner: sampler.to_sdk(),
                    counts: Arc::clone(&sdk_counts),
                });
            for processor in installed {
                builder = builder.with_span_processor(processor);
            }
            let provider = builder.build();
            let tracer = provider.tracer_with_scope(scope());
            let (direct_a, direct_b, ends, _) = ends();
            let counts = Arc::new(SpanCounts::default());
            let starter = DirectStarter::new(sampler.clone(), Arc::clone(&counts), LIMITS, ends);
            for parent in &parents {
                for end_explicitly in [false, true] {
                    let attributes = || {
                        (0..6)
                            .map(|i| KeyValue::new(format!("start.{i}"), i))
                            .collect::<Vec<_>>()
                    };
                    let sdk_span = tracer
                        .span_builder("start")
                        .with_kind(SpanKind::Server)
                        .with_attributes(attributes())
                        .start_with_context(&tracer, parent);
                    let sdk_cx = parent.with_span(sdk_span);
                    let sdk_seen = exercise(&sdk_cx, end_explicitly);
                    drop(sdk_cx);

                    let span = parent.span();
                    let parent_span = parent.has_active_span().then(|| span.span_context());
                    let mut describe = |list: &mut Vec<KeyValue>, _: &mut Option<_>| {
                        list.extend(attributes());
                        Cow::Borrowed("start")
                    };
                    let started = starter
                        .start(
                            &scope(),
                            SpanKind::Server,
                            parent,
                            parent_span,
                            &mut describe,
                        )
                        .unwrap();
                    let cx = started.context;
                    assert_eq!(started.recording, cx.span().is_recording());
                    let seen = exercise(&cx, end_explicitly);
                    drop(cx);
                    assert_eq!(seen, sdk_seen, "{sampler:?} under {parent:?}");
                }
            }
            let spans = |keep: &Keep| {
                let spans = keep.0.lock().unwrap();
                spans
                    .iter()
                    .zip(parents.iter().flat_map(|p| [p, p]))
                    .map(|(s, p)| comparable(s, p))
                    .collect::<Vec<_>>()
            };
            let sdk = spans(&sdk_a);
            assert_eq!(spans(&direct_a), sdk, "{sampler:?}");
            assert_eq!(spans(&direct_b), spans(&sdk_b), "{sampler:?}");
            assert_eq!(spans(&direct_b), sdk, "each processor sees the span");
            let counted = |c: &SpanCounts| c.0.each_ref().map(|n| n.load(Ordering::Relaxed));
            assert_eq!(counted(&counts), counted(&sdk_counts), "{sampler:?}");
            recorded += sdk.len();
        }
        // Spans recorded (under some samplers, not all) and dropped.
        assert!(recorded > 0 && recorded < samplers.len() * parents.len() * 2);
    }

    /// A span named `name` under `cx` (and its span, if any) through
    /// `starter`.
    fn start(
        starter: &DirectStarter,
        cx: &Context,
        kind: SpanKind,
        name: &'static str,
    ) -> Option<Context> {
        let span = cx.span();
        let parent = cx.has_active_span().then(|| span.span_context());
        let mut describe = |_: &mut Vec<KeyValue>, _: &mut Option<_>| Cow::Borrowed(name);
        let started = starter.start(&scope(), kind, cx, parent, &mut describe)?;
        assert_eq!(started.recording, started.context.span().is_recording());
        Some(started.context)
    }

    fn always_on(ends: Arc<Ends>) -> DirectStarter {
        let sampler = SamplerSetting::ParentBased(Box::new(SamplerSetting::AlwaysOn));
        DirectStarter::new(sampler, Arc::default(), SpanLimits::default(), ends)
    }

    #[test]
    fn spans_of_a_recording_parent_under_the_sdk_are_its_children() {
        let (keep, _, ends, _) = ends();
        let starter = always_on(ends);
        let outer = start(&starter, &Context::new(), SpanKind::Server, "outer").unwrap();
        let inner = start(&starter, &outer, SpanKind::Client, "inner").unwrap();
        drop(inner);
        drop(outer);
        let spans = keep.0.lock().unwrap();
        let [inner, outer] = spans.as_slice() else {
            panic!("{spans:?}");
        };
        assert_eq!(inner.span_context.trace_id(), outer.span_context.trace_id());
        assert_eq!(inner.parent_span_id, outer.span_context.span_id());
        assert!(!inner.parent_span_is_remote);
        assert_eq!(outer.parent_span_id, SpanId::INVALID);
        assert_eq!(outer.span_context.trace_flags(), TraceFlags::SAMPLED);
    }

    #[test]
    fn attributes_go_into_the_room_a_box_kept_or_bring_their_own_list() {
        let (_, _, ends, _) = ends();
        let starter = DirectStarter::new(SamplerSetting::AlwaysOn, Arc::default(), LIMITS, ends);
        let kept = |attributes: Vec<KeyValue>| Kept {
            kind: SpanKind::Internal,
            name: Cow::Borrowed("work"),
            start_time: None,
            attributes,
            events: Vec::new(),
            links: Vec::new(),
            status: Status::Unset,
        };
        let six = || (0..6).map(|i| KeyValue::new("k", i)).collect::<Vec<_>>();
        // A box with room: the attributes are copied into it, and the limit
        // applies to them all.
        let mut data = Box::new(Exported::new(empty_span()));
        data.attributes.reserve(8);
        let room = data.attributes.as_ptr();
        starter.fill(&mut data, &scope(), kept(six()));
        assert_eq!(data.attributes.as_ptr(), room);
        assert_eq!(data.attributes, six()[..4]);
        assert_eq!(data.dropped_attributes_count, 2);
        assert_eq!(
            (data.name.as_ref(), data.instrumentation_scope.name()),
            ("work", "test-scope")
        );
        // A box holding another scope gets this one.
        let mut data = Box::new(Exported::new(empty_span()));
        data.instrumentation_scope = InstrumentationScope::builder("other").build();
        starter.fill(&mut data, &scope(), kept(Vec::new()));
        assert_eq!(data.instrumentation_scope, scope());
        // A new box: the list comes as it is.
        let mut data = Box::new(Exported::new(empty_span()));
        let list = six();
        let own = list.as_ptr();
        starter.fill(&mut data, &scope(), kept(list));
        assert_eq!(data.attributes.as_ptr(), own);
        assert_eq!(data.attributes, six()[..4]);
        // The request's attributes stay as they are within the limit, and
        // go into the list, in front, when they would pass it.
        let http = HttpServerRequest::new("GET", "/", "http");
        let mut data = Box::new(Exported::new(empty_span()));
        data.http = Some(http.clone());
        starter.fill(&mut data, &scope(), kept(Vec::new()));
        assert_eq!(data.http.as_ref(), Some(&http));
        assert!(data.attributes.is_empty());
        let mut data = Box::new(Exported::new(empty_span()));
        data.http = Some(http.clone());
        starter.fill(&mut data, &scope(), kept(six()[..2].to_vec()));
        assert!(data.http.is_none());
        let mut listed = Vec::new();
        http.push_to(&mut listed);
        assert_eq!(data.attributes[..3], listed[..]);
        assert_eq!(data.attributes[3], six()[0]);
        assert_eq!(data.dropped_attributes_count, 1);
        // Attributes already there (a starter's `describe` pushed them)
        // come first.
        let mut data = Box::new(Exported::new(empty_span()));
        data.attributes.push(KeyValue::new("first", true));
        starter.fill(&mut data, &scope(), kept(six()));
        assert_eq!(data.attributes[0], KeyValue::new("first", true));
        assert_eq!(data.attributes[1..], six()[..3]);
        assert_eq!(data.dropped_attributes_count, 3);
    }

    #[test]
    fn a_server_span_keeps_its_status_code_with_the_request_attributes() {
        let request = HttpServerRequest::new("GET", "/", "http");
        let (keep, _, ends, _) = ends();
        let sampler = SamplerSetting::ParentBased(Box::new(SamplerSetting::AlwaysOn));
        let limits = SpanLimits {
            max_attributes_per_span: 5,
            ..LIMITS
        };
        let starter = DirectStarter::new(sampler, Arc::default(), limits, ends);
        use opentelemetry::Value;
        let code = |value: Value| KeyValue::new(HttpServerRequest::STATUS_CODE, value);
        let mut describe = |_: &mut Vec<KeyValue>, typed: &mut Option<HttpServerRequest>| {
            *typed = Some(request.clone());
            Cow::Borrowed("GET")
        };
        let started = starter
            .start(
                &scope(),
                SpanKind::Server,
                &Context::new(),
                None,
                &mut describe,
            )
            .unwrap();
        let span = started.context.span();
        // Not the status code (a text value): the list.
        span.set_attribute(code(Value::from("503")));
        // The status code: kept with the request's attributes.
        span.set_attribute(code(Value::I64(503)));
        // At the limit of five (the request's three, the text, the code):
        // dropped.
        span.set_attribute(code(Value::I64(200)));
        span.end();
        let spans = keep.0.lock().unwrap();
        let mut expected = Vec::new();
        HttpServerRequest {
            status_code: Some(503),
            ..request.clone()
        }
        .push_to(&mut expected);
        assert_eq!(expected.last(), Some(&code(Value::I64(503))));
        expected.push(code(Value::from("503")));
        assert_eq!(spans[0].attributes, expected);
        assert_eq!(spans[0].dropped_attributes_count, 1);
    }

    #[test]
    fn gives_way_once_the_provider_shut_down_or_telemetry_is_suppressed() {
        let (keep, _, ends, installed) = ends();
        let starter = always_on(ends);
        let suppressed = Context::new().with_telemetry_suppressed();
        assert!(start(&starter, &suppressed, SpanKind::Server, "s").is_none());
        let open = start(&starter, &Context::new(), SpanKind::Server, "s").unwrap();
        installed[0].shutdown_with_timeout(Duration::ZERO).unwrap();
        drop(open);
        assert!(keep.0.lock().unwrap().is_empty(), "the SDK drops it too");
        assert!(
            start(&starter, &Context::new(), SpanKind::Server, "s").is_none(),
            "the tracer's spans no longer record"
        );
        // A provider without processors hears of its shutdown from the
        // pipeline.
        let (ends, _) = Ends::new(Vec::new());
        let starter = always_on(Arc::clone(&ends));
        assert!(start(&starter, &Context::new(), SpanKind::Server, "s").is_some());
        ends.close();
        assert!(start(&starter, &Context::new(), SpanKind::Server, "s").is_none());
    }
}
