use std::sync::Arc;

use opentelemetry::trace::TracerProvider;
use tower::Layer;

use super::ClientService;
use crate::tracer::TracerSource;

#[derive(Debug)]
pub(crate) struct ClientConfig {
    pub(crate) tracer: TracerSource,
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
        ClientLayerBuilder { tracer: None }
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

    /// The layer.
    pub fn build(self) -> ClientLayer {
        ClientLayer {
            config: Arc::new(ClientConfig {
                tracer: self
                    .tracer
                    .unwrap_or_else(|| TracerSource::global("observability-http")),
            }),
        }
    }
}
