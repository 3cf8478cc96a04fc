//! How a part is traced. As a process of its own, a part uses what `init()`
//! installed globally, under its own `service.name`. With every part in one
//! process, each gets a service of its own from
//! [`TelemetryGuard::service`](observability_core::TelemetryGuard::service):
//! its layers and wrappers take that service's tracer provider, and its
//! futures run with that service's `tracing` dispatcher, so its
//! `#[instrument]` spans and log lines carry its name too — the console then
//! shows the gateway, the API and the worker as the services they are.

use std::future::Future;

use axum::Router;
use observability_core::ServiceTelemetry;
use observability_http::server::AxumBody;
use observability_http::{ClientLayer, ServerLayer};
use observability_messaging::{Consumer, Producer};
use tracing::instrument::{WithDispatch, WithSubscriber};

/// One part's telemetry: the global set-up, or a service of its own.
#[derive(Clone, Debug, Default)]
pub(crate) struct Telemetry(Option<ServiceTelemetry>);

impl Telemetry {
    /// A part with a service of its own.
    pub(crate) fn service(service: ServiceTelemetry) -> Self {
        Self(Some(service))
    }

    fn provider(&self) -> Option<&observability_core::opentelemetry_sdk::trace::SdkTracerProvider> {
        self.0.as_ref().and_then(ServiceTelemetry::tracer_provider)
    }

    /// The layer for the part's server (an axum router).
    pub(crate) fn server_layer(&self) -> ServerLayer<AxumBody> {
        match self.provider() {
            Some(provider) => ServerLayer::builder().tracer_provider(provider).build(),
            None => ServerLayer::new(),
        }
        .for_axum()
    }

    /// The layer for the part's outgoing calls.
    pub(crate) fn client_layer(&self) -> ClientLayer {
        match self.provider() {
            Some(provider) => ClientLayer::builder().tracer_provider(provider).build(),
            None => ClientLayer::new(),
        }
    }

    /// A producer of the in-process queue.
    pub(crate) fn producer(&self, destination: &str) -> Producer {
        let producer = Producer::new("memory", destination);
        match self.provider() {
            Some(provider) => producer.tracer_provider(provider),
            None => producer,
        }
    }

    /// A consumer of the in-process queue.
    pub(crate) fn consumer(&self, destination: &str) -> Consumer {
        let consumer = Consumer::new("memory", destination);
        match self.provider() {
            Some(provider) => consumer.tracer_provider(provider),
            None => consumer,
        }
    }

    /// A RabbitMQ consumer.
    pub(crate) fn amqp_process(&self) -> observability_messaging::amqp::Process {
        let process = observability_messaging::amqp::Process::new();
        match self.provider() {
            Some(provider) => process.tracer_provider(provider),
            None => process,
        }
    }

    /// An SQS consumer.
    pub(crate) fn sqs_process(&self, url: &str) -> observability_messaging::sqs::Process {
        let process = observability_messaging::sqs::Process::new(url);
        match self.provider() {
            Some(provider) => process.tracer_provider(provider),
            None => process,
        }
    }

    /// `future`, run with the part's `tracing` dispatcher (the global one
    /// for a part in a process of its own).
    pub(crate) fn run<F: Future>(&self, future: F) -> WithDispatch<F> {
        match &self.0 {
            Some(service) => future.with_subscriber(service.dispatch().clone()),
            None => future.with_current_subscriber(),
        }
    }

    /// `router` with every request run under the part's dispatcher.
    pub(crate) fn router(&self, router: Router) -> Router {
        let telemetry = self.clone();
        router.layer(tower::util::MapFutureLayer::new(move |future| {
            telemetry.run(future)
        }))
    }
}
