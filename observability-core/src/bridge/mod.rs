//! The bridge from `tracing` spans to OpenTelemetry spans in `init()`'s
//! subscriber.
//!
//! What it keeps of the usual bridge (`tracing-opentelemetry`): every
//! `tracing` span at or above the trace level is an OpenTelemetry span,
//! child of the span or context current where it was made (or of its
//! explicit parent, or of [`OpenTelemetrySpanExt::set_parent`]); its fields
//! are attributes, `otel.name`, `otel.kind`, `otel.status_code` and
//! `otel.status_description` set the name, kind and status; events inside
//! are span events (an `ERROR` event sets the status to error, and one
//! whose first field is `error`, as `#[instrument(err)]` writes, is an
//! `exception` event whose message describes the status); `follows_from`
//! adds links; an entered span's context is current, so OpenTelemetry code,
//! log lines and outgoing calls inside it see it; code location
//! attributes (`code.file.path`, `code.module.name`, `code.line.number`).
//!
//! What it does differently, for speed: the sampler decides when the span
//! is made, with the parent it has then (as the SDK's would, on the same
//! trace id: roots get theirs from the bridge and the SDK takes it over), and
//! a span it drops never reaches the SDK: entered, it is the span context the
//! SDK would give it (the parent's trace and state, a new span id, not
//! sampled), counted in `otel.sdk.span.started` like the SDK's. Fields are
//! kept whatever the decision, so a span given another parent before it is
//! first entered is decided again and records them all. It adds no
//! `thread.*`, `target`, `busy_ns` or `idle_ns` attributes.

mod ext;
mod fields;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{
    Link, Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceId,
    Tracer as _,
};
use opentelemetry::{Context, ContextGuard, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

pub use ext::{OpenTelemetrySpanExt, SetParentError};

use crate::config::SamplerSetting;
use crate::direct::{DirectStarter, Kept};
use crate::metrics::SpanCounts;
use fields::{EventFields, SpanFields};
use observability_propagation::sampling::dropped_span_context;

/// What every span of one bridge shares: the tracer its recorded spans
/// start with, the sampler that decides first, and the counts of spans
/// started.
pub(crate) struct Shared {
    tracer: SdkTracer,
    /// How the provider's spans start without the tracer, and the tracer's
    /// scope, when the provider allows.
    direct: Option<(Arc<DirectStarter>, InstrumentationScope)>,
    sampler: SamplerSetting,
    counts: Arc<SpanCounts>,
    ids: RandomIdGenerator,
}

/// The `tracing` layer.
#[derive(Clone)]
pub(crate) struct SpanBridge {
    shared: Arc<Shared>,
}

impl fmt::Debug for SpanBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanBridge").finish_non_exhaustive()
    }
}

impl SpanBridge {
    /// A bridge whose spans start with `tracer`, whose provider has
    /// `sampler` (its sampler, without the counting) and [`HandoffIds`];
    /// without the tracer, through `direct` (with the tracer's scope), when
    /// given.
    pub(crate) fn new(
        tracer: SdkTracer,
        direct: Option<(Arc<DirectStarter>, InstrumentationScope)>,
        sampler: SamplerSetting,
        counts: Arc<SpanCounts>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                tracer,
                direct,
                sampler,
                counts,
                ids: RandomIdGenerator::default(),
            }),
        }
    }
}

thread_local! {
    /// The trace id the next root span the SDK builds on this thread takes:
    /// the one the bridge decided on (see [`HandoffIds`]).
    static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
    /// The spans entered on this thread.
    static ENTERED: Entered = const {
        Entered {
            spans: RefCell::new(Vec::new()),
            left_quiet: Cell::new(0),
        }
    };
}

/// The spans entered on one thread.
struct Entered {
    /// Their contexts, in order, and whether each records.
    spans: RefCell<Vec<(u64, ContextGuard, bool)>>,
    /// The span last left, if it records nothing and since then no span
    /// was closed and no other of this bridge entered (0 otherwise): a
    /// span that has started without recording has nothing to do when it
    /// closes, and a span is usually closed where it was last left, right
    /// after, so its close needs no look-up in the registry (see
    /// `on_close`).
    left_quiet: Cell<u64>,
}

/// The id generator of the providers `init()` builds: random ids, except
/// that a root span the bridge decided on takes the trace id the bridge's
/// sampler saw, so that the SDK's sampler, which decides again, decides the
/// same (a ratio sampler decides by trace id).
#[derive(Debug, Default)]
pub(crate) struct HandoffIds(RandomIdGenerator);

impl IdGenerator for HandoffIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE_ID
            .with(Cell::take)
            .unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

/// A span the bridge made, kept in the span's extensions.
enum State {
    /// Not started: what it will start with (kept in the span's
    /// extensions, which box it).
    Pending(Pending),
    /// Started: the context holding it (the SDK's span, or the span context
    /// of a dropped one), and whether it records.
    Started { cx: Context, recording: bool },
    /// Being started, or closed.
    Starting,
}

struct Pending {
    shared: Arc<Shared>,
    metadata: &'static Metadata<'static>,
    parent: Context,
    trace_id: TraceId,
    /// Whether the sampler keeps it.
    sampled: bool,
    name: Cow<'static, str>,
    kind: SpanKind,
    status: Status,
    /// When it was made; read only for a span the sampler keeps.
    start: Option<SystemTime>,
    attributes: Vec<KeyValue>,
    events: Vec<opentelemetry::trace::Event>,
    links: Vec<Link>,
}

impl Shared {
    /// The sampler's decision for a span under `parent`, and the trace id
    /// it decided on (the parent's, or a new one). The samplers `init()`
    /// configures look at neither the name nor the attributes.
    fn decide(&self, parent: &Context) -> (TraceId, bool) {
        let span = parent.span();
        let psc = span.span_context();
        let trace_id = if psc.is_valid() {
            psc.trace_id()
        } else {
            self.ids.new_trace_id()
        };
        let parent_sampled = parent.has_active_span().then(|| psc.is_sampled());
        (trace_id, keeps(&self.sampler, parent_sampled, trace_id))
    }
}

/// Whether `sampler` keeps a span on `trace_id` under a parent context
/// whose span's sampled flag is `parent_sampled` (`None` when it has no
/// span): the decision the SDK's `Sampler::should_sample` makes for it
/// (opentelemetry_sdk 0.33, `trace/sampler.rs`), without the result the SDK
/// builds around it (the parent's trace state cloned, an attribute list).
pub(crate) fn keeps(
    sampler: &SamplerSetting,
    parent_sampled: Option<bool>,
    trace_id: TraceId,
) -> bool {
    match (sampler, parent_sampled) {
        (SamplerSetting::AlwaysOn, _) => true,
        (SamplerSetting::AlwaysOff, _) => false,
        // The parent's flag whenever the parent context has a span, even an
        // invalid one; the root sampler otherwise.
        (SamplerSetting::ParentBased(_), Some(sampled)) => sampled,
        (SamplerSetting::ParentBased(root), None) => keeps(root, None, trace_id),
        (SamplerSetting::Ratio(ratio), _) => ratio_keeps(*ratio, trace_id),
    }
}

/// The SDK's trace id ratio decision: the trace id's low 63 bits below the
/// ratio of 2^63.
fn ratio_keeps(ratio: f64, trace_id: TraceId) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(low) >> 1) < bound
}

impl Pending {
    /// Decides again under `parent` (a span given another parent).
    fn reparent(&mut self, parent: Context) {
        let (trace_id, sampled) = self.shared.decide(&parent);
        self.parent = parent;
        self.trace_id = trace_id;
        self.sampled = sampled;
        if sampled && self.start.is_none() {
            // Made under a parent that dropped it: it starts now.
            self.start = Some(SystemTime::now());
        }
    }

    /// The context of a span the sampler drops: the span context the SDK
    /// would give it, under its parent (counted as a span started and
    /// dropped).
    fn dropped(&self) -> Context {
        self.shared.counts.count_drop();
        let sc = {
            let span = self.parent.span();
            dropped_span_context(
                self.trace_id,
                self.shared.ids.new_span_id(),
                Some(span.span_context()),
            )
        };
        self.parent.with_remote_span_context(sc)
    }

    /// Starts the span: through the SDK when the sampler keeps it, else as
    /// the span context the SDK would give it.
    fn start(self) -> (Context, bool) {
        if !self.sampled {
            return (self.dropped(), false);
        }
        let Pending {
            shared,
            metadata,
            parent,
            trace_id,
            name,
            kind,
            status,
            start,
            mut attributes,
            events,
            links,
            ..
        } = self;
        location(metadata, &mut attributes);
        let kept = Kept {
            kind,
            name,
            start_time: Some(start.unwrap_or_else(SystemTime::now)),
            attributes,
            events,
            links,
            status,
        };
        let kept = match &shared.direct {
            Some((direct, scope)) => match direct.start_kept(scope, &parent, trace_id, kept) {
                Ok(cx) => return (cx, true),
                Err(kept) => *kept,
            },
            None => kept,
        };
        start_with_tracer(&shared.tracer, &parent, trace_id, kept)
    }
}

/// A span the sampler kept, started through the SDK's tracer (which
/// decides again, on the same trace id).
fn start_with_tracer(
    tracer: &SdkTracer,
    parent: &Context,
    trace_id: TraceId,
    kept: Kept,
) -> (Context, bool) {
    let mut builder = SpanBuilder::from_name(kept.name)
        .with_kind(kept.kind)
        .with_start_time(kept.start_time.unwrap_or_else(SystemTime::now))
        .with_attributes(kept.attributes);
    if !kept.events.is_empty() {
        builder = builder.with_events(kept.events);
    }
    if !kept.links.is_empty() {
        builder = builder.with_links(kept.links);
    }
    let root = !parent.span().span_context().is_valid();
    if root {
        NEXT_TRACE_ID.with(|next| next.set(Some(trace_id)));
    }
    let mut span = tracer.build_with_context(builder, parent);
    if root {
        NEXT_TRACE_ID.with(|next| next.set(None));
    }
    if kept.status != Status::Unset {
        span.set_status(kept.status);
    }
    let recording = span.is_recording();
    (parent.with_span(span), recording)
}

/// The code location attributes of a span.
fn location(meta: &'static Metadata<'static>, attributes: &mut Vec<KeyValue>) {
    if let Some(file) = meta.file() {
        attributes.push(KeyValue::new("code.file.path", file));
    }
    if let Some(module) = meta.module_path() {
        attributes.push(KeyValue::new("code.module.name", module));
    }
    if let Some(line) = meta.line() {
        attributes.push(KeyValue::new("code.line.number", i64::from(line)));
    }
}

/// The span's context, starting it if it has not started (not made
/// current). `None` for a span this bridge did not make.
fn context_of<S>(span: &SpanRef<'_, S>) -> Option<Context>
where
    S: for<'a> LookupSpan<'a>,
{
    started(span).map(|(cx, _)| cx)
}

/// [`context_of`], and whether the span records.
fn started<S>(span: &SpanRef<'_, S>) -> Option<(Context, bool)>
where
    S: for<'a> LookupSpan<'a>,
{
    let pending = {
        let mut extensions = span.extensions_mut();
        let state = extensions.get_mut::<State>()?;
        match state {
            State::Started { cx, recording } => return Some((cx.clone(), *recording)),
            // A dropped span starts in place: nothing of the SDK runs.
            State::Pending(pending) if !pending.sampled => {
                let cx = pending.dropped();
                *state = State::Started {
                    cx: cx.clone(),
                    recording: false,
                };
                return Some((cx, false));
            }
            State::Pending(_) => {}
            State::Starting => return None,
        }
        match state.take() {
            State::Pending(pending) => pending,
            _ => return None,
        }
    };
    // Started without the extensions locked: the SDK and its processors
    // may log.
    let (cx, recording) = pending.start();
    if let Some(state) = span.extensions_mut().get_mut::<State>() {
        *state = State::Started {
            cx: cx.clone(),
            recording,
        };
    }
    Some((cx, recording))
}

impl State {
    /// Takes the state out, in place (the registry clears the extensions of
    /// a closed span itself; a removal and an insertion cost more).
    fn take(&mut self) -> State {
        std::mem::replace(self, State::Starting)
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanBridge
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent = if let Some(parent) = attrs.parent() {
            // The nearest span this bridge made, from the parent up, as
            // the current context is for a contextual span.
            ctx.span(parent)
                .and_then(|p| p.scope().find_map(|span| context_of(&span)))
                .unwrap_or_default()
        } else if attrs.is_contextual() {
            Context::current()
        } else {
            Context::new()
        };
        let metadata = attrs.metadata();
        let (trace_id, sampled) = self.shared.decide(&parent);
        // A span that records gets its code location too; a dropped one
        // keeps its fields only (and a span without fields allocates nothing).
        let room = if sampled { 3 } else { 0 };
        let mut fields = SpanFields::new(attrs.fields().len(), room);
        attrs.record(&mut fields);
        let name = fields.name.take().unwrap_or(Cow::Borrowed(metadata.name()));
        let pending = Pending {
            shared: Arc::clone(&self.shared),
            metadata,
            parent,
            trace_id,
            sampled,
            name,
            kind: fields.kind.take().unwrap_or(SpanKind::Internal),
            status: std::mem::take(&mut fields.status),
            start: sampled.then(SystemTime::now),
            attributes: fields.attributes,
            events: Vec::new(),
            links: Vec::new(),
        };
        span.extensions_mut().insert(State::Pending(pending));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = SpanFields::new(values.len(), 0);
        values.record(&mut fields);
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<State>() {
            Some(State::Pending(p)) => {
                if let Some(name) = fields.name {
                    p.name = name;
                }
                if let Some(kind) = fields.kind {
                    p.kind = kind;
                }
                if fields.status != Status::Unset {
                    p.status = fields.status;
                }
                p.attributes.append(&mut fields.attributes);
            }
            Some(State::Started {
                cx,
                recording: true,
            }) => {
                let span = cx.span();
                if let Some(name) = fields.name {
                    span.update_name(name);
                }
                if fields.status != Status::Unset {
                    span.set_status(fields.status);
                }
                span.set_attributes(fields.attributes);
            }
            _ => {}
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: LayerContext<'_, S>) {
        let (Some(span), Some(follows)) = (ctx.span(id), ctx.span(follows)) else {
            return;
        };
        let Some(follows) = context_of(&follows) else {
            return;
        };
        let link = follows.span().span_context().clone();
        if link.is_valid() {
            add_link(&span, link, Vec::new());
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = event.parent().and_then(|id| ctx.span(id)).or_else(|| {
            event
                .is_contextual()
                .then(|| ctx.lookup_current())
                .flatten()
        }) else {
            return;
        };
        // The event's span, or the nearest span around it this bridge made
        // (one below the trace level, logged only, has no state).
        for span in span.scope() {
            if let Some(state) = span.extensions_mut().get_mut::<State>() {
                add_event(state, event);
                return;
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let Some((cx, recording)) = started(&span) else {
            return;
        };
        // `try_with`: a thread-local's destructor may enter a span after
        // this one is gone (and a panic there aborts). Not made current then.
        let _ = ENTERED.try_with(|entered| {
            entered.left_quiet.set(0);
            let guard = cx.attach();
            entered
                .spans
                .borrow_mut()
                .push((id.into_u64(), guard, recording));
        });
    }

    fn on_exit(&self, id: &Id, _ctx: LayerContext<'_, S>) {
        let id = id.into_u64();
        let guard = ENTERED
            .try_with(|entered| {
                let mut spans = entered.spans.borrow_mut();
                let at = spans.iter().rposition(|(entered, ..)| *entered == id)?;
                let (_, guard, recording) = spans.remove(at);
                entered.left_quiet.set(if recording { 0 } else { id });
                Some(guard)
            })
            .ok()
            .flatten();
        // Detached after the list is released.
        drop(guard);
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        // The span this thread just left without it recording: it has
        // started, so there is nothing to end or to count. (The same id
        // comes back only once the span's slot in the registry has been
        // reused tens of thousands of times, and each close on this thread,
        // and each enter of a span this bridge made, forgets the one kept.)
        let left_quiet = ENTERED.try_with(|entered| entered.left_quiet.replace(0));
        if left_quiet == Ok(id.into_u64()) {
            return;
        }
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let state = {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<State>() {
                // Nothing to end: the registry drops the state with the span.
                Some(State::Started {
                    recording: false, ..
                })
                | Some(State::Starting)
                | None => return,
                Some(State::Pending(pending)) if !pending.sampled => {
                    pending.shared.counts.count_drop();
                    return;
                }
                Some(state) => state.take(),
            }
        };
        let (cx, recording) = match state {
            State::Started { cx, recording } => (cx, recording),
            State::Pending(pending) => pending.start(),
            State::Starting => return,
        };
        if recording {
            cx.span().end();
        }
    }
}

/// Adds `event` to the span of `state`, if it records.
fn add_event(state: &mut State, event: &Event<'_>) {
    let recording = match state {
        State::Pending(p) => p.sampled,
        State::Started { recording, .. } => *recording,
        State::Starting => false,
    };
    if !recording {
        return;
    }
    let meta = event.metadata();
    let mut fields = EventFields::new(meta);
    event.record(&mut fields);
    let (otel_event, error) = fields.into_event(meta);
    // An ERROR event makes the span an error; the error it reports is
    // the status's description.
    let status = match error {
        Some(description) => Some(Status::error(description)),
        None => (*meta.level() == tracing::Level::ERROR).then(|| Status::error("")),
    };
    match state {
        State::Pending(p) => {
            if let Some(status) = status
                && (p.status == Status::Unset || error_without_description(&p.status))
            {
                p.status = status;
            }
            p.events.push(otel_event);
        }
        State::Started { cx, .. } => {
            let span = cx.span();
            if let Some(status) = status {
                span.set_status(status);
            }
            span.add_event_with_timestamp(
                otel_event.name,
                otel_event.timestamp,
                otel_event.attributes,
            );
        }
        State::Starting => {}
    }
}

/// Whether `status` is an error that does not say what went wrong.
fn error_without_description(status: &Status) -> bool {
    matches!(status, Status::Error { description } if description.is_empty())
}

/// Adds a link to a span this bridge made (before it starts, or while it
/// records).
fn add_link<S>(span: &SpanRef<'_, S>, link: SpanContext, attributes: Vec<KeyValue>)
where
    S: for<'a> LookupSpan<'a>,
{
    let mut extensions = span.extensions_mut();
    match extensions.get_mut::<State>() {
        Some(State::Pending(p)) => p.links.push(Link::new(link, attributes, 0)),
        Some(State::Started {
            cx,
            recording: true,
        }) => cx.span().add_link(link, attributes),
        _ => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::Ordering;

    use opentelemetry::trace::{TraceFlags, TraceState, TracerProvider as _};
    use opentelemetry_sdk::trace::{SamplingDecision, SdkTracerProvider, ShouldSample, SpanData};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::direct::tests::{Keep, scope};
    use crate::direct::{End, Ends};
    use crate::metrics::CountingSampler;

    /// A bridge whose provider keeps what it records, with `sampler`,
    /// starting spans without the tracer (`direct`) or through it.
    pub(crate) fn bridge(
        sampler: SamplerSetting,
        direct: bool,
    ) -> (SpanBridge, Arc<Keep>, Arc<SpanCounts>) {
        let keep = Arc::new(Keep::default());
        let (ends, installed) = Ends::new(vec![End::Other(keep.clone())]);
        let counts = Arc::new(SpanCounts::default());
        let limits = opentelemetry_sdk::trace::SpanLimits {
            max_attributes_per_span: 5,
            max_events_per_span: 2,
            ..Default::default()
        };
        let mut builder = SdkTracerProvider::builder()
            .with_id_generator(HandoffIds::default())
            .with_span_limits(limits)
            .with_sampler(CountingSampler {
                inner: sampler.to_sdk(),
                counts: Arc::clone(&counts),
            });
        for processor in installed {
            builder = builder.with_span_processor(processor);
        }
        let provider = builder.build();
        let starter = DirectStarter::new(sampler.clone(), Arc::clone(&counts), limits, ends);
        let bridge = SpanBridge::new(
            provider.tracer_with_scope(scope()),
            direct.then(|| (Arc::new(starter), scope())),
            sampler,
            Arc::clone(&counts),
        );
        (bridge, keep, counts)
    }

    fn caller(flags: u8) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::new(flags),
            true,
            "a=1".parse::<TraceState>().unwrap(),
        ))
    }

    /// The spans a workload of `tracing` spans records through a bridge
    /// that starts them without the tracer (`direct`) or through it, with
    /// what differs between runs (ids, times) replaced by what must hold.
    fn bridged(direct: bool) -> (Vec<String>, [u64; 3]) {
        let sampler = SamplerSetting::ParentBased(Box::new(SamplerSetting::AlwaysOn));
        let (bridge, keep, counts) = bridge(sampler, direct);
        let subscriber = tracing_subscriber::registry().with(bridge);
        tracing::subscriber::with_default(subscriber, || {
            let root = tracing::info_span!(
                "root",
                otel.kind = "server",
                order.id = 7_i64,
                a = 1,
                b = 2,
                c = 3,
                d = 4,
                late = tracing::field::Empty,
            );
            root.record("late", true);
            root.in_scope(|| {
                let inner = tracing::info_span!("inner", otel.name = "renamed");
                inner.follows_from(&root);
                inner.in_scope(|| {
                    tracing::info!(step = 1, "first");
                    tracing::warn!("second");
                    tracing::error!("third");
                });
            });
            // Events before the span first starts, kept until it does.
            let early = tracing::info_span!("early");
            for i in 0..3 {
                tracing::info!(parent: &early, i, "before");
            }
            early.in_scope(|| {});
            let adopted = tracing::info_span!("adopted", otel.status_code = "ok");
            adopted.set_parent(caller(3)).unwrap();
            adopted.in_scope(|| {});
            let _attached = caller(0).attach();
            tracing::info_span!("dropped").in_scope(|| {});
        });
        let spans = keep.0.lock().unwrap();
        let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
        let comparable = |s: &SpanData| {
            let parent = ids
                .iter()
                .position(|id| *id == s.parent_span_id)
                .map_or(s.parent_span_id.to_string(), |i| format!("span {i}"));
            let mut attributes = s.attributes.clone();
            attributes.retain(|kv| kv.key.as_str() != "code.line.number");
            format!(
                "{} {:?} {:?} {} parent={parent} remote={} {attributes:?} dropped={} \
                 events={:?} dropped_events={} links={} status={:?} {:?} ordered={}",
                s.name,
                s.span_kind,
                s.span_context.trace_flags(),
                s.span_context.trace_state().header(),
                s.parent_span_is_remote,
                s.dropped_attributes_count,
                s.events
                    .iter()
                    .map(|e| (&e.name, &e.attributes))
                    .collect::<Vec<_>>(),
                s.events.dropped_count,
                s.links.len(),
                s.status,
                s.instrumentation_scope,
                s.start_time <= s.end_time,
            )
        };
        let counted = counts.0.each_ref().map(|n| n.load(Ordering::Relaxed));
        (spans.iter().map(comparable).collect(), counted)
    }

    #[test]
    fn spans_started_without_the_tracer_are_those_the_tracer_starts() {
        let (direct, direct_counts) = bridged(true);
        let (sdk, sdk_counts) = bridged(false);
        assert_eq!(direct, sdk);
        assert_eq!(direct_counts, sdk_counts);
        assert_eq!(direct.len(), 4, "{direct:?}");
        assert_eq!(direct_counts, [1, 0, 4], "one dropped, four recorded");
        assert!(direct[0].starts_with("renamed Internal"), "{direct:?}");
        assert!(
            direct[0].contains("parent=span 3"),
            "under root: {direct:?}"
        );
        assert!(direct[0].contains("dropped_events=1 links=1"), "{direct:?}");
        assert!(direct[0].contains("status=Error"), "{direct:?}");
        assert!(direct[2].starts_with("early"), "{direct:?}");
        assert!(direct[2].contains("dropped_events=1"), "{direct:?}");
        assert!(
            direct[1].starts_with(
                "adopted Internal TraceFlags(3) a=1 parent=00f067aa0ba902b7 remote=true"
            ),
            "{direct:?}"
        );
        assert!(direct[1].contains("status=Ok"), "{direct:?}");
        assert!(
            direct[3].starts_with("root Server TraceFlags(1)"),
            "{direct:?}"
        );
        assert!(
            direct[3].contains("dropped=4"),
            "past the limit: {direct:?}"
        );
    }

    /// A span that records ends when it closes, even right after a span
    /// that records nothing was left and closed on the same thread (whose
    /// close is skipped) and while its own context is still held.
    #[test]
    fn a_recording_span_ends_when_it_closes_after_one_that_records_nothing() {
        for direct in [true, false] {
            let sampler = SamplerSetting::ParentBased(Box::new(SamplerSetting::AlwaysOn));
            let (bridge, keep, counts) = bridge(sampler, direct);
            let subscriber = tracing_subscriber::registry().with(bridge);
            tracing::subscriber::with_default(subscriber, || {
                {
                    let _caller = caller(0).attach();
                    tracing::info_span!("quiet").in_scope(|| {});
                }
                let recorded = tracing::info_span!("recorded");
                let held = recorded.context();
                recorded.in_scope(|| {});
                drop(recorded);
                let names: Vec<_> = keep
                    .0
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|s| s.name.clone())
                    .collect();
                assert_eq!(names, ["recorded"], "direct={direct}");
                assert!(held.span().span_context().is_sampled());
            });
            let counted = counts.0.each_ref().map(|n| n.load(Ordering::Relaxed));
            assert_eq!(counted, [1, 0, 1], "direct={direct}");
        }
    }

    /// A span the sampler drops: made current when entered as the span
    /// context the SDK would give it, counted once whether or not it was
    /// entered; given a sampled parent before it is first entered, it is
    /// decided again and records every field it was made with.
    #[test]
    fn dropped_spans_are_counted_once_and_keep_their_fields_for_a_new_parent() {
        for direct in [true, false] {
            let root = SamplerSetting::Ratio(0.0);
            let (bridge, keep, counts) =
                bridge(SamplerSetting::ParentBased(Box::new(root)), direct);
            let subscriber = tracing_subscriber::registry().with(bridge);
            tracing::subscriber::with_default(subscriber, || {
                let _caller = caller(0).attach();
                tracing::info_span!("entered", order.id = 7).in_scope(|| {
                    let cx = Context::current();
                    let span = cx.span();
                    let sc = span.span_context();
                    assert_eq!(
                        sc.trace_id(),
                        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736)
                    );
                    assert_ne!(sc.span_id(), SpanId::from(0x00f0_67aa_0ba9_02b7));
                    assert!(!sc.is_sampled() && !sc.is_remote() && sc.is_valid());
                });
                drop(tracing::info_span!("never entered", order.id = 8));
                drop(_caller);
                let adopted = tracing::info_span!("adopted", order.id = 9, otel.kind = "consumer");
                adopted.set_parent(caller(1)).unwrap();
                adopted.in_scope(|| {});
            });
            let spans = keep.0.lock().unwrap();
            assert_eq!(spans.len(), 1, "{spans:?}");
            let adopted = &spans[0];
            assert_eq!(adopted.name, "adopted");
            assert_eq!(adopted.span_kind, SpanKind::Consumer);
            assert_eq!(adopted.parent_span_id, SpanId::from(0x00f0_67aa_0ba9_02b7));
            assert!(
                adopted
                    .attributes
                    .contains(&KeyValue::new("order.id", 9_i64)),
                "{:?}",
                adopted.attributes
            );
            let counted = counts.0.each_ref().map(|n| n.load(Ordering::Relaxed));
            // DROP, RECORD_ONLY, RECORD_AND_SAMPLE.
            assert_eq!(counted, [2, 0, 1], "direct={direct}");
        }
    }

    #[test]
    fn keeps_what_the_sdk_sampler_keeps() {
        let ratio = SamplerSetting::Ratio;
        let parent_based = |s| SamplerSetting::ParentBased(Box::new(s));
        let samplers = [
            SamplerSetting::AlwaysOn,
            SamplerSetting::AlwaysOff,
            ratio(0.0),
            ratio(0.25),
            ratio(0.5),
            ratio(1.0),
            ratio(-1.0),
            ratio(2.0),
            parent_based(SamplerSetting::AlwaysOn),
            parent_based(SamplerSetting::AlwaysOff),
            parent_based(ratio(0.25)),
            parent_based(parent_based(ratio(0.75))),
        ];
        let span_context = |flags: u8, remote: bool| {
            SpanContext::new(
                TraceId::from(7),
                SpanId::from(9),
                TraceFlags::new(flags),
                remote,
                TraceState::default(),
            )
        };
        let parents = [
            Context::new(),
            Context::new().with_remote_span_context(span_context(1, true)),
            Context::new().with_remote_span_context(span_context(0, true)),
            Context::new().with_remote_span_context(span_context(3, false)),
            Context::new().with_remote_span_context(SpanContext::empty_context()),
        ];
        // Trace ids spread over the range, and at the edges of the bounds.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut ids: Vec<u128> = (0..500)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                u128::from(state) << 64 | u128::from(state.rotate_left(17))
            })
            .collect();
        for quarter in [0u64, 1 << 61, 1 << 62, 3 << 61, u64::MAX >> 1] {
            let low = quarter << 1;
            ids.extend([low.wrapping_sub(2), low, low | 1, low.wrapping_add(2)].map(u128::from));
        }
        ids.push(u128::MAX);
        let mut kept = 0;
        for sampler in &samplers {
            for parent in &parents {
                for &id in &ids {
                    let trace_id = TraceId::from(id);
                    let sdk = sampler
                        .to_sdk()
                        .should_sample(Some(parent), trace_id, "s", &SpanKind::Internal, &[], &[])
                        .decision
                        != SamplingDecision::Drop;
                    let parent_sampled = parent
                        .has_active_span()
                        .then(|| parent.span().span_context().is_sampled());
                    assert_eq!(
                        keeps(sampler, parent_sampled, trace_id),
                        sdk,
                        "{sampler:?} under {parent:?} on {trace_id}"
                    );
                    kept += usize::from(sdk);
                }
            }
        }
        // Both answers occur.
        assert!(kept > 0 && kept < samplers.len() * parents.len() * ids.len());
    }
}
