//! Memory stays bounded when every request is hostile and the collector is
//! a black hole: 2,800 requests through the server layer, each with ~315 KB
//! of headers (user agent, host, forwarded addresses) and a 60 KB path and
//! query, all
//! different, while the collector accepts connections and never answers.
//! Its own test binary, so the resident memory it reads is its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::{HeaderValue, Request};
use tower::ServiceExt;

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn hostile(i: usize, big: &str) -> Request<axum::body::Body> {
    let text = |len: usize| HeaderValue::from_str(&format!("{i}{}", &big[..len])).unwrap();
    let path = format!(
        "/orders/{i}{}?token={}&q={}",
        &big[..30_000],
        i,
        &big[..30_000]
    );
    let mut request = Request::get(path).body(axum::body::Body::empty()).unwrap();
    let headers = request.headers_mut();
    headers.insert(http::header::USER_AGENT, text(300_000));
    headers.insert(http::header::HOST, text(10_000));
    headers.insert("x-forwarded-for", text(4_000));
    headers.insert("x-forwarded-proto", text(1_000));
    request
}

#[tokio::test(flavor = "current_thread")]
async fn hostile_requests_and_a_black_hole_collector_stay_within_50_mb() {
    let addr = observability_tests::black_hole();
    let endpoint = format!("http://{addr}");
    let guard = observability_core::builder()
        .env_lookup(move |name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            "OTEL_BSP_SCHEDULE_DELAY" => Some("100".into()),
            _ => None,
        })
        .log_writer(std::io::sink)
        .shutdown_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let layer = observability_http::ServerLayer::builder()
        .tracer_provider(guard.tracer_provider().unwrap())
        .build();
    let app: Router = Router::new()
        .route("/orders/{id}", get(|| async { "ok" }))
        .fallback(|| async { "fallback" })
        .layer(layer);
    let big = "a".repeat(300_000);
    for i in 0..100 {
        let _ = app.clone().oneshot(hostile(i, &big)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib();
    for i in 100..2_900 {
        let _ = app.clone().oneshot(hostile(i, &big)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let grown = rss_kib().saturating_sub(before);
    let stats = guard.stats();
    assert!(
        grown < 50 * 1024,
        "resident memory grew by {} MB: {stats:?}",
        grown / 1024
    );
    let stats = match guard.shutdown_blocking() {
        Ok(stats) | Err(observability_core::Error::Timeout { stats, .. }) => stats,
        Err(other) => panic!("{other}"),
    };
    assert_eq!(stats.exported + stats.dropped(), 2_900, "{stats:?}");
}
