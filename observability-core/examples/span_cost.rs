//! A loop of `tracing` spans or events under one subscriber, for counting
//! the instructions each costs (`scripts/instructions-spans.sh` runs it
//! under valgrind twice, with `N` and `2N` iterations, and takes the
//! difference, so set-up is left out).
//!
//! ```sh
//! cargo run --release -p observability-core --example span_cost -- CASE N
//! ```
//!
//! `CASE` is `WHAT-SUBSCRIBER-SAMPLING`:
//! - `WHAT`: `span` (one field), `span8` (eight fields), `event` (an INFO
//!   event, no span), `debug` (a DEBUG event, below the log filter);
//! - `SUBSCRIBER`: `registry` (`tracing-subscriber`'s registry alone, the
//!   floor of any `tracing` span), `filtered` (the registry with one layer
//!   that does nothing, under a per-layer filter: what such a filter, as
//!   the log output's is, costs a span before any work), `bridge`
//!   (`tracing-opentelemetry`'s layer
//!   alone), `init` (`init()`'s subscriber, log output off), `logs` (`init()`'s
//!   with JSON lines at INFO), `otlplogs` (also OTLP log records);
//! - `SAMPLING`: `sampled` or `out` (ratio 0: every span sampled out).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../benches/workload/mod.rs"]
mod workload;

use observability_core::opentelemetry::trace::TracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().expect("a case, such as span-init-out");
    let n: u64 = args.next().expect("a count").parse().expect("a number");
    let parts: Vec<&str> = case.split('-').collect();
    let [what, subscriber, sampling] = parts[..] else {
        panic!("CASE is WHAT-SUBSCRIBER-SAMPLING, not {case}");
    };
    let ratio = match sampling {
        "sampled" => 1.0,
        "out" => 0.0,
        other => panic!("sampling is `sampled` or `out`, not {other}"),
    };
    let guard = observability_core::builder()
        .env_lookup(|_| None)
        .exporter(observability_core::Exporter::None)
        .sample_ratio(ratio)
        .log_format(observability_core::LogFormat::Json)
        .log_filter(if subscriber == "init" { "off" } else { "info" })
        // OTLP log records go to an address nothing listens on: no event is
        // recorded in the loops that build them.
        .export_logs(subscriber == "otlplogs")
        .otlp_endpoint("http://127.0.0.1:9")
        .log_writer(std::io::sink)
        .metrics(false)
        .build()
        .expect("telemetry");
    let dispatch = match subscriber {
        "registry" => tracing::Dispatch::new(tracing_subscriber::registry()),
        "filtered" => tracing::Dispatch::new(tracing_subscriber::registry().with(
            tracing_subscriber::layer::Identity::new().with_filter(
                tracing_subscriber::filter::filter_fn(|meta| *meta.level() <= tracing::Level::INFO),
            ),
        )),
        "bridge" => {
            let tracer = guard.tracer_provider().expect("traces").tracer("bench");
            tracing::Dispatch::new(
                tracing_subscriber::registry()
                    .with(observability_core::tracing_opentelemetry::layer().with_tracer(tracer)),
            )
        }
        "init" | "logs" | "otlplogs" => guard.dispatch().clone(),
        other => panic!("unknown subscriber {other}"),
    };
    tracing::dispatcher::with_default(&dispatch, || match what {
        "span" => (0..n).for_each(workload::one_field),
        "span8" => (0..n).for_each(workload::eight_fields),
        "event" => (0..n).for_each(|i| tracing::info!(user_id = i, "message")),
        "debug" => (0..n).for_each(|i| tracing::debug!(user_id = i, "message")),
        other => panic!("unknown WHAT {other}"),
    });
}
