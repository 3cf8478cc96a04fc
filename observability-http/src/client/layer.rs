use std::sync::Arc;

use opentelemetry::trace::TracerProvider;
use tower::Layer;

use super::ClientService;
use crate::attributes::QueryRedaction;
use crate::metrics::{ClientInstruments, Instruments};
use crate::tracer::TracerSource;

#[derive(Debug)]
pub(crate) struct ClientConfig {
    pub(crate) tracer: TracerSource,
    /// Which query values `url.full` redacts.
    pub(crate) query_redaction: QueryRedaction,
    /// `http.client.request.duration`.
    pub(crate) metrics: Instruments<ClientInstruments>,
}

/// A tower [`Layer`] for outgoing requests (a hyper-util client, a tonic
/// channel, any `Service<http::Request<_>>`): a CLIENT span per request,
/// child of the current context, injected into the request headers with the
/// global propagator. 4xx and 5xx responses and transport errors are
/// errors.
///
/// ```
/// use tower::ServiceBuilder;
///
/// # fn wrap<S>(client: S) -> observability_http::ClientService<S> {
/// let traced = ServiceBuilder::new()
///     .layer(observability_http::ClientLayer::new())
///     .service(client);
/// # traced
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ClientLayer {
    config: Arc<ClientConfig>,
}

impl Default for ClientLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientLayer {
    /// A layer using the global tracer provider.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for the options.
    pub fn builder() -> ClientLayerBuilder {
        ClientLayerBuilder {
            tracer: None,
            query_redaction: QueryRedaction::default(),
            metrics: Instruments::new(ClientInstruments::make),
        }
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientService::new(inner, Arc::clone(&self.config))
    }
}

/// Options of a [`ClientLayer`].
#[derive(Debug)]
#[must_use = "call build() to get the layer"]
pub struct ClientLayerBuilder {
    tracer: Option<TracerSource>,
    query_redaction: QueryRedaction,
    metrics: Instruments<ClientInstruments>,
}

impl ClientLayerBuilder {
    /// Uses this provider instead of the global one.
    pub fn tracer_provider<P>(mut self, provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        self.tracer = Some(TracerSource::from_provider("observability-http", provider));
        self
    }

    /// Redacts the values of these query keys in `url.full` too, besides
    /// [`SENSITIVE_QUERY_KEYS`](crate::SENSITIVE_QUERY_KEYS) and keys ending in
    /// `_token`, `_secret`, `_password`, `_signature` or `_key` (compared
    /// after percent-decoding, ignoring case).
    pub fn redact_query_keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        self.query_redaction.add(keys);
        self
    }

    crate::metrics::metrics_options!(
        "`http.client.request.duration` (`rpc.client.duration` for gRPC)"
    );

    /// The layer.
    pub fn build(self) -> ClientLayer {
        ClientLayer {
            config: Arc::new(ClientConfig {
                tracer: self
                    .tracer
                    .unwrap_or_else(|| TracerSource::global("observability-http")),
                query_redaction: self.query_redaction,
                metrics: self.metrics,
            }),
        }
    }
}
