//! The OTLP exporters, over gRPC or HTTP/protobuf, with rustls and the
//! system's root certificates. Traces use this crate's encoder and a hyper
//! client for both transports; logs go through `opentelemetry-otlp` (over
//! gRPC with tonic, feature `otlp-grpc-logs`).

use opentelemetry_sdk::Resource;
use tokio::runtime::Handle;

mod client;
mod logs;
mod metrics;
mod quickack;
mod sink;
mod status;
mod transport;

pub(crate) use logs::otlp_log_exporter;
pub(crate) use metrics::MetricsSender;

use super::Sink;
use super::error::BuildError;
use crate::config::{OtlpSettings, Protocol};

/// The wire of `protocol`, if compiled in: the one place that decides.
fn wire(protocol: Protocol) -> Result<transport::Wire, BuildError> {
    match protocol {
        Protocol::HttpProtobuf => Ok(transport::Wire::Http),
        #[cfg(feature = "otlp-grpc")]
        Protocol::Grpc => Ok(transport::Wire::Grpc),
        #[cfg(not(feature = "otlp-grpc"))]
        Protocol::Grpc => Err(BuildError::MissingFeature {
            what: "OTLP over gRPC",
            feature: "otlp-grpc",
            advice: "; or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
        }),
    }
}

/// Builds the OTLP sink inside the export runtime. Errors become a warning.
pub(crate) fn otlp_sink(
    settings: &OtlpSettings,
    max_request_bytes: usize,
    resource: &Resource,
    runtime: &Handle,
) -> Result<Box<dyn Sink>, BuildError> {
    let _enter = runtime.enter();
    Ok(Box::new(sink::HttpSink::new(
        settings,
        max_request_bytes,
        resource,
        wire(settings.protocol)?,
    )?))
}
