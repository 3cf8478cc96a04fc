//! AWS SQS (feature `sqs`): trace context in `traceparent`, `tracestate`
//! and `baggage` message attributes of type `String`, the names and types
//! the OpenTelemetry Node.js and Python instrumentations use, so traces cross
//! languages in both directions.
//!
//! ```no_run
//! # async fn demo(client: aws_sdk_sqs::Client, url: String) -> Result<(), Box<dyn std::error::Error>> {
//! use observability_messaging::sqs;
//!
//! // producer
//! sqs::send(client.send_message().queue_url(&url).message_body("order 7")).await?;
//!
//! // consumer
//! let received = sqs::receive(sqs::with_trace_attributes(client.receive_message().queue_url(&url))).await?;
//! for message in received.messages() {
//!     sqs::Process::new(&url)
//!         .delete_on_success(&client)
//!         .run(message, || async { Ok::<_, std::io::Error>(()) })
//!         .await?;
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt::{self, Display};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_sdk_sqs::operation::receive_message::builders::ReceiveMessageFluentBuilder;
use aws_sdk_sqs::operation::send_message::SendMessageOutput;
use aws_sdk_sqs::operation::send_message::builders::SendMessageFluentBuilder;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
use aws_sdk_sqs::operation::send_message_batch::builders::SendMessageBatchFluentBuilder;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{Link, SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::span::{self, MESSAGING_MESSAGE_ID, ParentMode, ProcessError, TracerChoice};

/// `messaging.batch.message_count` (only SQS batches here).
const MESSAGING_BATCH_MESSAGE_COUNT: &str = "messaging.batch.message_count";
/// SQS accepts at most this many message attributes per message.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// `aws.sqs.queue.url`.
const AWS_SQS_QUEUE_URL: &str = "aws.sqs.queue.url";
/// The names of the propagation attributes.
const PROPAGATION_ATTRIBUTES: [&str; 3] = ["traceparent", "tracestate", "baggage"];

/// Writes propagation fields as `String` message attributes.
#[derive(Debug)]
pub struct SqsAttributesInjector<'a>(pub &'a mut HashMap<String, MessageAttributeValue>);

impl Injector for SqsAttributesInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let Ok(attribute) = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
        {
            self.0.insert(key.to_owned(), attribute);
        }
    }
}

/// Reads propagation fields from message attributes: only attributes whose
/// data type is `String` (or `String.*`) count; binary or numeric ones are
/// ignored, so a malformed message starts a new trace.
#[derive(Debug, Clone, Copy)]
pub struct SqsAttributesExtractor<'a>(pub Option<&'a HashMap<String, MessageAttributeValue>>);

impl Extractor for SqsAttributesExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let attribute = self.0?.get(key)?;
        let data_type = attribute.data_type();
        (data_type == "String" || data_type.starts_with("String."))
            .then(|| attribute.string_value())
            .flatten()
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

/// The queue name: the last path segment of a queue URL (or the input when
/// it is already a name).
pub fn queue_name(queue_url: &str) -> &str {
    queue_url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(queue_url)
}

static WARNED_LIMIT: AtomicBool = AtomicBool::new(false);

/// Injects `cx` into `attributes` unless that would exceed the SQS limit of
/// ten attributes: then the user's attributes stay as they are, and one
/// warning (per process) says so. Returns whether it injected.
pub fn inject_attributes(
    cx: &Context,
    attributes: &mut HashMap<String, MessageAttributeValue>,
) -> bool {
    let mut fields = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(cx, &mut SqsAttributesInjector(&mut fields))
    });
    let new = fields
        .keys()
        .filter(|k| !attributes.contains_key(*k))
        .count();
    if attributes.len() + new > MAX_MESSAGE_ATTRIBUTES {
        if !WARNED_LIMIT.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "observability_messaging",
                existing = attributes.len(),
                needed = new,
                "an SQS message already has too many attributes for trace context \
                 (the limit is 10): it is sent without it, and its consumer starts a new trace"
            );
        }
        return false;
    }
    attributes.extend(fields);
    true
}

/// The attributes of an SQS span: the conventions' four and the queue URL.
fn sqs_attributes(queue_url: &str, operation: &'static str) -> Vec<KeyValue> {
    let destination = queue_name(queue_url).to_owned();
    let mut attributes =
        span::convention_attributes("aws_sqs", operation, operation, destination, 3);
    attributes.push(KeyValue::new(AWS_SQS_QUEUE_URL, queue_url.to_owned()));
    attributes
}

type HttpResponse = aws_sdk_sqs::config::http::HttpResponse;

/// Sends one message inside a PRODUCER span `send {queue}`, with the span's
/// context in the message attributes.
pub async fn send(
    request: SendMessageFluentBuilder,
) -> Result<
    SendMessageOutput,
    SdkError<aws_sdk_sqs::operation::send_message::SendMessageError, HttpResponse>,
> {
    let url = request.get_queue_url().clone().unwrap_or_default();
    let attributes = sqs_attributes(&url, "send");
    let timed = crate::metrics::Timed::start(&attributes);
    let cx = span::start(
        &TracerChoice::default(),
        format!("send {}", queue_name(&url)),
        SpanKind::Producer,
        &Context::current(),
        attributes,
        Vec::new(),
    );
    let mut attributes = request.get_message_attributes().clone().unwrap_or_default();
    let request = if inject_attributes(&cx, &mut attributes) {
        request.set_message_attributes(Some(attributes))
    } else {
        request
    };
    let result = request.send().await;
    match &result {
        Ok(output) => {
            if let Some(id) = output.message_id() {
                cx.span()
                    .set_attribute(KeyValue::new(MESSAGING_MESSAGE_ID, id.to_owned()));
            }
        }
        Err(error) => span::fail(&cx, "aws_sqs", &DisplayError(error)),
    }
    {
        let _attached = cx.clone().attach();
        timed.sent(1, result.as_ref().err().map(|_| "aws_sqs"));
    }
    cx.span().end();
    result
}

/// Sends a batch inside one PRODUCER span `send {queue}`
/// (`messaging.batch.message_count`); each message gets a `create {queue}`
/// span of its own, whose context it carries, and the send span links to
/// them.
pub async fn send_batch(
    request: SendMessageBatchFluentBuilder,
) -> Result<
    SendMessageBatchOutput,
    SdkError<aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError, HttpResponse>,
> {
    let url = request.get_queue_url().clone().unwrap_or_default();
    let parent = Context::current();
    let mut entries = request.get_entries().clone().unwrap_or_default();
    let mut links = Vec::with_capacity(entries.len());
    for entry in &mut entries {
        let create = span::start(
            &TracerChoice::default(),
            format!("create {}", queue_name(&url)),
            SpanKind::Producer,
            &parent,
            sqs_attributes(&url, "create"),
            Vec::new(),
        );
        let mut attributes = entry.message_attributes().cloned().unwrap_or_default();
        if inject_attributes(&create, &mut attributes) {
            *entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .set_id(Some(entry.id().to_owned()))
                .set_message_body(Some(entry.message_body().to_owned()))
                .set_delay_seconds(entry.delay_seconds())
                .set_message_attributes(Some(attributes))
                .set_message_system_attributes(entry.message_system_attributes().cloned())
                .set_message_deduplication_id(entry.message_deduplication_id().map(str::to_owned))
                .set_message_group_id(entry.message_group_id().map(str::to_owned))
                .build()
                .unwrap_or_else(|_| entry.clone());
        }
        links.push(Link::with_context(create.span().span_context().clone()));
        create.span().end();
    }
    let mut attributes = sqs_attributes(&url, "send");
    attributes.push(KeyValue::new(
        MESSAGING_BATCH_MESSAGE_COUNT,
        entries.len() as i64,
    ));
    let timed = crate::metrics::Timed::start(&attributes);
    let count = entries.len() as u64;
    let cx = span::start(
        &TracerChoice::default(),
        format!("send {}", queue_name(&url)),
        SpanKind::Producer,
        &parent,
        attributes,
        links,
    );
    let result = request.set_entries(Some(entries)).send().await;
    {
        let _attached = cx.clone().attach();
        let error = match &result {
            Err(_) => Some("aws_sqs"),
            Ok(output) if !output.failed().is_empty() => Some("partial_failure"),
            Ok(_) => None,
        };
        timed.sent(count, error);
    }
    if let Err(error) = &result {
        span::fail(&cx, "aws_sqs", &DisplayError(error));
    } else if let Ok(output) = &result
        && !output.failed().is_empty()
    {
        let span = cx.span();
        span.set_attribute(KeyValue::new(span::ERROR_TYPE, "partial_failure"));
        span.set_status(opentelemetry::trace::Status::error(format!(
            "{} of the batch's messages failed",
            output.failed().len()
        )));
    }
    cx.span().end();
    result
}

/// Makes a `ReceiveMessage` request ask for the propagation attributes and
/// the `AWSTraceHeader` system attribute, keeping what it already asks for.
pub fn with_trace_attributes(request: ReceiveMessageFluentBuilder) -> ReceiveMessageFluentBuilder {
    let asked = request
        .get_message_attribute_names()
        .clone()
        .unwrap_or_default();
    let all = asked.iter().any(|a| a == "All" || a == ".*");
    let mut request = request;
    if !all {
        // The W3C fields, and whatever else the installed propagators
        // write (`b3`, `uber-trace-id`, ...).
        let mut names: Vec<String> = PROPAGATION_ATTRIBUTES
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        opentelemetry::global::get_text_map_propagator(|p| {
            for field in p.fields() {
                if !names.iter().any(|n| n == field) {
                    names.push(field.to_owned());
                }
            }
        });
        for name in names {
            if !asked.contains(&name) {
                request = request.message_attribute_names(name);
            }
        }
    }
    let system = request
        .get_message_system_attribute_names()
        .clone()
        .unwrap_or_default();
    if !system.iter().any(|a| {
        matches!(
            a,
            MessageSystemAttributeName::All | MessageSystemAttributeName::AwsTraceHeader
        )
    }) {
        request =
            request.message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader);
    }
    request
}

/// Receives inside a span `receive {queue}` that links to the creation
/// context of every message received.
pub async fn receive(
    request: ReceiveMessageFluentBuilder,
) -> Result<
    ReceiveMessageOutput,
    SdkError<aws_sdk_sqs::operation::receive_message::ReceiveMessageError, HttpResponse>,
> {
    let url = request.get_queue_url().clone().unwrap_or_default();
    let started = std::time::SystemTime::now();
    let result = request.send().await;
    let links: Vec<Link> = result
        .as_ref()
        .map(|output| {
            output
                .messages()
                .iter()
                .map(extract)
                .filter(|cx| cx.span().span_context().is_valid())
                .map(|cx| Link::with_context(cx.span().span_context().clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut attributes = sqs_attributes(&url, "receive");
    if let Ok(output) = &result {
        attributes.push(KeyValue::new(
            MESSAGING_BATCH_MESSAGE_COUNT,
            output.messages().len() as i64,
        ));
    }
    let cx = span::start_at(
        &TracerChoice::default(),
        format!("receive {}", queue_name(&url)),
        SpanKind::Client,
        &Context::current(),
        attributes,
        links,
        Some(started),
    );
    if let Err(error) = &result {
        span::fail(&cx, "aws_sqs", &DisplayError(error));
    }
    cx.span().end();
    result
}

/// The producer's context of a received message: from the `traceparent`
/// attribute, else from the `AWSTraceHeader` system attribute (X-Ray
/// format). Malformed values yield no parent.
pub fn extract(message: &Message) -> Context {
    let cx = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract_with_context(
            &Context::new(),
            &SqsAttributesExtractor(message.message_attributes()),
        )
    });
    if cx.span().span_context().is_valid() {
        return cx;
    }
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::AwsTraceHeader))
        .and_then(|header| observability_propagation::xray::parse_header(header))
        .map_or(cx, |sc| Context::new().with_remote_span_context(sc))
}

/// Processes received messages of one queue in CONSUMER spans.
#[derive(Debug, Clone)]
#[must_use = "call run() for each message"]
pub struct Process {
    queue_url: String,
    mode: ParentMode,
    delete_with: Option<Client>,
    tracer: TracerChoice,
}

impl Process {
    /// For messages of the queue at `queue_url`.
    pub fn new(queue_url: impl Into<String>) -> Self {
        Self {
            queue_url: queue_url.into(),
            mode: ParentMode::Parent,
            delete_with: None,
            tracer: TracerChoice::default(),
        }
    }

    crate::span::tracer_provider_option!();

    /// Whether the consumer span is the producer's child (default) or
    /// starts its own trace with a link to it.
    pub fn mode(mut self, mode: ParentMode) -> Self {
        self.mode = mode;
        self
    }

    /// Deletes each message once its handler succeeds.
    pub fn delete_on_success(mut self, client: &Client) -> Self {
        self.delete_with = Some(client.clone());
        self
    }

    /// Runs `handler` inside a CONSUMER span `process {queue}` with the
    /// producer's context as parent (or link). An `Err` marks the span
    /// failed; the message is then left for redelivery.
    pub async fn run<F, Fut, T, E>(
        &self,
        message: &Message,
        handler: F,
    ) -> Result<T, ProcessError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        let producer = extract(message);
        let mut attributes = sqs_attributes(&self.queue_url, "process");
        if let Some(id) = message.message_id() {
            attributes.push(KeyValue::new(MESSAGING_MESSAGE_ID, id.to_owned()));
        }
        let client = self.delete_with.clone();
        let url = self.queue_url.clone();
        let receipt = message.receipt_handle().map(str::to_owned);
        let settle = |succeeded: bool| async move {
            if let (true, Some(client), Some(receipt)) = (succeeded, client, receipt) {
                client
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .send()
                    .await?;
            }
            Ok(())
        };
        span::process(
            &self.tracer,
            format!("process {}", queue_name(&self.queue_url)),
            &producer,
            self.mode,
            attributes,
            handler,
            settle,
        )
        .await
    }
}

/// Shows an SDK error with its source chain (the SDK's `Display` alone
/// says only "service error").
struct DisplayError<'a, E>(&'a E);

impl<E: std::error::Error> Display for DisplayError<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
