//! The console exporter: each finished trace printed as an indented tree
//! with a waterfall, the way a trace viewer draws it.
//!
//! Spans are held per trace until the trace's root has ended and no span of
//! that trace arrived for [`LINGER`] (or on flush and shutdown); the whole
//! tree is then written with one `write_all` on a locked standard error, so
//! two traces never interleave.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

use super::{Batch, ExportFuture, Outcome, Sink};

/// How long a trace whose root has ended waits for late spans.
const LINGER: Duration = Duration::from_millis(300);
/// How long a finished trace waits for traces that started before it.
const HOLD: Duration = Duration::from_secs(2);
/// Width of the waterfall column.
const BAR: usize = 24;
/// Traces held at most; the oldest is printed when more arrive.
const MAX_TRACES: usize = 1024;

type Output = Box<dyn FnMut(&[u8]) + Send>;

struct Pending {
    spans: Vec<SpanData>,
    /// The `service.name` of each span, by index.
    services: Vec<Arc<str>>,
    last_arrival: Instant,
    /// When the trace's earliest span started: traces print in this order.
    first_start: SystemTime,
}

/// The traces waiting to be printed, shared by the console sinks of every
/// service in the process (one per tracer provider, see
/// [`TelemetryGuard::service`](crate::TelemetryGuard::service)), so a trace
/// that crosses services prints as one tree.
pub(crate) struct ConsoleShared(Mutex<State>);

struct State {
    traces: HashMap<TraceId, Pending>,
    output: Output,
    /// Sinks attached.
    sinks: usize,
    /// Sinks that flushed in this round; when all have, everything pending
    /// is printed (a trace's spans may still be in another sink's queue
    /// until then).
    flushed: usize,
    round: u64,
}

impl State {
    fn print(&mut self, trace_id: TraceId) {
        if let Some(pending) = self.traces.remove(&trace_id) {
            let services: Vec<&str> = pending.services.iter().map(|s| &**s).collect();
            let text = render(trace_id, &pending.spans, &services);
            (self.output)(text.as_bytes());
        }
    }

    /// Prints every pending trace, the earliest started first.
    fn print_all(&mut self) {
        let mut all: Vec<(SystemTime, TraceId)> = self
            .traces
            .iter()
            .map(|(id, p)| (p.first_start, *id))
            .collect();
        all.sort_by_key(|(at, _)| *at);
        for (_, id) in all {
            self.print(id);
        }
        self.flushed = 0;
        self.round += 1;
    }
}

impl std::fmt::Debug for ConsoleShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("ConsoleShared")
            .field("traces", &state.traces.len())
            .field("sinks", &state.sinks)
            .finish_non_exhaustive()
    }
}

impl ConsoleShared {
    /// Printing to standard error.
    pub(crate) fn stderr() -> Arc<Self> {
        Self::with_output(Box::new(|bytes| {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(bytes);
            let _ = err.flush();
        }))
    }

    pub(crate) fn with_output(output: Output) -> Arc<Self> {
        Arc::new(Self(Mutex::new(State {
            traces: HashMap::new(),
            output,
            sinks: 0,
            flushed: 0,
            round: 0,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Only the export thread takes the lock; a panic there cannot leave
        // the map half-updated in a way that matters for printing.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A sink for the service of `resource`.
    pub(crate) fn sink(self: &Arc<Self>, resource: &Resource) -> ConsoleSink {
        let service = resource
            .get(&Key::from_static_str("service.name"))
            .map(|v| v.as_str().into_owned())
            .unwrap_or_default();
        let mut state = self.state();
        state.sinks += 1;
        ConsoleSink {
            service: service.into(),
            shared: Arc::clone(self),
            flushed_round: None,
        }
    }
}

/// One service's way into the console: its spans join the shared traces,
/// tagged with its `service.name`.
pub(crate) struct ConsoleSink {
    service: Arc<str>,
    shared: Arc<ConsoleShared>,
    /// The round in which this sink last flushed.
    flushed_round: Option<u64>,
}

impl Sink for ConsoleSink {
    fn name(&self) -> &'static str {
        "console"
    }

    fn component_type(&self) -> &'static str {
        "console_span_exporter"
    }

    fn export(&mut self, batch: Batch, _deadline: Instant) -> ExportFuture<'static> {
        let now = Instant::now();
        let len = batch.len() as u64;
        let mut state = self.shared.state();
        for span in batch.into_spans() {
            let pending = state
                .traces
                .entry(span.span_context.trace_id())
                .or_insert_with(|| Pending {
                    spans: Vec::new(),
                    services: Vec::new(),
                    last_arrival: now,
                    first_start: span.start_time,
                });
            pending.last_arrival = now;
            pending.first_start = pending.first_start.min(span.start_time);
            pending.spans.push(span);
            pending.services.push(Arc::clone(&self.service));
        }
        while state.traces.len() > MAX_TRACES {
            let oldest = state
                .traces
                .iter()
                .min_by_key(|(_, p)| p.last_arrival)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => state.print(id),
                None => break,
            }
        }
        Box::pin(std::future::ready(Outcome::sent(len)))
    }

    fn tick(&mut self, flush_all: bool) {
        let mut state = self.shared.state();
        if flush_all {
            if self.flushed_round != Some(state.round) {
                self.flushed_round = Some(state.round);
                state.flushed += 1;
            }
            if state.flushed >= state.sinks {
                state.print_all();
                return;
            }
        }
        // Traces print in the order they started: a finished trace waits
        // (at most `HOLD`) for traces that started before it and are still
        // going, so a slow request does not print after the ones behind it.
        let ready = |p: &Pending| p.last_arrival.elapsed() >= LINGER && has_root(&p.spans);
        let oldest_open = state
            .traces
            .values()
            .filter(|p| !ready(p))
            .map(|p| p.first_start)
            .min();
        let mut due: Vec<(SystemTime, TraceId)> = state
            .traces
            .iter()
            .filter(|(_, p)| {
                ready(p)
                    && (oldest_open.is_none_or(|open| p.first_start <= open)
                        || p.last_arrival.elapsed() >= HOLD)
            })
            .map(|(id, p)| (p.first_start, *id))
            .collect();
        due.sort_by_key(|(at, _)| *at);
        for (_, id) in due {
            state.print(id);
        }
    }
}

impl Drop for ConsoleSink {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.sinks = state.sinks.saturating_sub(1);
        if self.flushed_round == Some(state.round) {
            state.flushed = state.flushed.saturating_sub(1);
        }
        // The last sink prints what is left; otherwise the others may now
        // all have flushed.
        if state.sinks == 0 || (state.flushed > 0 && state.flushed >= state.sinks) {
            state.print_all();
        }
    }
}

/// Whether a span with no parent in this process has ended.
fn has_root(spans: &[SpanData]) -> bool {
    spans.iter().any(|s| {
        s.parent_span_id == SpanId::INVALID
            || (s.parent_span_is_remote
                && !spans
                    .iter()
                    .any(|p| p.span_context.span_id() == s.parent_span_id))
    })
}

fn format_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.1} ms", micros as f64 / 1_000.0)
    } else {
        format!("{:.2} s", micros as f64 / 1_000_000.0)
    }
}

fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

fn kind_label(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Server => " (server)",
        SpanKind::Client => " (client)",
        SpanKind::Producer => " (producer)",
        SpanKind::Consumer => " (consumer)",
        SpanKind::Internal => "",
    }
}

/// Renders one trace as a tree. Children are ordered by start time; spans
/// whose parent is not here (remote, or not ended yet) are roots.
/// `services[i]` is the `service.name` of `spans[i]`.
pub(crate) fn render(trace_id: TraceId, spans: &[SpanData], services: &[&str]) -> String {
    let tree = Tree::of(spans);
    let lines = tree.lines(spans);
    let start = spans
        .iter()
        .map(|s| s.start_time)
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let end = spans.iter().map(|s| s.end_time).max().unwrap_or(start);
    let total = since(end, start);

    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        .min(72);
    let service_width = services
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = header(trace_id, spans, total);
    for (label, i) in lines {
        let s = &spans[i];
        let duration = since(s.end_time, s.start_time);
        let bar = waterfall(since(s.start_time, start), duration, total);
        let pad = width.saturating_sub(label.chars().count());
        let service = services.get(i).copied().unwrap_or_default();
        let _ = write!(
            out,
            "  {label}{:pad$}  {service:<service_width$}  {:>9}  |{bar}|",
            "",
            format_duration(duration)
        );
        annotate(&mut out, s, tree.producer_of(spans, s));
        out.push('\n');
    }
    out
}

/// The spans of one trace as a tree: each span's children and the roots,
/// both in start order, by index into the trace's spans.
struct Tree {
    index: HashMap<SpanId, usize>,
    children: HashMap<SpanId, Vec<usize>>,
    roots: Vec<usize>,
}

impl Tree {
    fn of(spans: &[SpanData]) -> Self {
        let index: HashMap<SpanId, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_context.span_id(), i))
            .collect();
        let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
        let mut roots = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            if s.parent_span_id != SpanId::INVALID && index.contains_key(&s.parent_span_id) {
                children.entry(s.parent_span_id).or_default().push(i);
            } else {
                roots.push(i);
            }
        }
        let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| spans[i].start_time);
        by_start(&mut roots);
        children.values_mut().for_each(by_start);
        Tree {
            index,
            children,
            roots,
        }
    }

    /// One line per span, depth-first: the tree's prefix and the span's
    /// name and kind, with the span's index.
    fn lines(&self, spans: &[SpanData]) -> Vec<(String, usize)> {
        let mut lines = Vec::with_capacity(spans.len());
        for &root in &self.roots {
            self.walk(root, "", "", spans, &mut lines);
        }
        lines
    }

    fn walk(
        &self,
        i: usize,
        prefix: &str,
        connector: &str,
        spans: &[SpanData],
        lines: &mut Vec<(String, usize)>,
    ) {
        let s = &spans[i];
        lines.push((
            format!("{prefix}{connector}{}{}", s.name, kind_label(&s.span_kind)),
            i,
        ));
        let child_prefix = match connector {
            "├─ " => format!("{prefix}│  "),
            "└─ " => format!("{prefix}   "),
            _ => prefix.to_owned(),
        };
        if let Some(kids) = self.children.get(&s.span_context.span_id()) {
            for (n, &k) in kids.iter().enumerate() {
                let c = if n + 1 == kids.len() {
                    "└─ "
                } else {
                    "├─ "
                };
                self.walk(k, &child_prefix, c, spans, lines);
            }
        }
    }

    /// The producer span a consumer span's message came from, when it is
    /// in this trace and is the consumer's parent.
    fn producer_of<'a>(&self, spans: &'a [SpanData], span: &SpanData) -> Option<&'a SpanData> {
        if span.span_kind != SpanKind::Consumer {
            return None;
        }
        let parent = &spans[*self.index.get(&span.parent_span_id)?];
        (parent.span_kind == SpanKind::Producer).then_some(parent)
    }
}

/// `trace {id} · {n} spans · {duration}[ · {n} errors]`, after a blank line.
fn header(trace_id: TraceId, spans: &[SpanData], total: Duration) -> String {
    let errors = spans
        .iter()
        .filter(|s| matches!(s.status, Status::Error { .. }))
        .count();
    let mut out = String::new();
    let _ = write!(
        out,
        "\ntrace {trace_id} · {} span{} · {}",
        spans.len(),
        if spans.len() == 1 { "" } else { "s" },
        format_duration(total)
    );
    if errors > 0 {
        let _ = write!(
            out,
            " · {errors} error{}",
            if errors == 1 { "" } else { "s" }
        );
    }
    out.push('\n');
    out
}

/// What follows a span's bar: the time its message waited in a queue (the
/// time between the producer's end and the consumer's start, which the
/// trace's duration includes), and its error.
fn annotate(out: &mut String, span: &SpanData, producer: Option<&SpanData>) {
    if let Some(producer) = producer {
        let waited = since(span.start_time, producer.end_time);
        if waited >= Duration::from_millis(1) {
            let _ = write!(out, "  ⋯ {} in the queue", format_duration(waited));
        }
    }
    if let Status::Error { description } = &span.status {
        let message = if description.is_empty() {
            error_message(span).unwrap_or_default()
        } else {
            description.to_string()
        };
        let _ = write!(out, "  ERROR");
        if !message.is_empty() {
            let _ = write!(out, ": {}", message.replace('\n', " "));
        }
    }
}

/// An exception event's message, when the status has none.
fn error_message(span: &SpanData) -> Option<String> {
    span.events.iter().find_map(|e| {
        e.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "exception.message")
            .map(|kv| match &kv.value {
                Value::String(s) => s.as_str().to_owned(),
                other => other.to_string(),
            })
    })
}

fn waterfall(offset: Duration, duration: Duration, total: Duration) -> String {
    if total.is_zero() {
        return "█".repeat(BAR);
    }
    let scale = |d: Duration| (d.as_secs_f64() / total.as_secs_f64() * BAR as f64).round() as usize;
    let from = scale(offset).min(BAR - 1);
    let len = scale(duration).clamp(1, BAR - from);
    let mut bar = String::with_capacity(BAR * 3);
    bar.extend(std::iter::repeat_n(' ', from));
    bar.extend(std::iter::repeat_n('█', len));
    bar.extend(std::iter::repeat_n(' ', BAR - from - len));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    fn span(
        trace: u128,
        id: u64,
        parent: u64,
        name: &'static str,
        from_ms: u64,
        to_ms: u64,
    ) -> SpanData {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: t0 + Duration::from_millis(from_ms),
            end_time: t0 + Duration::from_millis(to_ms),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::default(),
        }
    }

    #[test]
    fn renders_a_tree_with_durations_and_errors() {
        let mut failing = span(1, 3, 2, "db.query", 2, 9);
        failing.status = Status::error("connection reset");
        let mut server = span(1, 1, 0, "GET /orders/{id}", 0, 20);
        server.span_kind = SpanKind::Server;
        let spans = vec![
            span(1, 4, 1, "render", 15, 19),
            failing,
            server,
            span(1, 2, 1, "load_order", 1, 10),
        ];
        let text = render(TraceId::from(1u128), &spans, &["orders"; 4]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "trace 00000000000000000000000000000001 · 4 spans · 20.0 ms · 1 error"
        );
        assert!(
            lines[2].starts_with("  GET /orders/{id} (server)  "),
            "{text}"
        );
        assert!(lines[3].starts_with("  ├─ load_order "), "{text}");
        assert!(lines[4].starts_with("  │  └─ db.query "), "{text}");
        assert!(lines[4].ends_with("ERROR: connection reset"), "{text}");
        assert!(lines[5].starts_with("  └─ render "), "{text}");
        assert!(
            lines[2].contains("orders") && lines[2].contains("20.0 ms"),
            "{text}"
        );
        assert!(
            lines[2].contains(&format!("|{}|", "█".repeat(BAR))),
            "{text}"
        );
    }

    #[test]
    fn prints_each_trace_whole_once_its_root_has_ended() {
        let out = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink_out = Arc::clone(&out);
        let resource = Resource::builder_empty().with_service_name("svc").build();
        let shared = ConsoleShared::with_output(Box::new(move |b| {
            sink_out
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(b).into_owned())
        }));
        let mut sink = shared.sink(&resource);
        drop(
            sink.export(
                vec![
                    span(1, 2, 1, "child", 1, 2),
                    span(2, 9, 0, "other root", 0, 1),
                ]
                .into(),
                Instant::now(),
            ),
        );
        sink.tick(false);
        assert!(out.lock().unwrap().is_empty(), "lingers for late spans");
        std::thread::sleep(LINGER);
        sink.tick(false);
        let printed = out.lock().unwrap().clone();
        assert_eq!(
            printed.len(),
            1,
            "only the trace with an ended root: {printed:?}"
        );
        assert!(printed[0].contains("other root"));
        drop(sink.export(vec![span(1, 1, 0, "root", 0, 3)].into(), Instant::now()));
        sink.tick(true);
        let printed = out.lock().unwrap().clone();
        assert_eq!(printed.len(), 2);
        assert!(
            printed[1].contains("root") && printed[1].contains("└─ child")
                || printed[1].contains("  root")
        );
        assert!(printed[1].contains("2 spans"));
    }

    /// The printed lines, as a `Vec` the test can look into.
    fn collected() -> (Arc<ConsoleShared>, Arc<Mutex<Vec<String>>>) {
        let out = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink_out = Arc::clone(&out);
        let shared = ConsoleShared::with_output(Box::new(move |b| {
            sink_out
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(b).into_owned())
        }));
        (shared, out)
    }

    #[test]
    fn services_sharing_the_console_print_one_tree_with_each_span_s_service() {
        let (shared, out) = collected();
        let service = |name: &str| {
            Resource::builder_empty()
                .with_service_name(name.to_owned())
                .build()
        };
        let mut gateway = shared.sink(&service("shop-gateway"));
        let mut worker = shared.sink(&service("shop-worker"));
        drop(gateway.export(
            vec![span(1, 1, 0, "POST /orders", 0, 10)].into(),
            Instant::now(),
        ));
        drop(worker.export(
            vec![span(1, 2, 1, "process orders", 5, 20)].into(),
            Instant::now(),
        ));
        // A flush of one sink waits for the other: the worker's spans could
        // still be in its queue.
        gateway.tick(true);
        assert!(out.lock().unwrap().is_empty());
        worker.tick(true);
        let printed = out.lock().unwrap().clone();
        assert_eq!(printed.len(), 1, "{printed:?}");
        let lines: Vec<&str> = printed[0].lines().collect();
        assert!(lines[1].contains("2 spans"), "{}", printed[0]);
        assert!(
            lines[2].contains("POST /orders") && lines[2].contains("shop-gateway "),
            "{}",
            printed[0]
        );
        assert!(
            lines[3].contains("└─ process orders") && lines[3].contains("shop-worker "),
            "{}",
            printed[0]
        );
        // Columns stay aligned across services of different lengths.
        let bar = |line: &str| line.chars().position(|c| c == '|');
        assert_eq!(bar(lines[2]), bar(lines[3]), "{}", printed[0]);

        // A sink that goes away (its provider dropped) no longer holds the
        // others' flushes back, and the last one prints what is left.
        drop(worker.export(vec![span(2, 3, 0, "orphan", 0, 1)].into(), Instant::now()));
        drop(worker);
        drop(gateway.export(vec![span(3, 4, 0, "late", 0, 1)].into(), Instant::now()));
        gateway.tick(true);
        assert_eq!(out.lock().unwrap().len(), 3);
        drop(gateway.export(vec![span(4, 5, 0, "last", 0, 1)].into(), Instant::now()));
        drop(gateway);
        assert_eq!(
            out.lock().unwrap().len(),
            4,
            "printed when the last sink goes"
        );
    }

    #[test]
    fn traces_print_in_the_order_they_started() {
        let (shared, out) = collected();
        let mut sink = shared.sink(&Resource::builder_empty().with_service_name("svc").build());
        // Trace 1 started first and is still going (its root has not ended);
        // trace 2 started later and is done.
        drop(sink.export(
            vec![span(1, 2, 1, "slow child", 0, 5)].into(),
            Instant::now(),
        ));
        drop(sink.export(vec![span(2, 9, 0, "fast", 10, 11)].into(), Instant::now()));
        std::thread::sleep(LINGER);
        sink.tick(false);
        assert!(out.lock().unwrap().is_empty(), "the later trace waits");
        drop(sink.export(
            vec![span(1, 1, 0, "slow root", 0, 400)].into(),
            Instant::now(),
        ));
        std::thread::sleep(LINGER);
        sink.tick(false);
        let printed = out.lock().unwrap().clone();
        assert_eq!(printed.len(), 2, "{printed:?}");
        assert!(printed[0].contains("slow root"), "{printed:?}");
        assert!(printed[1].contains("fast"), "{printed:?}");
    }

    #[test]
    fn time_in_a_queue_is_shown() {
        let mut producer = span(1, 2, 1, "send orders", 1, 2);
        producer.span_kind = SpanKind::Producer;
        let mut consumer = span(1, 3, 2, "process orders", 302, 303);
        consumer.span_kind = SpanKind::Consumer;
        let spans = vec![span(1, 1, 0, "cron", 0, 3), producer, consumer];
        let text = render(TraceId::from(1u128), &spans, &["svc"; 3]);
        let line = text.lines().find(|l| l.contains("process orders")).unwrap();
        assert!(line.ends_with("⋯ 300.0 ms in the queue"), "{text}");
    }
}
