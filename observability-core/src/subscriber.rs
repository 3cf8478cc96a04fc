//! The `tracing` subscriber `init` installs: the OpenTelemetry layer,
//! filtered only by the trace level, and the log output, filtered only by
//! `RUST_LOG`. Log verbosity never decides what is traced.

use std::io::IsTerminal;

use opentelemetry::InstrumentationScope;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::subscriber::Interest;
use tracing::{Dispatch, Metadata};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::Settings;
use crate::export::runtime::in_export_thread;

/// Decides which `tracing` spans and events reach OpenTelemetry: those at
/// or above the trace level, except anything on the export thread.
struct TraceFilter {
    level: tracing::Level,
}

impl<S> Filter<S> for TraceFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        meta.level() <= &self.level && !in_export_thread()
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.level() <= &self.level {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.level.into())
    }
}

pub(crate) fn build(settings: &Settings, provider: Option<&SdkTracerProvider>) -> Dispatch {
    let otel = provider.map(|provider| {
        let scope = InstrumentationScope::builder("observability")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer_with_scope(scope))
            .with_filter(TraceFilter {
                level: settings.trace_level,
            })
    });
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stdout)
        .with_ansi(std::io::stdout().is_terminal())
        .with_filter(EnvFilter::builder().parse_lossy(&settings.log_filter));
    Dispatch::new(tracing_subscriber::registry().with(otel).with(logs))
}
