//! The hyper client both wires use, on the export runtime, with rustls and
//! the system's root certificates for `https`.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError};

use super::quickack::QuickAckConnector;
use crate::export::error::BuildError;

/// Responses larger than this are refused (a collector answers in bytes).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The rustls crypto provider: aws-lc-rs (feature `rustls-aws-lc`, what
/// reqwest 0.13 and the AWS SDK use) or ring (feature `rustls-ring`, the
/// default), else the process's default provider, so that a service
/// compiles one.
fn crypto_provider() -> Result<rustls::crypto::CryptoProvider, BuildError> {
    #[cfg(feature = "rustls-aws-lc")]
    return Ok(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(all(feature = "rustls-ring", not(feature = "rustls-aws-lc")))]
    return Ok(rustls::crypto::ring::default_provider());
    #[cfg(not(any(feature = "rustls-ring", feature = "rustls-aws-lc")))]
    rustls::crypto::CryptoProvider::get_default()
        .map(|provider| (**provider).clone())
        .ok_or_else(|| {
            BuildError::Tls(
                "no TLS crypto provider: enable the `rustls-ring` or `rustls-aws-lc` feature \
                 of observability-core, or install a process default \
                 (rustls::crypto::CryptoProvider::install_default)"
                    .to_owned(),
            )
        })
}

/// A hyper client running on the export runtime, HTTP/1.1 and HTTP/2,
/// rustls with the system's roots for `https`.
#[derive(Clone, Debug)]
pub(super) struct HyperClient {
    client: Client<HttpsConnector<QuickAckConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HyperClient {
    /// `http2_only`: speak HTTP/2 from the first byte (gRPC), with
    /// prior knowledge over plain TCP and by ALPN over TLS.
    pub(super) fn new(
        timeout: Duration,
        https: bool,
        http2_only: bool,
    ) -> Result<Self, BuildError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let provider = crypto_provider()?;
        let builder = if https {
            builder
                .with_provider_and_native_roots(provider)
                .map_err(|e| {
                    BuildError::Tls(format!("cannot load the system's root certificates: {e}"))
                })?
        } else {
            // No certificates are needed for plain HTTP; an empty root
            // store keeps start-up independent of the system's.
            builder.with_tls_config(
                rustls::ClientConfig::builder_with_provider(provider.into())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| BuildError::Tls(e.to_string()))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        };
        let http = QuickAckConnector(http);
        let connector = if http2_only {
            builder.https_or_http().enable_http2().wrap_connector(http)
        } else {
            builder
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http)
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .http2_only(http2_only)
            .build(connector);
        Ok(Self { client, timeout })
    }

    /// Sends `request` and reads the whole answer, with its trailers,
    /// within the timeout.
    pub(super) async fn exchange(
        &self,
        request: Request<Bytes>,
    ) -> Result<(Response<Bytes>, Option<http::HeaderMap>), HttpError> {
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, Full::new(body));
        let exchange = async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            let collected = Limited::new(body, MAX_RESPONSE_BYTES).collect().await?;
            let trailers = collected.trailers().cloned();
            Ok::<_, HttpError>((Response::from_parts(parts, collected.to_bytes()), trailers))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {:?}", self.timeout).into()),
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for HyperClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        self.exchange(request).await.map(|(response, _)| response)
    }
}
