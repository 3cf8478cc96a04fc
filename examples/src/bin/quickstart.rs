//! The smallest useful program: `init`, a few nested spans with attributes
//! and log lines, one failing operation, then exit.
//!
//! ```sh
//! cargo run -p examples --bin quickstart
//! ```
//!
//! With no collector and `OTEL_TRACES_EXPORTER` unset, the trace is printed
//! as a tree on standard error (the console exporter is this example's
//! default). To send it to a collector instead:
//!
//! ```sh
//! OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \
//!     cargo run -p examples --bin quickstart
//! ```

use std::thread::sleep;
use std::time::Duration;

use observability_core::Exporter;

#[derive(Debug)]
struct PaymentDeclined {
    reason: &'static str,
}

impl std::fmt::Display for PaymentDeclined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "payment declined: {}", self.reason)
    }
}

impl std::error::Error for PaymentDeclined {}

fn main() {
    let _telemetry = observability_core::builder()
        .service_name("quickstart")
        .service_version(env!("CARGO_PKG_VERSION"))
        .default_exporter(Exporter::Console)
        .init();

    if let Err(error) = checkout(1042, 3) {
        tracing::warn!(%error, "checkout failed");
    }
    // Dropping `_telemetry` flushes: the tree is printed before exit.
}

#[tracing::instrument(fields(order.id = order_id, items))]
fn checkout(order_id: u64, items: u32) -> Result<(), PaymentDeclined> {
    tracing::Span::current().record("items", items);
    tracing::info!("checkout started");
    reserve_stock(items);
    let total = price(items);
    charge_card(order_id, total)?;
    Ok(())
}

#[tracing::instrument]
fn reserve_stock(items: u32) {
    for sku in 0..items {
        let _line = tracing::info_span!("reserve_line", sku).entered();
        sleep(Duration::from_millis(2));
    }
    tracing::info!(items, "stock reserved");
}

#[tracing::instrument(ret)]
fn price(items: u32) -> u32 {
    sleep(Duration::from_millis(1));
    items * 1999
}

#[tracing::instrument(err)]
fn charge_card(order_id: u64, amount_cents: u32) -> Result<(), PaymentDeclined> {
    sleep(Duration::from_millis(5));
    Err(PaymentDeclined {
        reason: "insufficient funds",
    })
}
