//! The flagship: one trace from a web request through an API, a queue and a
//! worker, and a cron job that starts traces of its own.
//!
//! ```sh
//! cargo run -p examples --bin order-flow
//! ```
//!
//! With no arguments every part runs in this process on loopback, with an
//! in-process queue (the string-map carrier) and the console exporter: it
//! posts a few orders (one slow, one failing), runs the cron job once,
//! prints each trace as a tree on stderr and the JSON logs on stdout, and
//! exits.
//!
//! The parts also run as separate processes, against a real broker, exporting
//! over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set:
//!
//! ```sh
//! order-flow worker  --broker rabbitmq --amqp-addr amqp://127.0.0.1:5672/%2f
//! order-flow api     --broker rabbitmq --listen 127.0.0.1:8081
//! order-flow gateway --listen 127.0.0.1:8080 --api-url http://127.0.0.1:8081
//! order-flow cron    --broker sqs --sqs-endpoint http://127.0.0.1:4566
//! curl -XPOST 127.0.0.1:8080/orders -d '{"order_id":7,"amount_cents":1999}'
//! ```
//!
//! The queue is `orders` unless `--queue` or `ORDER_FLOW_QUEUE` names another.
//! Orders whose id ends in 3 meet a slow payment provider; ids ending in 4
//! are declined by it and fail in the worker.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observability_core::Exporter;
use observability_http::{ClientLayer, ClientService, ServerLayer};
use observability_messaging::{ParentMode, amqp, sqs};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify, mpsc, watch};
use tower::ServiceExt;

type Error = Box<dyn std::error::Error + Send + Sync>;
type HttpClient = ClientService<Client<HttpConnector, Body>>;

/// The queue's name unless `--queue` or `ORDER_FLOW_queue_name()` says otherwise.
const DEFAULT_QUEUE: &str = "orders";

fn queue_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("ORDER_FLOW_queue_name()").unwrap_or_else(|_| DEFAULT_QUEUE.to_owned())
    })
}

/// A message on the in-process queue: the trace headers and the body.
type MemoryMessage = (HashMap<String, String>, Vec<u8>);

#[derive(Clone, Debug, Deserialize, Serialize)]
struct Order {
    order_id: u64,
    #[serde(default)]
    amount_cents: u64,
    #[serde(default)]
    kind: Kind,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    #[default]
    Order,
    Reconcile,
}

/// Command-line settings (flags win over environment variables).
#[derive(Clone, Debug)]
struct Args {
    part: Option<String>,
    broker: String,
    listen: Option<String>,
    api_url: String,
    amqp_addr: Option<String>,
    sqs_endpoint: Option<String>,
    max_messages: Option<usize>,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        part: None,
        broker: std::env::var("ORDER_FLOW_BROKER").unwrap_or_else(|_| "memory".into()),
        listen: None,
        api_url: std::env::var("API_URL").unwrap_or_else(|_| "http://127.0.0.1:8081".into()),
        amqp_addr: std::env::var("AMQP_ADDR").ok(),
        sqs_endpoint: std::env::var("SQS_ENDPOINT").ok(),
        max_messages: None,
    };
    let mut queue_override = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--broker" => args.broker = value()?,
            "--listen" => args.listen = Some(value()?),
            "--api-url" => args.api_url = value()?,
            "--amqp-addr" => args.amqp_addr = Some(value()?),
            "--sqs-endpoint" => args.sqs_endpoint = Some(value()?),
            "--max-messages" => args.max_messages = Some(value()?.parse()?),
            "--queue" => {
                queue_override = Some(value()?);
            }
            "gateway" | "api" | "worker" | "cron" if args.part.is_none() => args.part = Some(arg),
            other => {
                return Err(format!(
                    "unknown argument {other}; see the docs at the top of order_flow.rs"
                )
                .into());
            }
        }
    }
    if let Some(queue) = queue_override {
        QUEUE_FLAG.set(queue).map_err(|_| "--queue given twice")?;
    }
    Ok(args)
}

/// `--queue`, when given (wins over `ORDER_FLOW_QUEUE`).
static QUEUE_FLAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

// ---- the queue, whichever broker carries it ----

#[derive(Clone)]
enum Broker {
    Memory {
        tx: mpsc::Sender<MemoryMessage>,
        rx: Arc<Mutex<mpsc::Receiver<MemoryMessage>>>,
    },
    Rabbitmq {
        /// Kept with its channel: dropping the connection would close both.
        _connection: Arc<lapin::Connection>,
        channel: lapin::Channel,
    },
    Sqs(aws_sdk_sqs::Client, String),
}

impl Broker {
    async fn connect(args: &Args) -> Result<Self, Error> {
        match args.broker.as_str() {
            "memory" => {
                let (tx, rx) = mpsc::channel(64);
                Ok(Self::Memory {
                    tx,
                    rx: Arc::new(Mutex::new(rx)),
                })
            }
            "rabbitmq" => {
                let addr = args
                    .amqp_addr
                    .clone()
                    .ok_or("--broker rabbitmq needs --amqp-addr or AMQP_ADDR")?;
                let connection =
                    lapin::Connection::connect(&addr, lapin::ConnectionProperties::default())
                        .await?;
                let channel = connection.create_channel().await?;
                channel
                    .queue_declare(
                        queue_name().into(),
                        lapin::options::QueueDeclareOptions::default(),
                        lapin::types::FieldTable::default(),
                    )
                    .await?;
                Ok(Self::Rabbitmq {
                    _connection: Arc::new(connection),
                    channel,
                })
            }
            "sqs" => {
                let endpoint = args
                    .sqs_endpoint
                    .clone()
                    .ok_or("--broker sqs needs --sqs-endpoint or SQS_ENDPOINT")?;
                let config = aws_sdk_sqs::Config::builder()
                    .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                    .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                        "test",
                        "test",
                        None,
                        None,
                        "order-flow",
                    ))
                    .endpoint_url(endpoint)
                    .build();
                let client = aws_sdk_sqs::Client::from_conf(config);
                let url = client
                    .create_queue()
                    .queue_name(queue_name())
                    .send()
                    .await?;
                let url = url.queue_url().unwrap_or_default().to_owned();
                Ok(Self::Sqs(client, url))
            }
            other => Err(format!("--broker {other}: expected memory, rabbitmq or sqs").into()),
        }
    }

    /// Publishes inside a PRODUCER span, the context in the message.
    async fn publish(&self, order: &Order) -> Result<(), Error> {
        let body = serde_json::to_vec(order)?;
        match self {
            Self::Memory { tx, .. } => {
                observability_messaging::send("memory", queue_name(), HashMap::new(), |headers| async move {
                    tx.send((headers, body)).await.map_err(|e| e.to_string())
                })
                .await?;
            }
            Self::Rabbitmq { channel, .. } => {
                let properties = lapin::BasicProperties::default()
                    .with_correlation_id(order.order_id.to_string().into());
                amqp::publish(
                    channel,
                    "",
                    queue_name(),
                    Default::default(),
                    &body,
                    properties,
                )
                .await?
                .await?;
            }
            Self::Sqs(client, url) => {
                let body = String::from_utf8(body)?;
                sqs::send(client.send_message().queue_url(url).message_body(body)).await?;
            }
        }
        Ok(())
    }

    /// Consumes until `stop` turns true (or `max` messages), each in a
    /// CONSUMER span.
    async fn consume(
        &self,
        worker: Arc<Worker>,
        max: Option<usize>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let mut handled = 0;
        loop {
            if max.is_some_and(|m| handled >= m) {
                return Ok(());
            }
            let next = async {
                match self {
                    Self::Memory { rx, .. } => {
                        let Some((headers, body)) = rx.lock().await.recv().await else {
                            return Ok::<usize, Error>(usize::MAX);
                        };
                        let _ = observability_messaging::process(
                            "memory",
                            queue_name(),
                            &headers,
                            None,
                            ParentMode::Parent,
                            || worker.handle(&body),
                        )
                        .await;
                        Ok(1)
                    }
                    Self::Rabbitmq { channel, .. } => {
                        let Some(message) = channel
                            .basic_get(queue_name().into(), Default::default())
                            .await?
                        else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            return Ok(0);
                        };
                        let delivery = message.delivery;
                        let _ = amqp::Process::new()
                            .ack(true)
                            .run(&delivery, || worker.handle(&delivery.data))
                            .await;
                        Ok(1)
                    }
                    Self::Sqs(client, url) => {
                        let received = sqs::receive(sqs::with_trace_attributes(
                            client
                                .receive_message()
                                .queue_url(url)
                                .wait_time_seconds(1)
                                .max_number_of_messages(10),
                        ))
                        .await?;
                        for message in received.messages() {
                            let body = message.body().unwrap_or_default().as_bytes().to_vec();
                            let _ = sqs::Process::new(url.as_str())
                                .delete_on_success(client)
                                .run(message, || worker.handle(&body))
                                .await;
                        }
                        Ok(received.messages().len())
                    }
                }
            };
            tokio::select! {
                n = next => match n? {
                    usize::MAX => return Ok(()),
                    n => handled += n,
                },
                _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
            }
        }
    }
}

// ---- the parts ----

fn http_client() -> HttpClient {
    tower::ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(Client::builder(TokioExecutor::new()).build(HttpConnector::new()))
}

async fn post_json(
    client: &HttpClient,
    url: &str,
    body: &impl Serialize,
) -> Result<(StatusCode, String), Error> {
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body)?))?;
    let response = client.clone().oneshot(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The gateway: `POST /orders` calls the API.
fn gateway(api_url: String) -> Router {
    async fn create(
        State((client, api)): State<(HttpClient, String)>,
        Json(order): Json<Order>,
    ) -> (StatusCode, String) {
        tracing::info!(order.id = order.order_id, "order received at the edge");
        match post_json(&client, &format!("{api}/orders"), &order).await {
            Ok((status, body)) => (status, body),
            Err(error) => {
                tracing::error!(%error, "the API is unreachable");
                (StatusCode::BAD_GATEWAY, error.to_string())
            }
        }
    }
    Router::new()
        .route("/orders", post(create))
        .with_state((http_client(), api_url))
        .layer(ServerLayer::new())
}

/// The API: validates, prices (a custom span), publishes.
fn api(broker: Broker) -> Router {
    async fn create(
        State(broker): State<Broker>,
        Json(order): Json<Order>,
    ) -> (StatusCode, String) {
        if let Err(reason) = validate(&order) {
            tracing::warn!(order.id = order.order_id, reason, "order rejected");
            return (StatusCode::UNPROCESSABLE_ENTITY, reason.to_owned());
        }
        let priced = price(order);
        match broker.publish(&priced).await {
            Ok(()) => {
                tracing::info!(
                    order.id = priced.order_id,
                    amount_cents = priced.amount_cents,
                    "order queued"
                );
                (
                    StatusCode::ACCEPTED,
                    format!("order {} accepted", priced.order_id),
                )
            }
            Err(error) => {
                tracing::error!(%error, "could not queue the order");
                (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }
        }
    }
    Router::new()
        .route("/orders", post(create))
        .with_state(broker)
        .layer(ServerLayer::new())
}

#[tracing::instrument(skip_all, fields(order.id = order.order_id))]
fn validate(order: &Order) -> Result<(), &'static str> {
    if order.order_id == 0 {
        return Err("order_id must not be 0");
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(order.id = order.order_id, amount_cents))]
fn price(mut order: Order) -> Order {
    if order.amount_cents == 0 {
        order.amount_cents = 1999 + 100 * (order.order_id % 7);
    }
    tracing::Span::current().record("amount_cents", order.amount_cents);
    order
}

/// The worker: handles a message, calling the "external" payment provider.
struct Worker {
    client: HttpClient,
    provider: String,
    done: AtomicUsize,
    progress: Notify,
}

impl Worker {
    async fn handle(&self, body: &[u8]) -> Result<(), Error> {
        let order: Order = serde_json::from_slice(body)?;
        let result = match order.kind {
            Kind::Reconcile => {
                let _span = tracing::info_span!("reconcile_ledger").entered();
                tracing::info!("ledger reconciled");
                Ok(())
            }
            Kind::Order => self.charge(&order).await,
        };
        self.done.fetch_add(1, Ordering::SeqCst);
        self.progress.notify_waiters();
        result
    }

    #[tracing::instrument(skip_all, fields(order.id = order.order_id))]
    async fn charge(&self, order: &Order) -> Result<(), Error> {
        let (status, body) =
            post_json(&self.client, &format!("{}/charge", self.provider), order).await?;
        if !status.is_success() {
            tracing::error!(order.id = order.order_id, %status, body, "payment failed");
            return Err(format!("payment provider answered {status}: {body}").into());
        }
        tracing::info!(order.id = order.order_id, "order paid");
        Ok(())
    }
}

/// The "external" payment provider: slow for ids ending in 3, declines ids
/// ending in 4. Not traced itself: it stands for a third party.
fn payment_provider() -> Router {
    async fn charge(Json(order): Json<Order>) -> (StatusCode, &'static str) {
        match order.order_id % 10 {
            3 => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                (StatusCode::OK, "charged (slowly)")
            }
            4 => (StatusCode::BAD_GATEWAY, "card declined"),
            _ => (StatusCode::OK, "charged"),
        }
    }
    Router::new().route("/charge", post(charge))
}

/// The cron job: its own root trace, enqueuing a reconcile job.
async fn cron_tick(broker: &Broker, tick: u64) -> Result<(), Error> {
    use tracing::Instrument;
    broker
        .publish(&Order {
            order_id: tick,
            amount_cents: 0,
            kind: Kind::Reconcile,
        })
        .instrument(tracing::info_span!("cron reconcile", tick))
        .await
}

async fn serve(
    router: Router,
    listen: &str,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok((addr, task))
}

async fn start_worker() -> Result<Arc<Worker>, Error> {
    let (provider, _) = serve(payment_provider(), "127.0.0.1:0").await?;
    Ok(Arc::new(Worker {
        client: http_client(),
        provider: format!("http://{provider}"),
        done: AtomicUsize::new(0),
        progress: Notify::new(),
    }))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// Everything in one process.
async fn all_in_one(args: &Args) -> Result<(), Error> {
    let broker = Broker::connect(args).await?;
    let worker = start_worker().await?;
    let (stop, stopped) = watch::channel(false);
    let consumer = {
        let (broker, worker) = (broker.clone(), Arc::clone(&worker));
        tokio::spawn(async move { broker.consume(worker, None, stopped).await })
    };
    let (api_addr, _) = serve(api(broker.clone()), "127.0.0.1:0").await?;
    let (gateway_addr, _) = serve(gateway(format!("http://{api_addr}")), "127.0.0.1:0").await?;

    // A plain web client (not traced): the gateway's span is each trace's root.
    let client = Client::builder(TokioExecutor::new()).build::<_, Body>(HttpConnector::new());
    let orders = [101, 103, 104, 105];
    for id in orders {
        let request = http::Request::post(format!("http://{gateway_addr}/orders"))
            .header("content-type", "application/json")
            .body(Body::from(format!(r#"{{"order_id":{id}}}"#)))?;
        let response = client.request(request).await?;
        eprintln!("POST /orders {id} -> {}", response.status());
    }
    cron_tick(&broker, 1).await?;

    let expected = orders.len() + 1;
    tokio::time::timeout(Duration::from_secs(10), async {
        while worker.done.load(Ordering::SeqCst) < expected {
            let notified = worker.progress.notified();
            if worker.done.load(Ordering::SeqCst) >= expected {
                break;
            }
            notified.await;
        }
    })
    .await
    .map_err(|_| "the worker did not finish within 10 s")?;
    let _ = stop.send(true);
    let _ = consumer.await;
    Ok(())
}

async fn run(args: Args) -> Result<(), Error> {
    match args.part.as_deref() {
        None => all_in_one(&args).await,
        Some("gateway") => {
            let listen = args
                .listen
                .clone()
                .unwrap_or_else(|| "127.0.0.1:8080".into());
            let (addr, task) = serve(gateway(args.api_url.clone()), &listen).await?;
            eprintln!("gateway listening on http://{addr}");
            tokio::select! { _ = task => {}, () = shutdown_signal() => {} }
            Ok(())
        }
        Some("api") => {
            let broker = Broker::connect(&args).await?;
            let listen = args
                .listen
                .clone()
                .unwrap_or_else(|| "127.0.0.1:8081".into());
            let (addr, task) = serve(api(broker), &listen).await?;
            eprintln!("api listening on http://{addr}");
            tokio::select! { _ = task => {}, () = shutdown_signal() => {} }
            Ok(())
        }
        Some("worker") => {
            let broker = Broker::connect(&args).await?;
            let worker = start_worker().await?;
            let (stop, stopped) = watch::channel(false);
            eprintln!("worker consuming from {} ({})", queue_name(), args.broker);
            tokio::spawn(async move {
                shutdown_signal().await;
                let _ = stop.send(true);
            });
            broker.consume(worker, args.max_messages, stopped).await
        }
        Some("cron") => {
            let broker = Broker::connect(&args).await?;
            cron_tick(&broker, 1).await
        }
        Some(other) => Err(format!("unknown part {other}").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = parse_args()?;
    let needs_broker = matches!(args.part.as_deref(), Some("api" | "worker" | "cron"));
    if needs_broker && args.broker == "memory" {
        return Err("the api, worker and cron parts in separate processes need a real broker: --broker rabbitmq or --broker sqs".into());
    }
    let service = match args.part.as_deref() {
        Some(part) => format!("order-flow-{part}"),
        None => "order-flow".to_owned(),
    };
    let mut builder = observability_core::builder().default_exporter(Exporter::Console);
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        builder = builder.service_name(service);
    }
    let telemetry = builder.try_init()?;
    let result = run(args).await;
    if let Err(error) = &result {
        tracing::error!(%error, "order-flow failed");
    }
    telemetry.shutdown().await?;
    result
}
