//! `otel.sdk.span.started`: every span the SDK starts passes its sampler,
//! sampled or not, so the sampler is where they are counted, by
//! `otel.span.sampling_result` (semantic conventions for OpenTelemetry SDK
//! metrics: "MUST record this metric for all spans, even for non-recording
//! ones").

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::trace::{Link, SpanKind, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

/// The values of `otel.span.sampling_result`, in the order of the counts.
pub(crate) const RESULTS: [&str; 3] = ["DROP", "RECORD_ONLY", "RECORD_AND_SAMPLE"];

/// Spans started, by sampling result.
#[derive(Debug, Default)]
pub(crate) struct SpanCounts(pub(crate) [AtomicU64; 3]);

impl SpanCounts {
    /// Counts a span dropped without reaching the sampler (see
    /// `Pipeline::drop_rule`).
    pub(crate) fn count_drop(&self) {
        self.0[0].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a span the sampler kept (`RECORD_AND_SAMPLE`) or dropped.
    pub(crate) fn count(&self, sampled: bool) {
        self.0[if sampled { 2 } else { 0 }].fetch_add(1, Ordering::Relaxed);
    }
}

/// The configured sampler, counting what it decides.
#[derive(Clone, Debug)]
pub(crate) struct CountingSampler {
    pub(crate) inner: Sampler,
    pub(crate) counts: Arc<SpanCounts>,
}

impl ShouldSample for CountingSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let result =
            self.inner
                .should_sample(parent_context, trace_id, name, span_kind, attributes, links);
        let index = match result.decision {
            SamplingDecision::Drop => 0,
            SamplingDecision::RecordOnly => 1,
            SamplingDecision::RecordAndSample => 2,
        };
        self.counts.0[index].fetch_add(1, Ordering::Relaxed);
        result
    }
}
