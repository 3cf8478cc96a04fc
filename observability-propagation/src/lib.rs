#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "b3")]
mod b3;
mod baggage;
#[cfg(any(
    feature = "b3",
    feature = "jaeger",
    feature = "xray",
    feature = "ottrace"
))]
mod ids;
#[cfg(feature = "jaeger")]
mod jaeger;
#[cfg(feature = "ottrace")]
mod ottrace;
#[cfg(any(feature = "jaeger", feature = "ottrace"))]
mod prefixed_baggage;
pub mod sampling;
pub mod starter;
mod trace_context;
mod w3c;
#[cfg(feature = "xray")]
pub mod xray;

#[cfg(feature = "b3")]
#[cfg_attr(docsrs, doc(cfg(feature = "b3")))]
pub use b3::{B3Encoding, B3Propagator};
pub use baggage::BaggagePropagator;
#[cfg(feature = "jaeger")]
#[cfg_attr(docsrs, doc(cfg(feature = "jaeger")))]
pub use jaeger::JaegerPropagator;
#[cfg(feature = "ottrace")]
#[cfg_attr(docsrs, doc(cfg(feature = "ottrace")))]
pub use ottrace::OtTracePropagator;
pub use trace_context::{RANDOM_FLAG, TraceContextPropagator};
pub use w3c::{W3cHeaders, W3cParent, W3cPropagator};
#[cfg(feature = "xray")]
#[cfg_attr(docsrs, doc(cfg(feature = "xray")))]
pub use xray::XrayPropagator;

/// Percent-decodes `input`; `None` when an escape is malformed or the
/// result is not UTF-8.
pub fn percent_decode(input: &str) -> Option<String> {
    if !input.contains('%') {
        return Some(input.to_owned());
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16))?;
            let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16))?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
