//! The worker: handles each message inside the CONSUMER span, calling the
//! "external" payment provider for orders.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::Error;
use crate::client::{HttpClient, http_client, post_json};
use crate::order::{Kind, Order};
use crate::telemetry::Telemetry;

/// The message handler, counting what it has handled.
pub(crate) struct Worker {
    client: HttpClient,
    provider: String,
    done: AtomicUsize,
    progress: Notify,
}

impl Worker {
    /// A worker that charges through the payment provider at `provider`.
    pub(crate) fn new(provider: String, telemetry: &Telemetry) -> Self {
        Self {
            client: http_client(telemetry),
            provider,
            done: AtomicUsize::new(0),
            progress: Notify::new(),
        }
    }

    /// Handles one message body.
    pub(crate) async fn handle(&self, body: &[u8]) -> Result<(), Error> {
        let order: Order = serde_json::from_slice(body)?;
        let result = match order.kind {
            Kind::Reconcile => {
                let _span = tracing::info_span!("reconcile_ledger").entered();
                tracing::info!("ledger reconciled");
                Ok(())
            }
            Kind::Order => self.charge(&order).await,
        };
        self.done.fetch_add(1, Ordering::SeqCst);
        self.progress.notify_waiters();
        result
    }

    /// Waits until `count` messages have been handled in all.
    pub(crate) async fn wait_for(&self, count: usize) {
        loop {
            let notified = self.progress.notified();
            if self.done.load(Ordering::SeqCst) >= count {
                return;
            }
            notified.await;
        }
    }

    #[tracing::instrument(skip_all, fields(order.id = order.order_id))]
    async fn charge(&self, order: &Order) -> Result<(), Error> {
        let (status, body) =
            post_json(&self.client, &format!("{}/charge", self.provider), order).await?;
        if !status.is_success() {
            tracing::error!(order.id = order.order_id, %status, body, "payment failed");
            return Err(format!("payment provider answered {status}: {body}").into());
        }
        tracing::info!(order.id = order.order_id, "order paid");
        Ok(())
    }
}
