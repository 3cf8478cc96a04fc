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
//! The queue is `orders` unless `--queue NAME` or `ORDER_FLOW_QUEUE` names
//! another (the flag wins). Orders whose id ends in 3 meet a slow payment
//! provider; ids ending in 4 are declined by it and fail in the worker.
//!
//! One module per part, each the example of its own pattern: `gateway` (a
//! server that calls out), `api` (a server that publishes), `broker` (the
//! producer and consumer wrappers of each broker), `worker` (a consumer that
//! calls out), `payment` (an untraced third party), `cron` (a root span of
//! its own).

mod api;
mod args;
mod broker;
mod client;
mod cron;
mod gateway;
mod order;
mod payment;
mod telemetry;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observability_core::{Exporter, TelemetryGuard};
use tokio::sync::watch;

use args::Args;
use broker::Broker;
use telemetry::Telemetry;
use worker::Worker;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse()?;
    let needs_broker = matches!(args.part.as_deref(), Some("api" | "worker" | "cron"));
    if needs_broker && args.broker == "memory" {
        return Err("the api, worker and cron parts in separate processes need a real broker: --broker rabbitmq or --broker sqs".into());
    }
    let service = match args.part.as_deref() {
        Some(part) => format!("order-flow-{part}"),
        None => "order-flow".to_owned(),
    };
    let mut builder = observability_core::builder()
        .default_exporter(Exporter::Console)
        .metrics(true);
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        builder = builder.service_name(service);
    }
    let telemetry = builder.try_init()?;
    let metrics = args
        .part
        .is_none()
        .then(|| telemetry.prometheus_service())
        .flatten();
    let result = run(args, &telemetry).await;
    if let Err(error) = &result {
        tracing::error!(%error, "order-flow failed");
    }
    telemetry.shutdown().await?;
    if let Some(metrics) = metrics {
        print_slowest_exemplars(&metrics);
    }
    result
}

async fn run(args: Args, telemetry: &TelemetryGuard) -> Result<(), Error> {
    // A part in a process of its own is traced with what `init()` installed.
    let global = Telemetry::default();
    match args.part.as_deref() {
        None => all_in_one(&args, telemetry).await,
        Some("gateway") => {
            let listen = args.listen.as_deref().unwrap_or("127.0.0.1:8080");
            let router = gateway::router(args.api_url.clone(), &global);
            let (addr, task) = serve(router, listen).await?;
            eprintln!("gateway listening on http://{addr}");
            tokio::select! { _ = task => {}, () = examples::shutdown_signal() => {} }
            Ok(())
        }
        Some("api") => {
            let broker = Broker::connect(&args).await?;
            let listen = args.listen.as_deref().unwrap_or("127.0.0.1:8081");
            let (addr, task) = serve(api::router(&broker, &global), listen).await?;
            eprintln!("api listening on http://{addr}");
            tokio::select! { _ = task => {}, () = examples::shutdown_signal() => {} }
            Ok(())
        }
        Some("worker") => {
            let broker = Broker::connect(&args).await?;
            let worker = start_worker(&global).await?;
            let (stop, stopped) = watch::channel(false);
            eprintln!("worker consuming from {} ({})", broker.queue(), args.broker);
            tokio::spawn(async move {
                examples::shutdown_signal().await;
                let _ = stop.send(true);
            });
            broker.consume(worker, args.max_messages, stopped).await
        }
        Some("cron") => {
            let broker = Broker::connect(&args).await?;
            cron::tick(&broker, 1).await
        }
        Some(other) => Err(format!("unknown part {other}").into()),
    }
}

/// Everything in one process, each part as a service of its own.
async fn all_in_one(args: &Args, telemetry: &TelemetryGuard) -> Result<(), Error> {
    let part = |name: &str| Telemetry::service(telemetry.service(format!("order-flow-{name}")));
    let (gateway, api, worker_part, cron) =
        (part("gateway"), part("api"), part("worker"), part("cron"));
    let broker = Broker::connect(args).await?;
    let worker = start_worker(&worker_part).await?;
    let (stop, stopped) = watch::channel(false);
    let consumer = {
        let (broker, worker) = (broker.traced_by(&worker_part), Arc::clone(&worker));
        tokio::spawn(worker_part.run(async move { broker.consume(worker, None, stopped).await }))
    };
    let (api_addr, _) = serve(api::router(&broker, &api), "127.0.0.1:0").await?;
    let gateway_router = gateway::router(format!("http://{api_addr}"), &gateway);
    let (gateway_addr, _) = serve(gateway_router, "127.0.0.1:0").await?;

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
    cron.run(cron::tick(&broker.traced_by(&cron), 1)).await?;

    tokio::time::timeout(Duration::from_secs(10), worker.wait_for(orders.len() + 1))
        .await
        .map_err(|_| "the worker did not finish within 10 s")?;
    let _ = stop.send(true);
    let _ = consumer.await;
    Ok(())
}

/// The metrics lead to the traces: for each duration histogram, the
/// slowest bucket that holds an exemplar, as a Prometheus scrape in
/// OpenMetrics shows it (its `trace_id` is one of the trees printed above).
fn print_slowest_exemplars(metrics: &observability_core::observability_metrics::PrometheusService) {
    use observability_core::observability_metrics::prometheus::Format;
    let scrape = metrics.render(Format::OpenMetrics);
    let mut slowest: Vec<(&str, &str)> = Vec::new();
    for line in scrape
        .lines()
        .filter(|l| l.contains("_bucket{") && l.contains(" # {"))
    {
        let metric = line.split('{').next().unwrap_or_default();
        // Buckets come in increasing order: the last one per metric wins.
        match slowest.iter_mut().find(|(m, _)| *m == metric) {
            Some(entry) => entry.1 = line,
            None => slowest.push((metric, line)),
        }
    }
    if !slowest.is_empty() {
        eprintln!("slowest exemplar per duration metric (OpenMetrics, as Prometheus scrapes it):");
    }
    for (_, line) in slowest {
        eprintln!("{line}");
    }
}

/// Serves `router` on `listen`; the address it got and the server's task.
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

/// A worker with its payment provider running on loopback.
async fn start_worker(telemetry: &Telemetry) -> Result<Arc<Worker>, Error> {
    let (provider, _) = serve(payment::router(), "127.0.0.1:0").await?;
    Ok(Arc::new(Worker::new(
        format!("http://{provider}"),
        telemetry,
    )))
}
