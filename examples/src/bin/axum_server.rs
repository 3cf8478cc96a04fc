//! An axum service traced with `ServerLayer`, called through `ClientLayer`.
//!
//! ```sh
//! cargo run -p examples --bin axum-server
//! ```
//!
//! It serves on a free port of 127.0.0.1, calls itself three times (a found
//! order, a missing one, a failing one) inside one client-side span, prints
//! the trace tree and exits. `-- --serve 127.0.0.1:3000` keeps it serving.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observability_core::Exporter;
use observability_http::{ClientLayer, ServerLayer};
use tower::{ServiceBuilder, ServiceExt};
use tracing::Instrument;

#[tracing::instrument]
async fn load_order(id: u64) -> Option<String> {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    (id < 100).then(|| format!("order {id}: 2 items"))
}

async fn get_order(Path(id): Path<u64>) -> Result<String, StatusCode> {
    if id == 500 {
        tracing::error!(order.id = id, "the order store is unavailable");
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    load_order(id).await.ok_or(StatusCode::NOT_FOUND)
}

fn app() -> Router {
    Router::new()
        .route("/orders/{id}", get(get_order))
        .layer(ServerLayer::new().for_axum())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = observability_core::builder()
        .service_name("axum-server")
        .default_exporter(Exporter::Console)
        .try_init()?;

    let serve_at = std::env::args().skip_while(|a| a != "--serve").nth(1);
    let listener =
        tokio::net::TcpListener::bind(serve_at.as_deref().unwrap_or("127.0.0.1:0")).await?;
    let addr = listener.local_addr()?;
    let serving = serve_at.is_some();
    let server = tokio::spawn(async move {
        let app = app().into_make_service_with_connect_info::<SocketAddr>();
        if serving {
            // Until ctrl-c or SIGTERM; then telemetry is flushed below.
            axum::serve(listener, app)
                .with_graceful_shutdown(examples::shutdown_signal())
                .await
        } else {
            axum::serve(listener, app).await
        }
    });
    if serving {
        println!("serving on http://{addr}");
        server.await??;
        telemetry.shutdown().await?;
        return Ok(());
    }

    let client = ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(Client::builder(TokioExecutor::new()).build(HttpConnector::new()));
    async {
        for id in [7, 404, 500] {
            let request =
                http::Request::get(format!("http://{addr}/orders/{id}")).body(Body::empty())?;
            let response = client.clone().oneshot(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            tracing::info!(%status, body = %String::from_utf8_lossy(&body), "response");
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .instrument(tracing::info_span!("customer_session"))
    .await?;

    server.abort();
    telemetry.shutdown().await?;
    Ok(())
}
