#![doc = include_str!("../README.md")]

mod fields;
mod format;
mod layer;
mod non_blocking;
mod redact;
mod write;

pub use format::Format;
pub use layer::{LogLayer, LogLayerBuilder};
pub use non_blocking::{NonBlocking, NonBlockingGuard, NonBlockingWriter};
pub use redact::DEFAULT_REDACTED_FIELDS;
