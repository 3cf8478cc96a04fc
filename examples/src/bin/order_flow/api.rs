//! The API: validates and prices an order (spans of the user's own, with
//! `#[instrument]`) and publishes it to the queue.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use crate::broker::Broker;
use crate::order::Order;
use crate::telemetry::Telemetry;

/// The API's routes, publishing to `broker`.
pub(crate) fn router(broker: &Broker, telemetry: &Telemetry) -> Router {
    let router = Router::new()
        .route("/orders", post(create))
        .with_state(broker.traced_by(telemetry))
        .layer(telemetry.server_layer());
    telemetry.router(router)
}

async fn create(State(broker): State<Broker>, Json(order): Json<Order>) -> (StatusCode, String) {
    if let Err(reason) = validate(&order) {
        tracing::warn!(order.id = order.order_id, reason, "order rejected");
        return (StatusCode::UNPROCESSABLE_ENTITY, reason.to_owned());
    }
    let priced = price(order);
    match broker.publish(&priced).await {
        Ok(()) => {
            tracing::info!(
                order.id = priced.order_id,
                amount_cents = priced.amount_cents,
                "order queued"
            );
            (
                StatusCode::ACCEPTED,
                format!("order {} accepted", priced.order_id),
            )
        }
        Err(error) => {
            tracing::error!(%error, "could not queue the order");
            (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
        }
    }
}

#[tracing::instrument(skip_all, fields(order.id = order.order_id))]
fn validate(order: &Order) -> Result<(), &'static str> {
    if order.order_id == 0 {
        return Err("order_id must not be 0");
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(order.id = order.order_id, amount_cents))]
fn price(mut order: Order) -> Order {
    if order.amount_cents == 0 {
        order.amount_cents = 1999 + 100 * (order.order_id % 7);
    }
    tracing::Span::current().record("amount_cents", order.amount_cents);
    order
}
