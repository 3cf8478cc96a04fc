//! The "external" payment provider: slow for ids ending in 3, declines ids
//! ending in 4. Not traced itself: it stands for a third party, so the
//! worker's CLIENT span is the last one of the trace.

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use crate::order::Order;

/// The provider's routes.
pub(crate) fn router() -> Router {
    Router::new().route("/charge", post(charge))
}

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
