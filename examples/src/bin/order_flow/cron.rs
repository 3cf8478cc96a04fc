//! The cron job: a root span of its own (no caller), enqueuing a reconcile
//! job that the worker handles in the same trace.

use tracing::Instrument;

use crate::Error;
use crate::broker::Broker;
use crate::order::{Kind, Order};

/// One run of the job.
pub(crate) async fn tick(broker: &Broker, tick: u64) -> Result<(), Error> {
    broker
        .publish(&Order {
            order_id: tick,
            amount_cents: 0,
            kind: Kind::Reconcile,
        })
        .instrument(tracing::info_span!("cron reconcile", tick))
        .await
}
