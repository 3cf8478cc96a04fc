//! The gateway, the edge: `POST /orders` calls the API. Its SERVER span
//! is each trace's root; its CLIENT span carries the context onwards.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use crate::client::{HttpClient, http_client, post_json};
use crate::order::Order;
use crate::telemetry::Telemetry;

/// The gateway's routes, calling the API at `api_url`.
pub(crate) fn router(api_url: String, telemetry: &Telemetry) -> Router {
    let router = Router::new()
        .route("/orders", post(create))
        .with_state((http_client(telemetry), api_url))
        .layer(telemetry.server_layer());
    telemetry.router(router)
}

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
