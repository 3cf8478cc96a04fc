#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "amqp")]
#[cfg_attr(docsrs, doc(cfg(feature = "amqp")))]
pub mod amqp;
mod carrier;
#[cfg(any(feature = "amqp", feature = "sqs"))]
mod metrics;
mod span;
#[cfg(feature = "sqs")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqs")))]
pub mod sqs;

pub use carrier::{
    Consumer, JSON_FIELD, MapInjector, Producer, extract_json, extract_map, has_parent,
    inject_json, inject_map, process, send,
};
pub use span::{ParentMode, ProcessError};
