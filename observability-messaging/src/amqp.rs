//! RabbitMQ through lapin (feature `amqp`): trace context in the message's
//! `headers` table as long strings (`traceparent`, `tracestate`, `baggage`),
//! next to the user's headers.
//!
//! Spans follow the messaging and RabbitMQ semantic conventions as of
//! semantic-conventions v1.37.0: PRODUCER `publish {destination}`
//! (`messaging.operation.type` `send`, `messaging.operation.name`
//! `publish`), CONSUMER `process {destination}` (type and name `process`),
//! `messaging.system` `rabbitmq`, `messaging.destination.name` as the
//! conventions join exchange, routing key and queue,
//! `messaging.rabbitmq.destination.routing_key` when not empty,
//! `messaging.rabbitmq.message.delivery_tag`, and the correlation id as
//! `messaging.message.conversation_id`. Acknowledgements are made inside
//! the CONSUMER span, without settle spans of their own. (The registry's
//! development-status rename of the two RabbitMQ attributes to
//! `rabbitmq.*` is not followed yet: Java's, .NET's and Node's RabbitMQ
//! instrumentations still write `messaging.rabbitmq.*`.)
//!
//! ```no_run
//! # async fn demo(channel: lapin::Channel, delivery: lapin::message::Delivery) -> Result<(), Box<dyn std::error::Error>> {
//! use lapin::BasicProperties;
//! use lapin::options::BasicPublishOptions;
//! use observability_messaging::amqp;
//!
//! amqp::publish(&channel, "", "orders", BasicPublishOptions::default(), b"order 7", BasicProperties::default()).await?;
//!
//! amqp::Process::new()
//!     .ack(true)
//!     .run(&delivery, || async { Ok::<_, std::io::Error>(()) })
//!     .await?;
//! # Ok(()) }
//! ```

use std::fmt::Display;
use std::future::Future;

use lapin::PublisherConfirm;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::span::{self, MESSAGING_MESSAGE_ID, ParentMode, ProcessError, TracerChoice};

const ROUTING_KEY: &str = "messaging.rabbitmq.destination.routing_key";
const DELIVERY_TAG: &str = "messaging.rabbitmq.message.delivery_tag";
const CONVERSATION_ID: &str = "messaging.message.conversation_id";

/// Writes propagation fields into a headers table as long strings.
#[derive(Debug)]
pub struct AmqpHeadersInjector<'a>(pub &'a mut FieldTable);

impl Injector for AmqpHeadersInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(
            ShortString::from(key),
            AMQPValue::LongString(LongString::from(value)),
        );
    }
}

/// Reads propagation fields from a headers table: long strings, short
/// strings and byte arrays holding UTF-8 are read; other types are ignored.
#[derive(Debug, Clone, Copy)]
pub struct AmqpHeadersExtractor<'a>(pub Option<&'a FieldTable>);

fn as_str(value: &AMQPValue) -> Option<&str> {
    match value {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        AMQPValue::ByteArray(b) => std::str::from_utf8(b.as_slice()).ok(),
        _ => None,
    }
}

impl Extractor for AmqpHeadersExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0?
            .inner()
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .and_then(|(_, v)| as_str(v))
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .map(|t| t.inner().keys().map(ShortString::as_str).collect())
            .unwrap_or_default()
    }
}

/// `messaging.destination.name` of a publish, per the RabbitMQ semantic
/// conventions (semantic-conventions v1.30.0 and later, `rabbitmq.md`, the
/// note on `messaging.destination.name`): `{exchange}:{routing key}` when
/// both are set, the one that is set otherwise, and `amq.default` only for
/// the default exchange with no routing key.
pub(crate) fn publish_destination(exchange: &str, routing_key: &str) -> String {
    join_destination(&[exchange, routing_key])
}

/// `messaging.destination.name` of a delivery, per the same note:
/// `{exchange}:{routing key}:{queue}` with empty parts left out, and the
/// queue left out when it equals the routing key (a message published to
/// the default exchange under a queue's name is just that queue's name).
pub(crate) fn consume_destination(exchange: &str, routing_key: &str, queue: &str) -> String {
    let queue = if queue == routing_key { "" } else { queue };
    join_destination(&[exchange, routing_key, queue])
}

fn join_destination(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push(':');
        }
        out.push_str(part);
    }
    if out.is_empty() {
        out.push_str("amq.default");
    }
    out
}

/// Publishes inside a PRODUCER span `publish {destination}` (the
/// destination as the RabbitMQ conventions write it: `{exchange}:{routing
/// key}`, and just `orders` for the default exchange and routing key
/// `orders`), with the span's
/// context added to the message's headers (the user's headers are kept).
/// Returns lapin's publisher confirmation.
pub async fn publish(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    options: BasicPublishOptions,
    payload: &[u8],
    properties: BasicProperties,
) -> lapin::Result<PublisherConfirm> {
    let destination = publish_destination(exchange, routing_key);
    let mut attributes =
        span::convention_attributes("rabbitmq", "send", "publish", destination.clone(), 3);
    if !routing_key.is_empty() {
        attributes.push(KeyValue::new(ROUTING_KEY, routing_key.to_owned()));
    }
    if let Some(id) = properties.correlation_id() {
        attributes.push(KeyValue::new(CONVERSATION_ID, id.as_str().to_owned()));
    }
    if let Some(id) = properties.message_id() {
        attributes.push(KeyValue::new(MESSAGING_MESSAGE_ID, id.as_str().to_owned()));
    }
    let timed = crate::metrics::Timed::start(&attributes);
    // Span name: `{messaging.operation.name} {destination}` (messaging
    // spans, "Span name").
    let cx = span::start(
        &TracerChoice::default(),
        format!("publish {destination}"),
        SpanKind::Producer,
        &Context::current(),
        attributes,
        Vec::new(),
    );
    let mut headers = properties.headers().clone().unwrap_or_default();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut AmqpHeadersInjector(&mut headers))
    });
    let properties = properties.with_headers(headers);
    let result = channel
        .basic_publish(
            ShortString::from(exchange),
            ShortString::from(routing_key),
            options,
            payload,
            properties,
        )
        .await;
    if let Err(error) = &result {
        span::fail(&cx, "amqp", error);
    }
    {
        let _attached = cx.clone().attach();
        timed.sent(1, result.as_ref().err().map(|_| "amqp"));
    }
    cx.span().end();
    result
}

/// The producer's context of a delivery; missing or malformed headers yield
/// no parent.
pub fn extract(delivery: &Delivery) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| {
        p.extract_with_context(
            &Context::new(),
            &AmqpHeadersExtractor(delivery.properties.headers().as_ref()),
        )
    })
}

/// Processes deliveries in CONSUMER spans `process {destination}`, the
/// destination as the RabbitMQ conventions write it
/// (`{exchange}:{routing key}:{queue}`, empty parts left out): with
/// [`queue`](Self::queue) set, a delivery from the default exchange to queue
/// `orders` is `process orders`.
#[derive(Debug, Clone, Default)]
#[must_use = "call run() for each delivery"]
pub struct Process {
    mode: ParentMode,
    ack: bool,
    requeue_on_failure: bool,
    queue: String,
    tracer: TracerChoice,
}

impl Process {
    /// Parent mode, no acknowledgement by this wrapper.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the consumer span is the producer's child (default) or links
    /// to it.
    pub fn mode(mut self, mode: ParentMode) -> Self {
        self.mode = mode;
        self
    }

    /// Acks on success and nacks on failure (default off).
    pub fn ack(mut self, on: bool) -> Self {
        self.ack = on;
        self
    }

    crate::span::tracer_provider_option!();

    /// The queue the deliveries come from (a delivery does not say), the last
    /// part of `messaging.destination.name`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Whether a failed delivery is requeued when nacked (default false).
    pub fn requeue_on_failure(mut self, on: bool) -> Self {
        self.requeue_on_failure = on;
        self
    }

    /// Runs `handler` inside the CONSUMER span; an `Err` marks it failed.
    pub async fn run<F, Fut, T, E>(
        &self,
        delivery: &Delivery,
        handler: F,
    ) -> Result<T, ProcessError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        let producer = extract(delivery);
        let routing_key = delivery.routing_key.as_str();
        let destination = consume_destination(delivery.exchange.as_str(), routing_key, &self.queue);
        let mut attributes =
            span::convention_attributes("rabbitmq", "process", "process", destination.clone(), 4);
        attributes.push(KeyValue::new(DELIVERY_TAG, delivery.delivery_tag as i64));
        if !routing_key.is_empty() {
            attributes.push(KeyValue::new(ROUTING_KEY, routing_key.to_owned()));
        }
        if let Some(id) = delivery.properties.correlation_id() {
            attributes.push(KeyValue::new(CONVERSATION_ID, id.as_str().to_owned()));
        }
        if let Some(id) = delivery.properties.message_id() {
            attributes.push(KeyValue::new(MESSAGING_MESSAGE_ID, id.as_str().to_owned()));
        }
        let (ack, requeue) = (self.ack, self.requeue_on_failure);
        let settle = |succeeded: bool| async move {
            if !ack {
                return Ok(());
            }
            if succeeded {
                delivery.acker.ack(BasicAckOptions::default()).await?;
            } else {
                let nack = BasicNackOptions {
                    requeue,
                    ..BasicNackOptions::default()
                };
                delivery.acker.nack(nack).await?;
            }
            Ok(())
        };
        span::process(
            &self.tracer,
            format!("process {destination}"),
            &producer,
            self.mode,
            attributes,
            handler,
            settle,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_follow_the_rabbitmq_conventions() {
        assert_eq!(publish_destination("", "orders"), "orders");
        assert_eq!(publish_destination("logs", "warning"), "logs:warning");
        assert_eq!(publish_destination("logs", ""), "logs");
        assert_eq!(publish_destination("", ""), "amq.default");
        assert_eq!(consume_destination("", "orders", "orders"), "orders");
        assert_eq!(consume_destination("", "orders", ""), "orders");
        assert_eq!(
            consume_destination("logs", "warning", "warning_queue"),
            "logs:warning:warning_queue"
        );
        assert_eq!(
            consume_destination("logs", "warning", "warning"),
            "logs:warning"
        );
        assert_eq!(consume_destination("logs", "", "all"), "logs:all");
        assert_eq!(consume_destination("", "", ""), "amq.default");
    }
}
