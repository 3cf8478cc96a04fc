//! The traced HTTP client the gateway and the worker call out with: a
//! CLIENT span per call, its context in the request's headers.

use axum::body::Body;
use axum::http::StatusCode;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use observability_http::ClientService;
use serde::Serialize;
use tower::ServiceExt;

use crate::Error;
use crate::telemetry::Telemetry;

pub(crate) type HttpClient = ClientService<Client<HttpConnector, Body>>;

/// A hyper client behind the part's `ClientLayer`.
pub(crate) fn http_client(telemetry: &Telemetry) -> HttpClient {
    tower::ServiceBuilder::new()
        .layer(telemetry.client_layer())
        .service(Client::builder(TokioExecutor::new()).build(HttpConnector::new()))
}

/// POSTs `body` as JSON; the status and the answer's text.
pub(crate) async fn post_json(
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
