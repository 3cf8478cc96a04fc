//! Creates spans at a fixed rate and exports them over OTLP, to find the
//! highest rate one process sustains without dropping (`scripts/bench-export.sh`).
//!
//! ```sh
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
//!     span-blaster <spans-per-second> <seconds>
//! ```
//!
//! Prints `rate=<r> created=<n> exported=<n> dropped=<n> seconds=<s>`.

use std::time::{Duration, Instant};

use observability_core::opentelemetry::trace::{Span, Tracer, TracerProvider};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rate: u64 = args.next().ok_or("rate?")?.parse()?;
    let seconds: u64 = args.next().ok_or("seconds?")?.parse()?;
    let guard = observability_core::builder()
        .log_filter("warn")
        .shutdown_timeout(Duration::from_secs(30))
        .build()?;
    let provider = guard
        .tracer_provider()
        .ok_or("tracing is disabled")?
        .clone();
    let tracer = provider.tracer("blaster");
    let started = Instant::now();
    let total = rate * seconds;
    // Spans go out in slices of a millisecond to hold the rate.
    let per_ms = (rate / 1000).max(1);
    let mut created = 0;
    while created < total {
        for _ in 0..per_ms.min(total - created) {
            let mut span = tracer.start("GET /");
            span.set_attribute(observability_core::KeyValue::new(
                "http.request.method",
                "GET",
            ));
            span.set_attribute(observability_core::KeyValue::new(
                "http.response.status_code",
                200,
            ));
            span.end();
            created += 1;
        }
        let due = started + Duration::from_micros(created * 1_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let elapsed = started.elapsed();
    let stats = guard.shutdown_blocking()?;
    println!(
        "rate={rate} created={created} exported={} dropped={} seconds={:.2}",
        stats.exported,
        stats.dropped(),
        elapsed.as_secs_f64()
    );
    Ok(())
}
