//! The OTLP exporters, over gRPC or HTTP/protobuf, with rustls and the
//! system's root certificates. Traces use this crate's encoder and a hyper
//! client for both transports; logs go through `opentelemetry-otlp` (over
//! gRPC with tonic, feature `otlp-grpc-logs`).

use opentelemetry_sdk::Resource;
use tokio::runtime::Handle;

mod client;
mod logs;
mod sink;
mod status;

pub(crate) use logs::otlp_log_exporter;

use super::Sink;
use super::error::BuildError;
use crate::config::{OtlpSettings, Protocol};

/// Builds the OTLP sink inside the export runtime (tonic's channel spawns
/// its worker there). Errors become a warning.
pub(crate) fn otlp_sink(
    settings: &OtlpSettings,
    max_request_bytes: usize,
    resource: &Resource,
    runtime: &Handle,
) -> Result<Box<dyn Sink>, BuildError> {
    let _enter = runtime.enter();
    let wire = match settings.protocol {
        Protocol::HttpProtobuf => sink::Wire::Http,
        #[cfg(feature = "otlp-grpc")]
        Protocol::Grpc => sink::Wire::Grpc,
        #[cfg(not(feature = "otlp-grpc"))]
        Protocol::Grpc => {
            return Err(BuildError::MissingFeature {
                what: "OTLP over gRPC",
                feature: "otlp-grpc",
                advice: "; or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
            });
        }
    };
    Ok(Box::new(sink::HttpSink::new(
        settings,
        max_request_bytes,
        resource,
        wire,
    )?))
}
