//! Carriers for transports without a wrapper here: a plain string map
//! (Kafka headers, NATS headers, an in-process channel) and a JSON payload
//! field.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use serde_json::{Map, Value};

use crate::span::{self, MESSAGING_MESSAGE_ID, ParentMode, TracerChoice};

/// The field of a JSON payload that carries the context:
/// `{"traceContext": {"traceparent": "...", "tracestate": "..."}}`.
pub const JSON_FIELD: &str = "traceContext";

/// Injects `cx` into a string map with the global propagator.
pub fn inject_map(cx: &Context, map: &mut HashMap<String, String>) {
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(cx, map));
}

/// The context in a string map; an empty or malformed map yields a context
/// with no parent, never an error.
pub fn extract_map(map: &HashMap<String, String>) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract_with_context(&Context::new(), map))
}

/// Writes `cx` into `payload["traceContext"]` (`payload` must be a JSON
/// object; anything else is left alone).
pub fn inject_json(cx: &Context, payload: &mut Value) {
    let Some(object) = payload.as_object_mut() else {
        return;
    };
    let mut fields = HashMap::new();
    inject_map(cx, &mut fields);
    let context: Map<String, Value> = fields
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    object.insert(JSON_FIELD.to_owned(), Value::Object(context));
}

/// Reads the context from `payload["traceContext"]`; anything missing or
/// malformed yields a context with no parent.
pub fn extract_json(payload: &Value) -> Context {
    struct JsonExtractor<'a>(Option<&'a Map<String, Value>>);
    impl Extractor for JsonExtractor<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0?.get(key)?.as_str()
        }
        fn keys(&self) -> Vec<&str> {
            self.0
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default()
        }
    }
    let fields = payload.get(JSON_FIELD).and_then(Value::as_object);
    opentelemetry::global::get_text_map_propagator(|p| {
        p.extract_with_context(&Context::new(), &JsonExtractor(fields))
    })
}

/// Writes into any `&mut HashMap<String, String>`-like header set.
#[derive(Debug)]
pub struct MapInjector<'a>(pub &'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// Sends a message through any transport: a PRODUCER span
/// `send {destination}` (child of the current context) whose context is
/// injected into `headers` before `send` receives them. The shorthand of
/// [`Producer::send`] with the global tracer provider.
///
/// ```no_run
/// # async fn demo(queue: tokio::sync::mpsc::Sender<(std::collections::HashMap<String, String>, String)>) -> Result<(), String> {
/// use std::collections::HashMap;
/// observability_messaging::send("memory", "orders", HashMap::new(), |headers| async move {
///     queue.send((headers, "order 7".to_owned())).await.map_err(|e| e.to_string())
/// })
/// .await
/// # }
/// ```
pub async fn send<F, Fut, T, E>(
    system: &'static str,
    destination: &str,
    headers: HashMap<String, String>,
    send: F,
) -> Result<T, E>
where
    F: FnOnce(HashMap<String, String>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    Producer::new(system, destination).send(headers, send).await
}

/// Processes a message from any transport: a CONSUMER span
/// `process {destination}` whose parent is the producer's context in
/// `headers` (or linked to it, in [`ParentMode::Link`]). The handler runs with
/// that span current; an `Err` marks the span failed. The shorthand of
/// [`Consumer::process`] with the global tracer provider.
pub async fn process<F, Fut, T, E>(
    system: &'static str,
    destination: &str,
    headers: &HashMap<String, String>,
    message_id: Option<&str>,
    mode: ParentMode,
    handler: F,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    Consumer::new(system, destination)
        .mode(mode)
        .process(headers, message_id, handler)
        .await
}

/// The producer side of any transport, with its options: see [`send`].
///
/// ```no_run
/// # async fn demo(provider: opentelemetry_sdk::trace::SdkTracerProvider, queue: tokio::sync::mpsc::Sender<std::collections::HashMap<String, String>>) -> Result<(), String> {
/// use observability_messaging::Producer;
/// let producer = Producer::new("memory", "orders").tracer_provider(&provider);
/// producer
///     .send(Default::default(), |headers| async move {
///         queue.send(headers).await.map_err(|e| e.to_string())
///     })
///     .await
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "call send() for each message"]
pub struct Producer {
    system: &'static str,
    destination: String,
    tracer: TracerChoice,
}

impl Producer {
    /// A producer for `destination` on `system` (`messaging.system`), with
    /// the global tracer provider.
    pub fn new(system: &'static str, destination: impl Into<String>) -> Self {
        Self {
            system,
            destination: destination.into(),
            tracer: TracerChoice::default(),
        }
    }

    crate::span::tracer_provider_option!();

    /// Sends a message inside a PRODUCER span `send {destination}` (child of
    /// the current context), its context injected into `headers` before
    /// `send` receives them.
    pub async fn send<F, Fut, T, E>(
        &self,
        mut headers: HashMap<String, String>,
        send: F,
    ) -> Result<T, E>
    where
        F: FnOnce(HashMap<String, String>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        let cx = span::start(
            &self.tracer,
            format!("send {}", self.destination),
            SpanKind::Producer,
            &Context::current(),
            span::convention_attributes(self.system, "send", "send", self.destination.clone(), 0),
            Vec::new(),
        );
        inject_map(&cx, &mut headers);
        span::run_in(cx, || send(headers)).await
    }
}

/// The consumer side of any transport, with its options: see [`process`].
#[derive(Clone, Debug)]
#[must_use = "call process() for each message"]
pub struct Consumer {
    system: &'static str,
    destination: String,
    mode: ParentMode,
    tracer: TracerChoice,
}

impl Consumer {
    /// A consumer of `destination` on `system` (`messaging.system`), the
    /// producer's span as parent, with the global tracer provider.
    pub fn new(system: &'static str, destination: impl Into<String>) -> Self {
        Self {
            system,
            destination: destination.into(),
            mode: ParentMode::Parent,
            tracer: TracerChoice::default(),
        }
    }

    /// Whether the consumer span is the producer's child (default) or links
    /// to it.
    pub fn mode(mut self, mode: ParentMode) -> Self {
        self.mode = mode;
        self
    }

    crate::span::tracer_provider_option!();

    /// Runs `handler` inside a CONSUMER span `process {destination}` whose
    /// parent is the producer's context in `headers` (or linked to it); an
    /// `Err` marks the span failed.
    pub async fn process<F, Fut, T, E>(
        &self,
        headers: &HashMap<String, String>,
        message_id: Option<&str>,
        handler: F,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        let producer = extract_map(headers);
        let mut attributes = span::convention_attributes(
            self.system,
            "process",
            "process",
            self.destination.clone(),
            1,
        );
        if let Some(id) = message_id {
            attributes.push(KeyValue::new(MESSAGING_MESSAGE_ID, id.to_owned()));
        }
        let cx = span::consumer_span(
            &self.tracer,
            format!("process {}", self.destination),
            &producer,
            self.mode,
            attributes,
        );
        span::run_in(cx, handler).await
    }
}

/// Whether a context carries a valid remote span (a producer was found).
pub fn has_parent(cx: &Context) -> bool {
    cx.span().span_context().is_valid()
}
