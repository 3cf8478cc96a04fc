//! The server side: [`ServerLayer`] extracts the caller's context and wraps
//! each request in a SERVER span.
//!
//! The span is created through the OpenTelemetry API (no `tracing` span per
//! request) and made the current OpenTelemetry context while the handler
//! runs, so the handler's `tracing` events, `#[instrument]` spans (bridged by
//! `tracing-opentelemetry`) and log lines carry its ids.

mod body_kind;
mod future;
mod headers;
mod hook;
mod layer;
mod service;

#[cfg(feature = "axum")]
pub use body_kind::AxumBody;
pub use body_kind::{ServerBody, WrapBody};
pub use future::ServerFuture;
pub use hook::{RequestHead, SpanStart};
pub use layer::{DEFAULT_SKIP_PATHS, ServerLayer, ServerLayerBuilder};
pub use service::ServerService;
