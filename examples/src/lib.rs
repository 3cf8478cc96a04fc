//! What the examples share: waiting for the signal to stop.

/// Resolves on ctrl-c or SIGTERM (what process managers and container
/// runtimes send), so a serving example stops the way it does on ctrl-c:
/// stop serving, flush telemetry, exit.
pub async fn shutdown_signal() {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
