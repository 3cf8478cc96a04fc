//! The OTLP exporter, built on `opentelemetry-otlp`, over gRPC (tonic) or
//! HTTP/protobuf (hyper), with rustls and the system's root certificates.

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use tokio::runtime::Handle;

use super::{ExportFuture, Sink};
use crate::config::{OtlpSettings, Protocol};

struct OtlpSink {
    exporter: opentelemetry_otlp::SpanExporter,
}

impl Sink for OtlpSink {
    fn name(&self) -> &'static str {
        "otlp"
    }

    fn export(&mut self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        Box::pin(async move { self.exporter.export(batch).await.map_err(|e| e.to_string()) })
    }

    fn shutdown(&mut self) {
        let _ = self.exporter.shutdown();
    }
}

/// Builds the OTLP sink inside the export runtime (tonic's channel spawns
/// its worker there). Errors are described for a warning.
pub(crate) fn otlp_sink(
    settings: &OtlpSettings,
    resource: &Resource,
    runtime: &Handle,
) -> Result<Box<dyn Sink>, String> {
    let _enter = runtime.enter();
    let mut exporter = match settings.protocol {
        Protocol::Grpc => grpc(settings)?,
        Protocol::HttpProtobuf => http(settings)?,
    };
    exporter.set_resource(resource);
    Ok(Box::new(OtlpSink { exporter }))
}

#[cfg(feature = "otlp-grpc")]
fn grpc(settings: &OtlpSettings) -> Result<opentelemetry_otlp::SpanExporter, String> {
    use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
    use opentelemetry_otlp::{Compression, WithExportConfig, WithTonicConfig};
    use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

    let mut metadata = MetadataMap::new();
    for (key, value) in &settings.headers {
        let key = MetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("`{key}` is not a valid gRPC metadata key"))?;
        let value = MetadataValue::try_from(value.as_str())
            .map_err(|_| format!("the value of `{key}` is not a valid gRPC metadata value"))?;
        metadata.insert(key, value);
    }
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(settings.timeout)
        .with_metadata(metadata);
    if settings
        .endpoint
        .to_ascii_lowercase()
        .starts_with("https://")
    {
        builder = builder.with_tls_config(ClientTlsConfig::new().with_native_roots());
    }
    if settings.gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    builder.build().map_err(|e| e.to_string())
}

#[cfg(not(feature = "otlp-grpc"))]
fn grpc(_: &OtlpSettings) -> Result<opentelemetry_otlp::SpanExporter, String> {
    Err("OTLP over grpc needs the `otlp-grpc` feature".to_owned())
}

#[cfg(feature = "otlp-http")]
fn http(settings: &OtlpSettings) -> Result<opentelemetry_otlp::SpanExporter, String> {
    use opentelemetry_otlp::{Compression, WithExportConfig, WithHttpConfig};

    let client = http_client::HyperClient::new(
        settings.timeout,
        settings
            .endpoint
            .to_ascii_lowercase()
            .starts_with("https://"),
    )?;
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(settings.endpoint.clone())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(settings.timeout)
        .with_headers(settings.headers.iter().cloned().collect());
    if settings.gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    builder.build().map_err(|e| e.to_string())
}

#[cfg(not(feature = "otlp-http"))]
fn http(_: &OtlpSettings) -> Result<opentelemetry_otlp::SpanExporter, String> {
    Err("OTLP over http/protobuf needs the `otlp-http` feature".to_owned())
}

#[cfg(feature = "otlp-http")]
mod http_client {
    use std::time::Duration;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::{BodyExt, Full, Limited};
    use hyper_rustls::HttpsConnector;
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use opentelemetry_http::{HttpClient, HttpError};

    /// Responses larger than this are refused (a collector answers in bytes).
    const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

    /// A hyper client running on the export runtime, HTTP/1.1 and HTTP/2,
    /// rustls with the system's roots for `https`.
    #[derive(Debug)]
    pub(super) struct HyperClient {
        client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
        timeout: Duration,
    }

    impl HyperClient {
        pub(super) fn new(timeout: Duration, https: bool) -> Result<Self, String> {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(timeout));
            let builder = hyper_rustls::HttpsConnectorBuilder::new();
            let builder = if https {
                builder
                    .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                    .map_err(|e| format!("cannot load the system's root certificates: {e}"))?
            } else {
                // No certificates are needed for plain HTTP; an empty root
                // store keeps start-up independent of the system's.
                builder.with_tls_config(
                    rustls::ClientConfig::builder_with_provider(
                        rustls::crypto::ring::default_provider().into(),
                    )
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
                )
            };
            let connector = builder
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http);
            let client = Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector);
            Ok(Self { client, timeout })
        }
    }

    #[async_trait::async_trait]
    impl HttpClient for HyperClient {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            let (parts, body) = request.into_parts();
            let request = Request::from_parts(parts, Full::new(body));
            let exchange = async {
                let response = self.client.request(request).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_RESPONSE_BYTES)
                    .collect()
                    .await?
                    .to_bytes();
                Ok::<_, HttpError>(Response::from_parts(parts, body))
            };
            match tokio::time::timeout(self.timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {:?}", self.timeout).into()),
            }
        }
    }
}
