#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod attributes;
mod body;
pub mod client;
mod grpc;
mod ids;
mod metrics;
mod propagation;
mod recent;
#[cfg(any(feature = "reqwest", feature = "reqwest-0-12"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "reqwest", feature = "reqwest-0-12"))))]
pub mod reqwest;
pub mod server;
mod tracer;

pub use attributes::SENSITIVE_QUERY_KEYS;
pub use body::ResponseBody;
pub use client::{ClientLayer, ClientService};
pub use metrics::DURATION_BOUNDARIES;
pub use propagation::{
    HeaderExtractor, HeaderInjector, extract_context, inject_context, inject_current_context,
};
pub use server::{RequestHead, ServerLayer, ServerService, SpanStart};
