//! The service side of the W3C Trace Context test harness
//! (`test/test.py` in the w3c/trace-context repository).
//!
//! ```sh
//! cargo run -p examples --bin w3c-test-service -- 127.0.0.1:7777
//! # in a checkout of the harness:
//! STRICT_LEVEL=2 python3 test/test.py http://127.0.0.1:7777/test
//! ```
//!
//! It accepts `POST /test` with a JSON array of `{"url": ..., "arguments": ...}`
//! and, before answering 200, POSTs each element's `arguments` as JSON to its
//! `url` through `ClientLayer`, so the incoming context propagates. Spans are
//! not exported unless `OTEL_TRACES_EXPORTER` says so.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observability_core::Exporter;
use observability_http::{ClientLayer, ClientService, ServerLayer};
use serde::Deserialize;
use tower::ServiceExt;

type HttpClient = ClientService<Client<HttpConnector, Body>>;

#[derive(Deserialize)]
struct Case {
    url: String,
    arguments: serde_json::Value,
}

async fn test(State(client): State<HttpClient>, Json(cases): Json<Vec<Case>>) -> StatusCode {
    for case in cases {
        let request = http::Request::post(&case.url)
            .header("content-type", "application/json")
            .body(Body::from(case.arguments.to_string()));
        let Ok(request) = request else {
            tracing::warn!(url = case.url, "not a valid URL");
            continue;
        };
        if let Err(error) = client.clone().oneshot(request).await {
            tracing::warn!(url = case.url, %error, "callback failed");
        }
    }
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = observability_core::builder()
        .service_name("w3c-test-service")
        .default_exporter(Exporter::None)
        .try_init()?;
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7777".to_owned())
        .parse()?;
    let client = tower::ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(Client::builder(TokioExecutor::new()).build(HttpConnector::new()));
    let app = Router::new()
        .route("/test", post(test))
        .with_state(client)
        .layer(ServerLayer::new().for_axum());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "w3c-test-service listening on http://{}/test",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(examples::shutdown_signal())
        .await?;
    // Flush what was recorded before exiting, on SIGTERM as on ctrl-c.
    telemetry.shutdown().await?;
    Ok(())
}
