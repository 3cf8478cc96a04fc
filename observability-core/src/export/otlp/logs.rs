//! The OTLP log exporter (`OTEL_LOGS_EXPORTER=otlp`): `opentelemetry-otlp`
//! over the same hyper client for HTTP/protobuf, over tonic for gRPC
//! (feature `otlp-grpc-logs`), driven inside the export runtime.

use opentelemetry_sdk::Resource;
use tokio::runtime::Handle;

use super::client;
use crate::config::{OtlpSettings, Protocol};
use crate::export::error::BuildError;

#[cfg(feature = "otlp-grpc-logs")]
fn configure_grpc<B>(builder: B, settings: &OtlpSettings) -> Result<B, BuildError>
where
    B: opentelemetry_otlp::WithExportConfig + opentelemetry_otlp::WithTonicConfig,
{
    use opentelemetry_otlp::Compression;
    use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
    use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

    let mut metadata = MetadataMap::new();
    for (key, value) in &settings.headers {
        let header = |what| BuildError::Header {
            name: key.clone(),
            what,
        };
        let key = MetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes())
            .map_err(|_| header("name (gRPC metadata key)"))?;
        let value =
            MetadataValue::try_from(value.as_str()).map_err(|_| header("value (gRPC metadata)"))?;
        metadata.insert(key, value);
    }
    let mut builder = builder
        .with_endpoint(settings.endpoint.as_str())
        .with_timeout(settings.timeout)
        .with_metadata(metadata);
    if settings.endpoint.is_https() {
        builder = builder.with_tls_config(ClientTlsConfig::new().with_native_roots());
    }
    if settings.gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    Ok(builder)
}

fn configure_http<B>(builder: B, settings: &OtlpSettings) -> Result<B, BuildError>
where
    B: opentelemetry_otlp::WithExportConfig + opentelemetry_otlp::WithHttpConfig,
{
    use opentelemetry_otlp::Compression;

    let client = client::HyperClient::new(settings.timeout, settings.endpoint.is_https(), false)?;
    let mut builder = builder
        .with_http_client(client)
        .with_endpoint(settings.endpoint.as_str())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(settings.timeout)
        .with_headers(settings.headers.iter().cloned().collect());
    if settings.gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    Ok(builder)
}

/// Builds the OTLP log exporter, wrapped so that it runs inside the export
/// runtime whichever thread drives it (the SDK's log processor thread).
pub(crate) fn otlp_log_exporter(
    settings: &OtlpSettings,
    resource: &Resource,
    runtime: &Handle,
) -> Result<OnRuntime<opentelemetry_otlp::LogExporter>, BuildError> {
    use opentelemetry_sdk::logs::LogExporter as _;
    let _enter = runtime.enter();
    let mut exporter = match settings.protocol {
        #[cfg(feature = "otlp-grpc-logs")]
        Protocol::Grpc => configure_grpc(
            opentelemetry_otlp::LogExporter::builder().with_tonic(),
            settings,
        )?
        .build()
        .map_err(|e| BuildError::Otlp(e.to_string()))?,
        #[cfg(not(feature = "otlp-grpc-logs"))]
        Protocol::Grpc => {
            return Err(BuildError::MissingFeature {
                what: "OTLP logs over gRPC",
                feature: "otlp-grpc-logs",
                advice: " (traces over gRPC do not); or set OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf",
            });
        }
        Protocol::HttpProtobuf => configure_http(
            opentelemetry_otlp::LogExporter::builder().with_http(),
            settings,
        )?
        .build()
        .map_err(|e| BuildError::Otlp(e.to_string()))?,
    };
    exporter.set_resource(resource);
    Ok(OnRuntime {
        inner: exporter,
        handle: runtime.clone(),
    })
}

/// A log exporter whose futures are polled inside the export runtime.
#[derive(Debug)]
pub(crate) struct OnRuntime<E> {
    inner: E,
    handle: Handle,
}

struct EnterOnPoll<F> {
    handle: Handle,
    inner: std::pin::Pin<Box<F>>,
}

impl<F: std::future::Future> std::future::Future for EnterOnPoll<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let _enter = self.handle.enter();
        self.inner.as_mut().poll(cx)
    }
}

impl<F> Unpin for EnterOnPoll<F> {}

impl<E: opentelemetry_sdk::logs::LogExporter> opentelemetry_sdk::logs::LogExporter
    for OnRuntime<E>
{
    fn export(
        &self,
        batch: opentelemetry_sdk::logs::LogBatch<'_>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        let _enter = self.handle.enter();
        EnterOnPoll {
            handle: self.handle.clone(),
            inner: Box::pin(self.inner.export(batch)),
        }
    }

    fn shutdown_with_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        let _enter = self.handle.enter();
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
