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
    configure_grpc(
        opentelemetry_otlp::SpanExporter::builder().with_tonic(),
        settings,
    )?
    .build()
    .map_err(|e| e.to_string())
}

#[cfg(feature = "otlp-grpc")]
fn configure_grpc<B>(builder: B, settings: &OtlpSettings) -> Result<B, String>
where
    B: opentelemetry_otlp::WithExportConfig + opentelemetry_otlp::WithTonicConfig,
{
    use opentelemetry_otlp::Compression;
    use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
    use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

    let mut metadata = MetadataMap::new();
    for (key, value) in &settings.headers {
        let key = MetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("`{key}` is not a valid gRPC metadata key"))?;
        let value = MetadataValue::try_from(value.as_str())
            .map_err(|_| format!("the value of `{key}` is not a valid gRPC metadata value"))?;
        metadata.insert(key, value);
    }
    let mut builder = builder
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
    Ok(builder)
}

#[cfg(not(feature = "otlp-grpc"))]
fn grpc(_: &OtlpSettings) -> Result<opentelemetry_otlp::SpanExporter, String> {
    Err("OTLP over grpc needs the `otlp-grpc` feature".to_owned())
}

#[cfg(feature = "otlp-http")]
fn http(settings: &OtlpSettings) -> Result<opentelemetry_otlp::SpanExporter, String> {
    configure_http(
        opentelemetry_otlp::SpanExporter::builder().with_http(),
        settings,
    )?
    .build()
    .map_err(|e| e.to_string())
}

#[cfg(feature = "otlp-http")]
fn configure_http<B>(builder: B, settings: &OtlpSettings) -> Result<B, String>
where
    B: opentelemetry_otlp::WithExportConfig + opentelemetry_otlp::WithHttpConfig,
{
    use opentelemetry_otlp::Compression;

    let client = http_client::HyperClient::new(
        settings.timeout,
        settings
            .endpoint
            .to_ascii_lowercase()
            .starts_with("https://"),
    )?;
    let mut builder = builder
        .with_http_client(client)
        .with_endpoint(settings.endpoint.clone())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(settings.timeout)
        .with_headers(settings.headers.iter().cloned().collect());
    if settings.gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    Ok(builder)
}

#[cfg(not(feature = "otlp-http"))]
fn http(_: &OtlpSettings) -> Result<opentelemetry_otlp::SpanExporter, String> {
    Err("OTLP over http/protobuf needs the `otlp-http` feature".to_owned())
}

/// Builds the OTLP log exporter, wrapped so that it runs inside the export
/// runtime whichever thread drives it (the SDK's log processor thread).
pub(crate) fn otlp_log_exporter(
    settings: &OtlpSettings,
    resource: &Resource,
    runtime: &Handle,
) -> Result<OnRuntime<opentelemetry_otlp::LogExporter>, String> {
    use opentelemetry_sdk::logs::LogExporter as _;
    let _enter = runtime.enter();
    let mut exporter = match settings.protocol {
        #[cfg(feature = "otlp-grpc")]
        Protocol::Grpc => configure_grpc(
            opentelemetry_otlp::LogExporter::builder().with_tonic(),
            settings,
        )?
        .build()
        .map_err(|e| e.to_string())?,
        #[cfg(feature = "otlp-http")]
        Protocol::HttpProtobuf => configure_http(
            opentelemetry_otlp::LogExporter::builder().with_http(),
            settings,
        )?
        .build()
        .map_err(|e| e.to_string())?,
        #[allow(unreachable_patterns)]
        _ => return Err("this OTLP protocol is not compiled in".to_owned()),
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
