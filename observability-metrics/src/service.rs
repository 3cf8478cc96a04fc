//! `/metrics` as a tower service: mount it on your own router, or let
//! `observability-core` serve it on `OTEL_EXPORTER_PROMETHEUS_HOST:PORT`.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use opentelemetry::KeyValue;

use crate::MeterProvider;
use crate::prometheus::{self, Format};

/// Answers a scrape with the provider's metrics: OpenMetrics with
/// exemplars when the scraper's `Accept` names
/// `application/openmetrics-text` (Prometheus does, with exemplar storage
/// on), the Prometheus text format otherwise.
///
/// ```no_run
/// # async fn run(provider: observability_metrics::MeterProvider) {
/// use observability_metrics::PrometheusService;
///
/// let app: axum::Router = axum::Router::new()
///     .route_service("/metrics", PrometheusService::new(provider, Vec::new()));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PrometheusService {
    provider: MeterProvider,
    resource: Vec<KeyValue>,
}

impl PrometheusService {
    /// Serves `provider`'s metrics; `resource` becomes `target_info`.
    pub fn new(provider: MeterProvider, resource: Vec<KeyValue>) -> Self {
        Self { provider, resource }
    }

    /// The body and content type of one scrape in `format`.
    pub fn render(&self, format: Format) -> String {
        prometheus::encode(&self.provider.collect(), &self.resource, format)
    }
}

impl<B> tower::Service<Request<B>> for PrometheusService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let accept = request.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
        let format = Format::from_accept(accept);
        let body = self.render(format);
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::OK;
        response.headers_mut().insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static(format.content_type()),
        );
        ready(Ok(response))
    }
}
