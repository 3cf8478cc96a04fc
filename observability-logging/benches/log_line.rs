//! One log line, `info!(user_id = 42, "message")` inside an entered span,
//! written to `io::sink`, for this crate and its peers in one run.
//!
//! ```sh
//! cargo bench -p observability-logging --bench log_line
//! ```
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Dispatch;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;

/// A provider that samples everything and exports nothing.
fn provider() -> SdkTracerProvider {
    SdkTracerProvider::builder().build()
}

fn measure(c: &mut Criterion, name: &str, dispatch: Dispatch) {
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("request", route = "/orders/{id}");
        let _entered = span.enter();
        c.bench_function(name, |b| {
            b.iter(|| tracing::info!(user_id = 42, "message"));
        });
    });
}

fn bench(c: &mut Criterion) {
    let p = provider();
    measure(
        c,
        "observability_logging/json_with_ids",
        Dispatch::new(
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(p.tracer("bench")))
                .with(
                    observability_logging::LogLayer::builder()
                        .writer(std::io::sink)
                        .service_name("bench")
                        .build(),
                ),
        ),
    );
    // As observability-core installs it: INFO events are logged, not copied
    // into the span (only WARN and above become span events).
    let p3 = provider();
    measure(
        c,
        "observability_logging/json_with_ids_core_default",
        Dispatch::new(
            tracing_subscriber::registry()
                .with(
                    tracing_opentelemetry::layer()
                        .with_tracer(p3.tracer("bench"))
                        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                            m.is_span() || *m.level() <= tracing::Level::WARN
                        })),
                )
                .with(
                    observability_logging::LogLayer::builder()
                        .writer(std::io::sink)
                        .service_name("bench")
                        .build(),
                ),
        ),
    );
    measure(
        c,
        "observability_logging/json_no_otel_layer",
        Dispatch::new(
            tracing_subscriber::registry().with(
                observability_logging::LogLayer::builder()
                    .writer(std::io::sink)
                    .service_name("bench")
                    .build(),
            ),
        ),
    );
    measure(
        c,
        "tracing_subscriber/json_no_ids",
        Dispatch::new(
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::sink),
            ),
        ),
    );
    let p2 = provider();
    measure(
        c,
        "json_subscriber/with_ids",
        Dispatch::new(
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(p2.tracer("bench")))
                .with(
                    json_subscriber::layer()
                        .with_current_span(false)
                        .with_span_list(false)
                        .with_opentelemetry_ids(true)
                        .with_writer(std::io::sink),
                ),
        ),
    );
    measure(
        c,
        "json_subscriber/no_ids",
        Dispatch::new(
            tracing_subscriber::registry().with(
                json_subscriber::layer()
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(std::io::sink),
            ),
        ),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
