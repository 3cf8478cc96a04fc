//! The flagship as separate processes (gateway, api, worker, cron) against
//! real RabbitMQ and SQS-compatible servers, exporting over OTLP to the test
//! receiver: one trace per order across all of them, with the exact parent
//! chain, each process's `service.name`, the failing order's error status,
//! and JSON log lines of each process carrying the trace id.
//!
//! Needs the `order-flow` binary (built by `cargo build --workspace`, as
//! `scripts/test.sh` does) and the servers `scripts/test.sh` starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use observability_tests::{OtlpReceiver, ReceivedSpan};
use serde_json::Value;

fn binary() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/order-flow
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("order-flow");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p examples --bin order-flow` (scripts/test.sh does)",
        path.display()
    );
    path
}

fn require(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through scripts/test.sh, which starts RabbitMQ and the SQS-compatible server")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Part {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Part {
    fn start(
        name: &'static str,
        args: &[&str],
        env: &[(&str, &str)],
        receiver: &OtlpReceiver,
        dir: &std::path::Path,
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(binary())
            .arg(name)
            .args(args)
            .env_remove("ORDER_FLOW_QUEUE")
            .envs(env.iter().copied())
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint())
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("OTEL_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env_remove("OTEL_SERVICE_NAME")
            .env_remove("OTEL_TRACES_EXPORTER")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self { name, child, log }
    }

    /// SIGTERM, so the process shuts down and flushes.
    fn stop(mut self) -> Vec<Value> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        json_lines(&self.log)
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn json_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// POSTs an order to the gateway with a plain (untraced) client.
fn post_order(port: u16, id: u64) -> u16 {
    use std::io::{Read, Write};
    let body = format!(r#"{{"order_id":{id}}}"#);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split(' ').nth(1).unwrap().parse().unwrap()
}

fn wait_for(
    receiver: &OtlpReceiver,
    what: &str,
    done: impl Fn(&[ReceivedSpan]) -> bool,
) -> Vec<ReceivedSpan> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spans = receiver.spans();
        if done(&spans) {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; have {:?}",
            spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn only<'a>(spans: &'a [&'a ReceivedSpan], name: &str, service: &str) -> &'a ReceivedSpan {
    let found: Vec<&&ReceivedSpan> = spans
        .iter()
        .filter(|s| {
            s.span.name == name && s.resource_attr("service.name").as_deref() == Some(service)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} of {service} in {:?}",
        spans
            .iter()
            .map(|s| (&s.span.name, s.resource_attr("service.name")))
            .collect::<Vec<_>>()
    );
    found[0]
}

fn order_trace(spans: &[ReceivedSpan], order: u64) -> Vec<&ReceivedSpan> {
    let price = spans
        .iter()
        .find(|s| s.span.name == "price" && s.attr("order.id") == Some(order.to_string()))
        .unwrap_or_else(|| panic!("no price span for order {order}"));
    let trace = price.trace_id();
    spans.iter().filter(|s| s.trace_id() == trace).collect()
}

/// How the parts are told the queue's name.
enum Queue {
    /// `--queue NAME` on each part that uses the queue.
    Flag(String),
    /// `ORDER_FLOW_QUEUE=NAME` in each part's environment.
    Env(String),
}

/// A queue name no other run uses.
fn unique_queue(label: &str) -> String {
    format!("order-flow-{label}-{}", std::process::id())
}

fn run_flow(broker: &str, broker_args: &[&str], queue: Queue) {
    let receiver = OtlpReceiver::start();
    let queue_name = match &queue {
        Queue::Flag(name) | Queue::Env(name) => name.clone(),
    };
    // One folder of logs per run: runs on the same broker go in parallel.
    let dir = std::env::temp_dir().join(&queue_name);
    std::fs::create_dir_all(&dir).unwrap();
    let (gateway_port, api_port) = (free_port(), free_port());
    let api_listen = format!("127.0.0.1:{api_port}");
    let gateway_listen = format!("127.0.0.1:{gateway_port}");
    let api_url = format!("http://{api_listen}");
    let mut with_broker = vec!["--broker", broker];
    with_broker.extend_from_slice(broker_args);
    let env = match &queue {
        Queue::Flag(name) => {
            with_broker.extend(["--queue", name.as_str()]);
            vec![]
        }
        Queue::Env(name) => vec![("ORDER_FLOW_QUEUE", name.as_str())],
    };
    let queue_name = queue_name.as_str();

    let worker = Part::start("worker", &with_broker, &env, &receiver, &dir);
    let mut api_args = with_broker.clone();
    api_args.extend(["--listen", api_listen.as_str()]);
    let api = Part::start("api", &api_args, &env, &receiver, &dir);
    let gateway = Part::start(
        "gateway",
        &["--listen", &gateway_listen, "--api-url", &api_url],
        &[],
        &receiver,
        &dir,
    );
    wait_port(api_port);
    wait_port(gateway_port);

    assert_eq!(post_order(gateway_port, 201), 202);
    assert_eq!(
        post_order(gateway_port, 204),
        202,
        "the failure happens later, in the worker"
    );
    let cron = Part::start("cron", &with_broker, &env, &receiver, &dir);

    // `{messaging.operation.name} {destination}`: RabbitMQ's default
    // exchange is left out of the destination, which is the queue.
    let (send, process) = match broker {
        "rabbitmq" => (
            format!("publish {queue_name}"),
            format!("process {queue_name}"),
        ),
        _ => (
            format!("send {queue_name}"),
            format!("process {queue_name}"),
        ),
    };
    let (send, process) = (send.as_str(), process.as_str());
    let spans = wait_for(&receiver, "three processed messages", |spans| {
        spans.iter().filter(|s| s.span.name == process).count() >= 3
            && spans.iter().any(|s| s.span.name == "reconcile_ledger")
            && spans.iter().filter(|s| s.span.name == "charge").count() >= 2
    });
    let _ = cron.stop();
    let gateway_logs = gateway.stop();
    let api_logs = api.stop();
    let worker_logs = worker.stop();
    // Spans that ended just before shutdown were flushed by it.
    drop(spans);
    let spans = receiver.spans();

    for (order, fails) in [(201, false), (204, true)] {
        let trace = order_trace(&spans, order);
        let trace_id = trace[0].trace_id();
        let gw_server = only(&trace, "POST /orders", "order-flow-gateway");
        let gw_client = only(&trace, "POST", "order-flow-gateway");
        let api_server = only(&trace, "POST /orders", "order-flow-api");
        let price = only(&trace, "price", "order-flow-api");
        let producer = only(&trace, send, "order-flow-api");
        let consumer = only(&trace, process, "order-flow-worker");
        // The message went through the queue the parts were told of.
        for span in [producer, consumer] {
            assert_eq!(
                span.attr("messaging.destination.name").as_deref(),
                Some(queue_name),
                "{broker}: {}",
                span.span.name
            );
        }
        assert_eq!(
            (producer.span.kind, consumer.span.kind),
            (4, 5),
            "PRODUCER and CONSUMER"
        );
        let charge = only(&trace, "charge", "order-flow-worker");
        let external = only(&trace, "POST", "order-flow-worker");
        assert_eq!(
            gw_server.parent_span_id(),
            "",
            "the gateway's server span is the root"
        );
        assert_eq!(gw_client.parent_span_id(), gw_server.span_id());
        assert_eq!(api_server.parent_span_id(), gw_client.span_id());
        assert_eq!(price.parent_span_id(), api_server.span_id());
        assert_eq!(producer.parent_span_id(), api_server.span_id());
        assert_eq!(consumer.parent_span_id(), producer.span_id());
        assert_eq!(charge.parent_span_id(), consumer.span_id());
        assert_eq!(external.parent_span_id(), charge.span_id());
        assert_eq!(api_server.attr("http.route").as_deref(), Some("/orders"));
        let status = consumer.span.status.clone().unwrap_or_default();
        if fails {
            assert_eq!(
                status.code, 2,
                "the failing order's consumer span is an error"
            );
            assert!(
                status.message.contains("card declined"),
                "{}",
                status.message
            );
            assert_eq!(
                external.attr("http.response.status_code").as_deref(),
                Some("502")
            );
        } else {
            assert_ne!(status.code, 2);
        }
        // Each process's JSON logs carry the trace id.
        for (part, logs, message) in [
            ("gateway", &gateway_logs, "order received at the edge"),
            ("api", &api_logs, "order queued"),
            (
                "worker",
                &worker_logs,
                if fails {
                    "payment failed"
                } else {
                    "order paid"
                },
            ),
        ] {
            let line = logs
                .iter()
                .find(|l| l["message"] == message && l["trace_id"] == trace_id.as_str())
                .unwrap_or_else(|| {
                    panic!("{broker}/{part}: no {message:?} line with trace {trace_id}")
                });
            assert_eq!(line["service.name"], format!("order-flow-{part}"));
            assert_eq!(line["order.id"], order);
        }
    }

    // The cron job's own root trace, through the queue to the worker.
    let root = spans
        .iter()
        .find(|s| s.span.name == "cron reconcile")
        .expect("cron root span");
    let trace: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id() == root.trace_id())
        .collect();
    assert_eq!(root.parent_span_id(), "");
    assert_eq!(
        root.resource_attr("service.name").as_deref(),
        Some("order-flow-cron")
    );
    let producer = only(&trace, send, "order-flow-cron");
    let consumer = only(&trace, process, "order-flow-worker");
    let reconcile = only(&trace, "reconcile_ledger", "order-flow-worker");
    assert_eq!(producer.parent_span_id(), root.span_id());
    assert_eq!(consumer.parent_span_id(), producer.span_id());
    assert_eq!(reconcile.parent_span_id(), consumer.span_id());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn order_flow_through_rabbitmq() {
    let addr = require("AMQP_ADDR");
    let queue = Queue::Flag(unique_queue("rabbitmq"));
    run_flow("rabbitmq", &["--amqp-addr", &addr], queue);
}

#[test]
fn order_flow_through_sqs() {
    let endpoint = require("SQS_ENDPOINT");
    let queue = Queue::Flag(unique_queue("sqs"));
    run_flow("sqs", &["--sqs-endpoint", &endpoint], queue);
}

#[test]
fn order_flow_takes_the_queue_from_the_environment() {
    let addr = require("AMQP_ADDR");
    let queue = Queue::Env(unique_queue("env"));
    run_flow("rabbitmq", &["--amqp-addr", &addr], queue);
}
