//! Sends encoded metrics over OTLP (HTTP/protobuf or gRPC) with the same
//! transport as traces: endpoint, headers, gzip, TLS, retries within the
//! timeout.

use std::time::Instant;

use super::transport::{Sent, Transport};
use crate::config::OtlpSettings;
use crate::export::error::{BuildError, ExportError};

/// The gRPC method of the metrics service.
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// Where metric exports go.
pub(crate) struct MetricsSender {
    transport: Transport,
}

impl MetricsSender {
    /// Builds the sender inside the export runtime.
    pub(crate) fn new(
        settings: &OtlpSettings,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self, BuildError> {
        let _enter = runtime.enter();
        Ok(Self {
            transport: Transport::new(settings, super::wire(settings.protocol)?, GRPC_EXPORT_PATH)?,
        })
    }

    /// Sends one `ExportMetricsServiceRequest` by `deadline` (or the OTLP
    /// timeout, whichever comes first); `last`: at shutdown, one attempt
    /// (the process is ending, a collector that refuses is not waited for).
    pub(crate) async fn send(
        &self,
        message: &[u8],
        deadline: Instant,
        last: bool,
    ) -> Result<(), ExportError> {
        let request = self.transport.request_for(message)?;
        let deadline =
            tokio::time::Instant::from_std(deadline.min(Instant::now() + self.transport.timeout));
        let sent = if last {
            self.transport.send_with(request, deadline, 0).await
        } else {
            self.transport.send(request, deadline).await
        };
        match sent {
            Sent::Ok => Ok(()),
            Sent::TooLarge => Err(ExportError::Http {
                status: 413,
                body: "the metrics request is too large for the collector".to_owned(),
            }),
            Sent::Failed(error) => Err(error),
        }
    }
}
