//! A plain hyper server (no framework) traced with `ServerLayer`.
//!
//! ```sh
//! cargo run -p examples --bin hyper-server
//! ```
//!
//! It serves one connection per request on a free port of 127.0.0.1, calls
//! itself through `ClientLayer`, prints the trace tree and exits.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use observability_core::Exporter;
use observability_http::{ClientLayer, ServerLayer};
use tower::{ServiceBuilder, ServiceExt};
use tracing::Instrument;

async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    tracing::info!(path = request.uri().path(), "handling");
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello from hyper",
    ))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = observability_core::builder()
        .service_name("hyper-server")
        .default_exporter(Exporter::Console)
        .try_init()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let service = ServiceBuilder::new()
        .layer(ServerLayer::new())
        .service(tower::service_fn(hello));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let client = ServiceBuilder::new().layer(ClientLayer::new()).service(
        Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(HttpConnector::new()),
    );
    let body = async {
        let request = Request::get(format!("http://{addr}/hello")).body(Full::new(Bytes::new()))?;
        let response = client.oneshot(request).await?;
        Ok::<_, Box<dyn std::error::Error>>(response.into_body().collect().await?.to_bytes())
    }
    .instrument(tracing::info_span!("caller"))
    .await?;
    tracing::info!(body = %String::from_utf8_lossy(&body), "done");

    telemetry.shutdown().await?;
    Ok(())
}
