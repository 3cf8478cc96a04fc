//! The client side: [`ClientLayer`] wraps each outgoing request in a CLIENT
//! span, child of the current context, and injects that span's context into
//! the request headers.

pub(crate) mod future;
mod layer;
mod service;

pub use future::ClientFuture;
pub use layer::{ClientLayer, ClientLayerBuilder};
pub use service::ClientService;

#[cfg(any(feature = "reqwest", feature = "reqwest-0-12"))]
pub(crate) use service::start_client_span;
