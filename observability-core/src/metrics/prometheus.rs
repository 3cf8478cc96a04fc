//! The Prometheus scrape endpoint on `OTEL_EXPORTER_PROMETHEUS_HOST` and
//! `_PORT` (specification "Prometheus Exporter": `localhost:9464`), at
//! `/metrics`: a small HTTP/1.1 responder on the export thread, bounded in
//! connections, request size and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use observability_metrics::PrometheusService;
use observability_metrics::prometheus::Format;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, oneshot};

use crate::config::MetricsSettings;
use crate::export::runtime::ExportRuntime;

/// Scrapes answered at once at most; more connections are closed.
const MAX_CONNECTIONS: usize = 8;
/// The request head read at most.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// One scrape's time at most, reading and writing.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// Listens now (so a port in use is reported at start) and serves on the
/// export thread until the returned sender fires.
pub(super) fn serve(
    settings: &MetricsSettings,
    service: PrometheusService,
    runtime: &ExportRuntime,
) -> Result<(SocketAddr, oneshot::Sender<()>), String> {
    let host = settings.prometheus_host.trim_matches(['[', ']']);
    let listener = std::net::TcpListener::bind((host, settings.prometheus_port))
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| {
            format!(
                "the Prometheus endpoint could not listen on {}:{}: {e}; set OTEL_EXPORTER_PROMETHEUS_HOST/PORT, or mount observability_core::prometheus_service() on your router",
                settings.prometheus_host, settings.prometheus_port
            )
        })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let listener = {
        let _enter = runtime.handle().enter();
        tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?
    };
    let (stop, mut stopped) = oneshot::channel();
    let service = Arc::new(service);
    runtime.handle().spawn(async move {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                        continue;
                    };
                    let service = Arc::clone(&service);
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(SCRAPE_TIMEOUT, answer(stream, &service)).await;
                        drop(permit);
                    });
                }
            }
        }
    });
    Ok((addr, stop))
}

/// Reads one request head and answers it; the connection then closes.
async fn answer(
    mut stream: tokio::net::TcpStream,
    service: &PrometheusService,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..n]);
        if head.len() > MAX_REQUEST_BYTES {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            )
            .await;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default();
    let path = request_line.next().unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    let accept = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("accept"))
        .map(|(_, value)| value.trim());
    if path != "/metrics" {
        return respond(&mut stream, "404 Not Found", "text/plain", "try /metrics\n").await;
    }
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", "").await;
    }
    let format = Format::from_accept(accept);
    let body = service.render(format);
    let body = if method == "HEAD" { "" } else { body.as_str() };
    respond(&mut stream, "200 OK", format.content_type(), body).await
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
