//! Another service in the same process: its own tracer provider and
//! `tracing` dispatcher, sharing the guard's exporters.

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Dispatch;

/// The telemetry of one more service running in this process, from
/// [`TelemetryGuard::service`](crate::TelemetryGuard::service).
///
/// ```
/// use observability_core::opentelemetry::trace::{Tracer, TracerProvider};
///
/// let telemetry = observability_core::builder()
///     .default_exporter(observability_core::Exporter::None)
///     .build()
///     .expect("telemetry");
/// let api = telemetry.service("shop-api");
/// // Give the provider to that part's layers and wrappers
/// // (`ServerLayer::builder().tracer_provider(provider)` and the like) ...
/// if let Some(provider) = api.tracer_provider() {
///     provider.tracer("shop").in_span("price", |_cx| {});
/// }
/// // ... and run its code with its dispatcher.
/// tracing::dispatcher::with_default(api.dispatch(), || {
///     tracing::info!("logged as shop-api");
/// });
/// ```
#[derive(Clone, Debug)]
pub struct ServiceTelemetry {
    provider: Option<SdkTracerProvider>,
    dispatch: Dispatch,
}

impl ServiceTelemetry {
    pub(crate) fn new(provider: Option<SdkTracerProvider>, dispatch: Dispatch) -> Self {
        Self { provider, dispatch }
    }

    /// The service's tracer provider, absent when `OTEL_SDK_DISABLED=true`.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.provider.as_ref()
    }

    /// The service's `tracing` dispatcher: its spans go to
    /// [`tracer_provider`](Self::tracer_provider), its log lines carry the
    /// service's name.
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }
}
