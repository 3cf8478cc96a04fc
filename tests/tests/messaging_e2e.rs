//! One trace from producer to consumer through a real SQS-compatible server
//! (moto) and a real RabbitMQ, exported to the OTLP test receiver.
//! `scripts/test.sh` starts both servers and exports `SQS_ENDPOINT` and
//! `AMQP_ADDR`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use observability_core::TelemetryGuard;
use observability_messaging::{ParentMode, amqp, sqs};
use observability_tests::{OtlpReceiver, ReceivedSpan, hex, value_to_string};

struct Shared {
    receiver: OtlpReceiver,
    guard: TelemetryGuard,
}

/// One receiver and one global telemetry for this binary: the messaging
/// wrappers use the global tracer provider.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let receiver = OtlpReceiver::start();
        let endpoint = receiver.http_endpoint();
        let guard = observability_core::builder()
            .log_writer(tracing_subscriber::fmt::TestWriter::new())
            .env_lookup(move |name| {
                (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone())
            })
            .service_name("messaging-tests")
            .try_init()
            .unwrap();
        Shared { receiver, guard }
    })
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn require(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through scripts/test.sh, which starts RabbitMQ and the SQS-compatible server")
    })
}

async fn sqs_client() -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .endpoint_url(require("SQS_ENDPOINT"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

async fn queue(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot create an SQS queue at {}: {e:?}",
                require("SQS_ENDPOINT")
            )
        })
        .queue_url()
        .unwrap()
        .to_owned()
}

/// The exporter set up, a client of the SQS-compatible server and a new
/// queue named from `prefix`: the client, the queue's name and its URL.
async fn sqs_queue(prefix: &str) -> (aws_sdk_sqs::Client, String, String) {
    shared();
    let client = sqs_client().await;
    let name = unique(prefix);
    let url = queue(&client, &name).await;
    (client, name, url)
}

/// Sends `body` to `url` through the producer wrapper, in a root span
/// named `root`: the trace id, and what the server answered.
async fn send_in_root(
    client: &aws_sdk_sqs::Client,
    url: &str,
    root: &'static str,
    body: &str,
) -> (
    String,
    aws_sdk_sqs::operation::send_message::SendMessageOutput,
) {
    in_root(root, async {
        sqs::send(client.send_message().queue_url(url).message_body(body))
            .await
            .unwrap()
    })
    .await
}

/// Flushes and returns the received spans of one trace.
fn trace(trace_id: &str) -> Vec<ReceivedSpan> {
    shared().guard.force_flush().unwrap();
    shared()
        .receiver
        .spans()
        .into_iter()
        .filter(|s| s.trace_id() == trace_id)
        .collect()
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.span.name == name).collect()
}

fn one<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found = named(spans, name);
    assert_eq!(
        found.len(),
        1,
        "one {name} in {:?}",
        spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
    );
    found[0]
}

fn all_spans() -> Vec<ReceivedSpan> {
    shared().guard.force_flush().unwrap();
    shared().receiver.spans()
}

/// Runs `f` in a root span and returns the trace id.
async fn in_root<F: std::future::Future>(name: &'static str, f: F) -> (String, F::Output) {
    use observability_core::OpenTelemetrySpanExt;
    use opentelemetry::trace::TraceContextExt;
    use tracing::Instrument;
    let span = tracing::info_span!("root", otel.name = name);
    let trace_id = span.context().span().span_context().trace_id().to_string();
    let out = f.instrument(span).await;
    (trace_id, out)
}

const SPAN_KIND_CLIENT: i32 = 3;
const SPAN_KIND_PRODUCER: i32 = 4;
const SPAN_KIND_CONSUMER: i32 = 5;

#[tokio::test]
async fn sqs_single_message_one_trace_from_producer_to_consumer() {
    let (client, name, url) = sqs_queue("orders").await;
    let (trace_id, output) = send_in_root(&client, &url, "checkout", "order 7").await;
    let received = sqs::receive(sqs::with_trace_attributes(
        client.receive_message().queue_url(&url),
    ))
    .await
    .unwrap();
    let message = received.messages().first().expect("one message");
    sqs::Process::new(&url)
        .delete_on_success(&client)
        .run(message, || async {
            let _s = tracing::info_span!("handle_order").entered();
            Ok::<_, std::io::Error>(())
        })
        .await
        .unwrap();

    let spans = trace(&trace_id);
    let root = one(&spans, "checkout");
    let send = one(&spans, &format!("send {name}"));
    let process = one(&spans, &format!("process {name}"));
    let handler = one(&spans, "handle_order");
    assert_eq!(send.parent_span_id(), root.span_id());
    assert_eq!(
        process.parent_span_id(),
        send.span_id(),
        "the producer is the parent"
    );
    assert_eq!(handler.parent_span_id(), process.span_id());
    assert_eq!(
        (send.span.kind, process.span.kind),
        (SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER)
    );
    for span in [send, process] {
        assert_eq!(span.attr("messaging.system").as_deref(), Some("aws_sqs"));
        assert_eq!(
            span.attr("messaging.destination.name").as_deref(),
            Some(name.as_str())
        );
        assert_eq!(
            span.attr("aws.sqs.queue.url").as_deref(),
            Some(url.as_str())
        );
        assert_eq!(
            span.attr("messaging.message.id").as_deref(),
            output.message_id()
        );
    }
    assert_eq!(
        send.attr("messaging.operation.type").as_deref(),
        Some("send")
    );
    assert_eq!(
        process.attr("messaging.operation.type").as_deref(),
        Some("process")
    );
    // Span names are `{messaging.operation.name} {destination}`.
    for (span, operation) in [(send, "send"), (process, "process")] {
        assert_eq!(
            span.attr("messaging.operation.name").as_deref(),
            Some(operation)
        );
        assert_eq!(span.span.name, format!("{operation} {name}"));
    }
    // The receive span links to the message's creation context.
    let receive = all_spans()
        .into_iter()
        .find(|s| s.span.name == format!("receive {name}"))
        .unwrap();
    // Receiving is a call to the broker: a CLIENT span (messaging spans,
    // "Span kind").
    assert_eq!(receive.span.kind, SPAN_KIND_CLIENT);
    assert_eq!(
        receive.attr("messaging.operation.type").as_deref(),
        Some("receive")
    );
    assert_eq!(receive.span.links.len(), 1);
    assert_eq!(
        observability_tests::hex(&receive.span.links[0].span_id),
        send.span_id()
    );
    // Deleted on success.
    let again = client
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    assert!(again.messages().is_empty());
}

#[tokio::test]
async fn sqs_batch_each_message_carries_its_own_creation_context() {
    let (client, name, url) = sqs_queue("batch").await;
    let entries: Vec<_> = (0..3)
        .map(|i| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(format!("item {i}"))
                .build()
                .unwrap()
        })
        .collect();
    let (trace_id, _) = in_root("bulk_import", async {
        sqs::send_batch(
            client
                .send_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries)),
        )
        .await
        .unwrap()
    })
    .await;
    let received = sqs::receive(sqs::with_trace_attributes(
        client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10),
    ))
    .await
    .unwrap();
    assert_eq!(received.messages().len(), 3);
    for message in received.messages() {
        sqs::Process::new(&url)
            .run(message, || async { Ok::<_, std::io::Error>(()) })
            .await
            .unwrap();
    }
    let spans = trace(&trace_id);
    let send = one(&spans, &format!("send {name}"));
    let creates = named(&spans, &format!("create {name}"));
    let processes = named(&spans, &format!("process {name}"));
    assert_eq!((creates.len(), processes.len()), (3, 3));
    assert_eq!(
        send.attr("messaging.batch.message_count").as_deref(),
        Some("3")
    );
    assert_eq!(
        send.span.links.len(),
        3,
        "the send span links to each creation"
    );
    for process in processes {
        assert!(
            creates
                .iter()
                .any(|c| c.span_id() == process.parent_span_id()),
            "each consumer's parent is its message's create span"
        );
    }
    let receive = all_spans()
        .into_iter()
        .find(|s| s.span.name == format!("receive {name}"))
        .unwrap();
    assert_eq!(
        receive.span.links.len(),
        3,
        "a batch receive links to every message"
    );
}

#[tokio::test]
async fn sqs_link_mode_handler_failure_and_no_delete() {
    let (client, name, url) = sqs_queue("linked").await;
    let (producer_trace, _) = send_in_root(&client, &url, "produce", "x").await;
    let received = sqs::receive(sqs::with_trace_attributes(
        client.receive_message().queue_url(&url),
    ))
    .await
    .unwrap();
    let message = &received.messages()[0];
    let result = sqs::Process::new(&url)
        .mode(ParentMode::Link)
        .delete_on_success(&client)
        .run(message, || async {
            Err::<(), _>(std::io::Error::other("stock service down"))
        })
        .await;
    assert!(matches!(
        result,
        Err(observability_messaging::ProcessError::Handler(_))
    ));
    let send = one(&trace(&producer_trace), &format!("send {name}")).clone();
    let process = all_spans()
        .into_iter()
        .find(|s| s.span.name == format!("process {name}"))
        .unwrap();
    assert_ne!(process.trace_id(), producer_trace, "its own trace");
    assert_eq!(process.span.links.len(), 1);
    assert_eq!(
        observability_tests::hex(&process.span.links[0].trace_id),
        producer_trace
    );
    assert_eq!(
        observability_tests::hex(&process.span.links[0].span_id),
        send.span_id()
    );
    let status = process.span.status.clone().unwrap();
    assert_eq!(
        (status.code, status.message.as_str()),
        (2, "stock service down")
    );
    // Not deleted: it comes back after the visibility timeout.
    client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(message.receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let again = client
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(again.messages().len(), 1);
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

#[tokio::test]
async fn sqs_ten_user_attributes_are_kept_and_no_context_is_added() {
    let (client, _, url) = sqs_queue("full").await;
    let mut request = client.send_message().queue_url(&url).message_body("x");
    for i in 0..10 {
        request =
            request.message_attributes(format!("attr{i}"), string_attribute(&format!("v{i}")));
    }
    in_root("produce_full", async { sqs::send(request).await.unwrap() }).await;
    let received = client
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let attributes = received.messages()[0].message_attributes().unwrap();
    assert_eq!(attributes.len(), 10, "the user's ten, untouched");
    assert!(!attributes.contains_key("traceparent"));
    assert_eq!(attributes["attr3"].string_value(), Some("v3"));
    // Below the limit, context is added next to the user's attributes.
    let mut request = client.send_message().queue_url(&url).message_body("y");
    for i in 0..5 {
        request = request.message_attributes(format!("attr{i}"), string_attribute("v"));
    }
    sqs::send(request).await.unwrap();
    let received = client
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let attributes = received.messages()[0].message_attributes().unwrap();
    assert_eq!(attributes.len(), 6);
    assert!(attributes.contains_key("traceparent"));
}

#[tokio::test]
async fn sqs_interop_both_directions_at_the_wire() {
    let (client, name, url) = sqs_queue("interop").await;

    // Ours, read as another language's instrumentation reads it.
    let (trace_id, _) = send_in_root(&client, &url, "rust_producer", "from rust").await;
    let raw = client
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let attributes = raw.messages()[0].message_attributes().unwrap();
    let traceparent = &attributes["traceparent"];
    assert_eq!(traceparent.data_type(), "String");
    let value = traceparent.string_value().unwrap();
    let send = one(&trace(&trace_id), &format!("send {name}")).clone();
    assert_eq!(value, format!("00-{trace_id}-{}-01", send.span_id()));
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(raw.messages()[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();

    // Theirs (as the Node.js and Python instrumentations write it), continued by us.
    let foreign_trace = "0af7651916cd43dd8448eb211c80319c";
    client
        .send_message()
        .queue_url(&url)
        .message_body("from node")
        .message_attributes(
            "traceparent",
            string_attribute(&format!("00-{foreign_trace}-b7ad6b7169203331-01")),
        )
        .message_attributes("tracestate", string_attribute("vendor=node"))
        .send()
        .await
        .unwrap();
    let received = sqs::receive(sqs::with_trace_attributes(
        client.receive_message().queue_url(&url),
    ))
    .await
    .unwrap();
    sqs::Process::new(&url)
        .run(&received.messages()[0], || async {
            Ok::<_, std::io::Error>(())
        })
        .await
        .unwrap();
    let process = one(&trace(foreign_trace), &format!("process {name}")).clone();
    assert_eq!(process.parent_span_id(), "b7ad6b7169203331");
    assert_eq!(process.span.trace_state, "vendor=node");
}

#[tokio::test]
async fn sqs_malformed_attributes_start_a_new_trace_and_x_ray_headers_are_read() {
    let (client, name, url) = sqs_queue("malformed").await;
    let binary = MessageAttributeValue::builder()
        .data_type("Binary")
        .binary_value(aws_sdk_sqs::primitives::Blob::new(
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec(),
        ))
        .build()
        .unwrap();
    for (label, attribute) in [
        ("binary", binary),
        ("garbage", string_attribute("not a traceparent")),
        (
            "number",
            MessageAttributeValue::builder()
                .data_type("Number")
                .string_value("42")
                .build()
                .unwrap(),
        ),
    ] {
        client
            .send_message()
            .queue_url(&url)
            .message_body(label)
            .message_attributes("traceparent", attribute)
            .send()
            .await
            .unwrap();
    }
    // AWSTraceHeader, the X-Ray system attribute, when there is no traceparent.
    client
        .send_message()
        .queue_url(&url)
        .message_body("xray")
        .message_system_attributes(
            MessageSystemAttributeNameForSends::AwsTraceHeader,
            MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut handled = 0;
    while handled < 4 {
        let received = sqs::receive(sqs::with_trace_attributes(
            client
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10),
        ))
        .await
        .unwrap();
        for message in received.messages() {
            let body = message.body().unwrap().to_owned();
            let result = sqs::Process::new(&url)
                .delete_on_success(&client)
                .run(message, || async move { Ok::<_, std::io::Error>(body) })
                .await;
            assert!(
                result.is_ok(),
                "a malformed context never fails the handler"
            );
            handled += 1;
        }
    }
    let spans: Vec<ReceivedSpan> = all_spans()
        .into_iter()
        .filter(|s| s.span.name == format!("process {name}"))
        .collect();
    assert_eq!(spans.len(), 4);
    let xray: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id() == "5759e988bd862e3fe1be46a994272793")
        .collect();
    assert_eq!(xray.len(), 1, "the X-Ray trace continues");
    assert_eq!(xray[0].parent_span_id(), "53995c3f42cd8ad8");
    for span in spans
        .iter()
        .filter(|s| s.trace_id() != "5759e988bd862e3fe1be46a994272793")
    {
        assert_eq!(span.parent_span_id(), "", "a new trace");
        assert_ne!(
            span.trace_id(),
            "0af7651916cd43dd8448eb211c80319c",
            "binary/number values are not read"
        );
    }
}

// ---- RabbitMQ ----

async fn amqp_channel() -> (Connection, lapin::Channel) {
    let addr = require("AMQP_ADDR");
    let connection = Connection::connect(&addr, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to RabbitMQ at {addr}: {e}"));
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

async fn declare(channel: &lapin::Channel, name: &str) {
    channel
        .queue_declare(
            ShortString::from(name),
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
}

async fn get(channel: &lapin::Channel, queue: &str) -> lapin::message::Delivery {
    for _ in 0..100 {
        if let Some(message) = channel
            .basic_get(ShortString::from(queue), BasicGetOptions::default())
            .await
            .unwrap()
        {
            return message.delivery;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no message on {queue}");
}

#[tokio::test]
async fn rabbitmq_one_trace_from_publisher_to_consumer() {
    shared();
    let (_connection, channel) = amqp_channel().await;
    let queue = unique("jobs");
    declare(&channel, &queue).await;
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from("x-tenant"),
        AMQPValue::LongString(LongString::from("acme")),
    );
    let properties = BasicProperties::default()
        .with_headers(headers)
        .with_correlation_id(ShortString::from("order-7"));
    let (trace_id, _) = in_root("checkout", async {
        amqp::publish(
            &channel,
            "",
            &queue,
            BasicPublishOptions::default(),
            b"job",
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap()
    })
    .await;
    let delivery = get(&channel, &queue).await;
    // At the wire: long strings, next to the user's header.
    let table = delivery.properties.headers().clone().unwrap();
    assert!(matches!(
        table.inner().get("x-tenant"),
        Some(AMQPValue::LongString(_))
    ));
    assert!(matches!(
        table.inner().get("traceparent"),
        Some(AMQPValue::LongString(_))
    ));
    amqp::Process::new()
        .queue(queue.as_str())
        .ack(true)
        .run(&delivery, || async {
            let _s = tracing::info_span!("run_job").entered();
            Ok::<_, std::io::Error>(())
        })
        .await
        .unwrap();

    let spans = trace(&trace_id);
    // The default exchange is left out: the destination is the queue.
    let destination = queue.clone();
    let send = one(&spans, &format!("publish {destination}"));
    let process = one(&spans, &format!("process {destination}"));
    let job = one(&spans, "run_job");
    assert_eq!(process.parent_span_id(), send.span_id());
    assert_eq!(job.parent_span_id(), process.span_id());
    assert_eq!(
        (send.span.kind, process.span.kind),
        (SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER)
    );
    for span in [send, process] {
        assert_eq!(span.attr("messaging.system").as_deref(), Some("rabbitmq"));
        assert_eq!(
            span.attr("messaging.rabbitmq.destination.routing_key")
                .as_deref(),
            Some(queue.as_str())
        );
        assert_eq!(
            span.attr("messaging.message.conversation_id").as_deref(),
            Some("order-7")
        );
        assert_eq!(
            span.attr("messaging.destination.name").as_deref(),
            Some(destination.as_str())
        );
    }
    assert_eq!(
        process.attr("messaging.rabbitmq.message.delivery_tag"),
        Some(delivery.delivery_tag.to_string())
    );
    // `{messaging.operation.name} {destination}`, as the conventions name them.
    for (span, operation_type, operation) in
        [(send, "send", "publish"), (process, "process", "process")]
    {
        assert_eq!(
            span.attr("messaging.operation.type").as_deref(),
            Some(operation_type)
        );
        assert_eq!(
            span.attr("messaging.operation.name").as_deref(),
            Some(operation)
        );
        assert_eq!(span.span.name, format!("{operation} {destination}"));
    }
    let table = delivery.properties.headers().clone().unwrap();
    let Some(AMQPValue::LongString(tp)) = table.inner().get("traceparent") else {
        unreachable!()
    };
    assert_eq!(
        tp.to_string(),
        format!("00-{trace_id}-{}-01", send.span_id())
    );
    // The conventions' metrics, for this queue: one message sent, one
    // consumed, the processing timed with the consumer span as exemplar.
    shared().guard.force_flush().unwrap();
    let metrics = shared().receiver.metric_requests();
    let last = &metrics.last().expect("metrics exported").request;
    let sums = |name: &str, operation: &str| -> i64 {
        metric_points(last, name)
            .into_iter()
            .filter(|(attrs, _, _)| {
                attrs.get("messaging.destination.name") == Some(&destination)
                    && attrs.get("messaging.operation.name").map(String::as_str) == Some(operation)
                    && attrs.get("messaging.system").map(String::as_str) == Some("rabbitmq")
            })
            .map(|(_, value, _)| value)
            .sum()
    };
    assert_eq!(sums("messaging.client.sent.messages", "publish"), 1);
    assert_eq!(sums("messaging.client.consumed.messages", "process"), 1);
    assert_eq!(sums("messaging.client.operation.duration", "publish"), 1);
    let processed: Vec<_> = metric_points(last, "messaging.process.duration")
        .into_iter()
        .filter(|(attrs, _, _)| attrs.get("messaging.destination.name") == Some(&destination))
        .collect();
    assert_eq!(processed.len(), 1, "{processed:?}");
    assert_eq!(processed[0].1, 1, "one processing timed");
    assert!(
        processed[0].2.contains(&process.span_id()),
        "the exemplar is the consumer span: {:?}",
        processed[0].2
    );
}

/// The points of metric `name`: attributes, value (a sum's value, a
/// histogram's count) and exemplar span ids.
fn metric_points(
    request: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
    name: &str,
) -> Vec<(HashMap<String, String>, i64, Vec<String>)> {
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};
    let attrs = |kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue]| {
        kvs.iter()
            .map(|kv| {
                let value = kv.value.as_ref().map(value_to_string).unwrap_or_default();
                (kv.key.clone(), value)
            })
            .collect::<HashMap<_, _>>()
    };
    let mut out = Vec::new();
    for metric in request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .filter(|m| m.name == name)
    {
        match &metric.data {
            Some(Data::Sum(sum)) => {
                for p in &sum.data_points {
                    let value = match p.value {
                        Some(Value::AsInt(v)) => v,
                        Some(Value::AsDouble(v)) => v as i64,
                        None => 0,
                    };
                    out.push((attrs(&p.attributes), value, Vec::new()));
                }
            }
            Some(Data::Histogram(h)) => {
                for p in &h.data_points {
                    let exemplars = p.exemplars.iter().map(|e| hex(&e.span_id)).collect();
                    out.push((attrs(&p.attributes), p.count as i64, exemplars));
                }
            }
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn rabbitmq_interop_link_mode_nack_and_header_types() {
    shared();
    let (_connection, channel) = amqp_channel().await;
    let queue = unique("interop");
    declare(&channel, &queue).await;
    let foreign = "0af7651916cd43dd8448eb211c80319c";
    let tp = format!("00-{foreign}-b7ad6b7169203331-01");
    let raw = |value: AMQPValue| {
        let mut headers = FieldTable::default();
        headers.insert(ShortString::from("traceparent"), value);
        BasicProperties::default().with_headers(headers)
    };
    // As other instrumentations write it (a long string), as a byte array,
    // and as an integer (ignored). RabbitMQ has no short-string table type.
    for value in [
        AMQPValue::LongString(LongString::from(tp.clone())),
        AMQPValue::ByteArray(tp.as_bytes().to_vec().into()),
        AMQPValue::LongLongInt(7),
    ] {
        channel
            .basic_publish(
                ShortString::from(""),
                ShortString::from(queue.as_str()),
                BasicPublishOptions::default(),
                b"x",
                raw(value),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    for _ in 0..3 {
        let delivery = get(&channel, &queue).await;
        amqp::Process::new()
            .ack(true)
            .run(&delivery, || async { Ok::<_, std::io::Error>(()) })
            .await
            .unwrap();
    }
    let name = format!("process {queue}");
    let processes: Vec<ReceivedSpan> = all_spans()
        .into_iter()
        .filter(|s| s.span.name == name)
        .collect();
    assert_eq!(processes.len(), 3);
    let continued = processes
        .iter()
        .filter(|s| s.trace_id() == foreign && s.parent_span_id() == "b7ad6b7169203331")
        .count();
    assert_eq!(continued, 2, "long strings and byte arrays are read");
    assert_eq!(
        processes
            .iter()
            .filter(|s| s.parent_span_id().is_empty())
            .count(),
        1,
        "an integer is ignored"
    );

    // Link mode and a failing handler: nacked without requeue.
    channel
        .basic_publish(
            ShortString::from(""),
            ShortString::from(queue.as_str()),
            BasicPublishOptions::default(),
            b"x",
            raw(AMQPValue::LongString(LongString::from(tp.clone()))),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let delivery = get(&channel, &queue).await;
    let result = amqp::Process::new()
        .mode(ParentMode::Link)
        .ack(true)
        .run(&delivery, || async {
            Err::<(), _>(std::io::Error::other("bad job"))
        })
        .await;
    assert!(matches!(
        result,
        Err(observability_messaging::ProcessError::Handler(_))
    ));
    let failed = all_spans()
        .into_iter()
        .filter(|s| s.span.name == name && !s.span.links.is_empty())
        .collect::<Vec<_>>();
    assert_eq!(failed.len(), 1);
    assert_ne!(failed[0].trace_id(), foreign);
    assert_eq!(
        observability_tests::hex(&failed[0].span.links[0].trace_id),
        foreign
    );
    assert_eq!(failed[0].span.status.as_ref().unwrap().code, 2);
    let empty = channel
        .basic_get(
            ShortString::from(queue.as_str()),
            BasicGetOptions::default(),
        )
        .await
        .unwrap();
    assert!(empty.is_none(), "nacked without requeue");
}

#[tokio::test]
async fn receive_requests_ask_for_the_trace_attributes_and_keep_the_users() {
    let client = sqs_client().await;
    let request = sqs::with_trace_attributes(
        client
            .receive_message()
            .queue_url("q")
            .message_attribute_names("tenant"),
    );
    let names = request.get_message_attribute_names().clone().unwrap();
    assert_eq!(names, ["tenant", "traceparent", "tracestate", "baggage"]);
    assert_eq!(
        request
            .get_message_system_attribute_names()
            .clone()
            .unwrap(),
        [aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader]
    );
    // "All" already covers them: nothing is added.
    let request =
        sqs::with_trace_attributes(client.receive_message().message_attribute_names("All"));
    assert_eq!(
        request.get_message_attribute_names().clone().unwrap(),
        ["All"]
    );
}
