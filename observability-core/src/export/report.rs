//! Drops reported while they happen: a task beside each worker looks at the
//! drop counters four times a second and warns about each kind of drop
//! (queue full, export failed, too large) the first time it happens, then
//! at most every 30 seconds with the count since the last warning. It does
//! not wait for the worker, so a worker waiting on a slow collector does
//! not delay the warning.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::dispatcher::WeakDispatch;

use super::queue::Shared;
use super::runtime::DispatchCell;

/// How often the counters are looked at.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// Warnings of one kind at most this often.
const WARNING_INTERVAL: Duration = Duration::from_secs(30);

/// Where the export thread's warnings go.
#[derive(Debug)]
pub(crate) struct Reporter {
    dispatch: DispatchCell,
}

/// One kind of drop and what its warning says.
struct Kind {
    what: &'static str,
    advice: &'static str,
    count: fn(&Shared) -> u64,
    reported: u64,
    last_warning: Option<Instant>,
}

impl Kind {
    fn new(what: &'static str, advice: &'static str, count: fn(&Shared) -> u64) -> Self {
        Self {
            what,
            advice,
            count,
            reported: 0,
            last_warning: None,
        }
    }
}

impl Reporter {
    pub(crate) fn new(dispatch: DispatchCell) -> Self {
        Self { dispatch }
    }

    fn emit(dispatch: &DispatchCell, f: impl FnOnce()) {
        match dispatch.get().and_then(WeakDispatch::upgrade) {
            Some(dispatch) => tracing::dispatcher::with_default(&dispatch, f),
            None => f(),
        }
    }

    /// The task that watches `shared` until its worker has ended.
    pub(crate) fn watch(
        self,
        shared: Arc<Shared>,
        exporter: &'static str,
    ) -> impl Future<Output = ()> + Send + 'static {
        let dispatch = self.dispatch;
        async move {
            let mut kinds = [
                Kind::new(
                    "the span queue is full",
                    "raise OTEL_BSP_MAX_QUEUE_SIZE or OBSERVABILITY_BSP_MAX_QUEUE_BYTES, or sample less",
                    |s| s.counters.dropped_queue_full.load(Ordering::Relaxed),
                ),
                Kind::new(
                    "span export failed",
                    "check the collector and OTEL_EXPORTER_OTLP_ENDPOINT",
                    |s| s.counters.dropped_export_failed.load(Ordering::Relaxed),
                ),
                Kind::new(
                    "spans too large to send",
                    "set OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT lower, or raise OBSERVABILITY_OTLP_MAX_REQUEST_BYTES up to the collector's limit",
                    |s| s.counters.dropped_too_large.load(Ordering::Relaxed),
                ),
            ];
            let mut interval = tokio::time::interval(CHECK_EVERY);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                for kind in &mut kinds {
                    let now = (kind.count)(&shared);
                    let due = kind
                        .last_warning
                        .is_none_or(|at| at.elapsed() >= WARNING_INTERVAL);
                    if now > kind.reported && due {
                        let dropped = now - kind.reported;
                        kind.reported = now;
                        kind.last_warning = Some(Instant::now());
                        let error = if kind.what == "span export failed" {
                            shared
                                .last_error
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .clone()
                        } else {
                            None
                        };
                        let (what, advice) = (kind.what, kind.advice);
                        Self::emit(&dispatch, || match error {
                            Some(error) => tracing::warn!(
                                target: "observability_core",
                                exporter,
                                dropped_spans = dropped,
                                "{what}: {error}; {dropped} span(s) dropped and counted ({advice})"
                            ),
                            None => tracing::warn!(
                                target: "observability_core",
                                exporter,
                                dropped_spans = dropped,
                                "{what}: {dropped} span(s) dropped and counted ({advice})"
                            ),
                        });
                    }
                }
                if shared.recovered.swap(false, Ordering::AcqRel) {
                    Self::emit(&dispatch, || {
                        tracing::info!(
                            target: "observability_core",
                            exporter,
                            "span export recovered"
                        );
                    });
                }
                if shared.finished.load(Ordering::Acquire) {
                    return;
                }
            }
        }
    }
}
