//! In-memory span capture for tests (feature `testing`).
//!
//! ```
//! use observability_core::testing::SpanCapture;
//!
//! let capture = SpanCapture::new();
//! {
//!     let _installed = capture.install();
//!     let _span = tracing::info_span!("charge", amount = 42).entered();
//! }
//! let span = capture.span("charge").expect("recorded");
//! assert_eq!(span.attributes.iter().find(|kv| kv.key.as_str() == "amount").unwrap().value,
//!            observability_core::opentelemetry::Value::I64(42));
//! ```

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use tracing_subscriber::layer::SubscriberExt;

pub use opentelemetry_sdk::trace::SpanData as CapturedSpan;

/// Collects finished spans in memory. Cheap to clone; clones share the spans.
#[derive(Clone, Debug, Default)]
pub struct SpanCapture {
    spans: Arc<Mutex<Vec<SpanData>>>,
}

/// Keeps a capture installed as the current thread's subscriber.
#[must_use = "the capture is uninstalled when this guard is dropped"]
#[derive(Debug)]
pub struct CaptureGuard {
    _default: tracing::subscriber::DefaultGuard,
    provider: SdkTracerProvider,
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

impl SpanCapture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs a subscriber that records every `tracing` span of the
    /// current thread (sampled, whatever its level) into this capture, until
    /// the guard drops. Nothing global changes, so tests can run in parallel.
    pub fn install(&self) -> CaptureGuard {
        let provider = self.tracer_provider();
        let layer = crate::bridge::SpanBridge::new(
            provider.tracer("observability-test"),
            None,
            crate::config::SamplerSetting::AlwaysOn,
            std::sync::Arc::default(),
        );
        let subscriber = tracing_subscriber::registry().with(layer);
        CaptureGuard {
            _default: tracing::subscriber::set_default(subscriber),
            provider,
        }
    }

    /// A tracer provider (always sampling) whose finished spans land in
    /// this capture, for building your own subscriber in a test.
    pub fn tracer_provider(&self) -> SdkTracerProvider {
        SdkTracerProvider::builder()
            .with_span_processor(self.processor())
            .build()
    }

    pub(crate) fn processor(&self) -> CaptureProcessor {
        CaptureProcessor {
            spans: Arc::clone(&self.spans),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SpanData>> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every span finished so far, in the order they ended.
    pub fn spans(&self) -> Vec<SpanData> {
        self.lock().clone()
    }

    /// The last finished span with this name.
    pub fn span(&self, name: &str) -> Option<SpanData> {
        self.lock().iter().rev().find(|s| s.name == name).cloned()
    }

    /// Forgets the spans recorded so far.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// The processor behind a capture: records synchronously, exports nothing.
#[derive(Debug)]
pub(crate) struct CaptureProcessor {
    spans: Arc<Mutex<Vec<SpanData>>>,
}

impl SpanProcessor for CaptureProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.spans
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
