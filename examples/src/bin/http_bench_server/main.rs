//! The axum hello world of the HTTP load benchmark (`scripts/bench-http.sh`),
//! on one tokio worker thread.
//!
//! ```sh
//! cargo run --release -p examples --bin http-bench-server -- bare 127.0.0.1:3000
//! cargo run --release -p examples --bin http-bench-server -- layer 127.0.0.1:3000
//! ```
//!
//! `bare` serves without telemetry; `layer` calls `init()` (so `OTEL_*`
//! variables decide sampling and export) and adds `ServerLayer`; `floor`
//! calls `init()` and adds the least a layer on the OpenTelemetry API does
//! (extract, a span named by the method without attributes, made current
//! for the handler, ended with the response), the reference the benchmark
//! measures the layer against; `context` only extracts and makes a child
//! context current for the handler, with no span; `lean` does the same
//! with the W3C headers read and parsed directly, the least any layer that
//! keeps the handler's context right does; `identity` adds a layer
//! that does nothing (tower's `Identity`), what the router's own wrapping
//! of any middleware costs. On Ctrl-C or SIGTERM it shuts down and prints
//! the export counts.

use axum::Router;
use axum::routing::get;
use observability_http::ServerLayer;

mod floor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "bare".to_owned());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let telemetry = match mode.as_str() {
        "bare" | "identity" => None,
        "layer" | "floor" | "context" | "lean" => Some(
            observability_core::builder()
                .log_filter("warn")
                .try_init()?,
        ),
        other => {
            return Err(format!(
                "mode {other}: expected bare, identity, layer, floor, context or lean"
            )
            .into());
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut app = Router::new().route("/", get(|| async { "Hello, World!" }));
        match mode.as_str() {
            "layer" => app = app.layer(ServerLayer::new().for_axum()),
            "floor" => app = app.layer(floor::Reference::Floor),
            "context" => app = app.layer(floor::Reference::Context),
            "lean" => app = app.layer(floor::Reference::Lean),
            "identity" => app = app.layer(tower::layer::util::Identity::new()),
            _ => {}
        }
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        axum::serve(listener, app)
            .with_graceful_shutdown(examples::shutdown_signal())
            .await
    })?;
    if let Some(telemetry) = telemetry {
        let stats = telemetry.shutdown_blocking()?;
        println!(
            "exported={} dropped={} (queue_full={} export_failed={})",
            stats.exported,
            stats.dropped(),
            stats.dropped_queue_full,
            stats.dropped_export_failed
        );
    }
    Ok(())
}
