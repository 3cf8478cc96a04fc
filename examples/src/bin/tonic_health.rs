//! gRPC through the same layers: a tonic server (the standard health
//! service) with `ServerLayer`, and a tonic channel with `ClientLayer`.
//!
//! ```sh
//! cargo run -p examples --bin tonic-health
//! ```
//!
//! It checks a serving service (OK) and an unknown one (`NOT_FOUND`: an error
//! on the client span, not on the server span, as the gRPC conventions say),
//! prints the trace tree and exits.

use observability_core::Exporter;
use observability_http::{ClientLayer, ServerLayer};
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = observability_core::builder()
        .service_name("tonic-health")
        .default_exporter(Exporter::Console)
        .try_init()?;

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("shop.v1.Orders", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        Server::builder()
            .layer(ServerLayer::new())
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = HealthClient::new(
        tower::ServiceBuilder::new()
            .layer(ClientLayer::new())
            .service(channel),
    );
    async {
        for service in ["shop.v1.Orders", "shop.v1.Unknown"] {
            let result = client
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await;
            match result {
                Ok(response) => {
                    tracing::info!(service, status = ?response.into_inner().status(), "health")
                }
                Err(status) => {
                    tracing::warn!(service, code = ?status.code(), "health check failed")
                }
            }
        }
    }
    .instrument(tracing::info_span!("health_probe"))
    .await;

    telemetry.shutdown().await?;
    Ok(())
}
