//! The `tracing` spans both the `spans` bench and the `span_cost` example
//! measure: one with one field, one with eight.

/// A span with one field, entered and closed.
pub(crate) fn one_field(id: u64) {
    let _span = tracing::info_span!("work", order.id = id).entered();
}

/// A span with eight fields of the usual types, entered and closed.
pub(crate) fn eight_fields(id: u64) {
    let _span = tracing::info_span!(
        "work",
        order.id = id,
        customer = "c-42",
        items = 3,
        total = 19.5,
        express = true,
        region = "eu-west-1",
        attempt = 1,
        channel = "web"
    )
    .entered();
}
