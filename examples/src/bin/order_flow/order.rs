//! What travels from the edge to the worker.

use serde::{Deserialize, Serialize};

/// An order, or the cron job's reconcile request.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub(crate) struct Order {
    pub(crate) order_id: u64,
    #[serde(default)]
    pub(crate) amount_cents: u64,
    #[serde(default)]
    pub(crate) kind: Kind,
}

/// What the worker does with a message.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    #[default]
    Order,
    Reconcile,
}
