//! The export thread: one private current-thread tokio runtime on its own OS
//! thread, shared by every exporter. The application's runtime (if any) is
//! never used, so export works without a runtime, on a current-thread
//! runtime, and while the application blocks in shutdown.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tracing::dispatcher::WeakDispatch;

use crate::error::Error;

thread_local! {
    static EXPORT_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the caller runs on the export thread. Nothing there is traced
/// (the exporter's own HTTP/2 machinery would otherwise trace itself), and
/// nothing there may wait for the export thread.
pub(crate) fn in_export_thread() -> bool {
    EXPORT_THREAD.with(Cell::get)
}

/// Runs `f` as if on the export thread.
#[cfg(test)]
pub(crate) fn as_export_thread<R>(f: impl FnOnce() -> R) -> R {
    EXPORT_THREAD.with(|flag| flag.set(true));
    let result = f();
    EXPORT_THREAD.with(|flag| flag.set(false));
    result
}

#[derive(Debug)]
pub(crate) struct ExportRuntime {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Signalled when the thread ends (in a mutex so the guard is `Sync`).
    done: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl ExportRuntime {
    pub(crate) fn start() -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("observability-export")
            .build()
            .map_err(Error::Thread)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let (done_tx, done) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("observability-export".to_owned())
            .spawn(move || {
                EXPORT_THREAD.with(|flag| flag.set(true));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Anything still running (an export past its deadline) is
                // cancelled when the runtime drops, without waiting for it.
                runtime.shutdown_background();
                let _ = done_tx.send(());
            })
            .map_err(Error::Thread)?;
        Ok(Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
            done: std::sync::Mutex::new(done),
        })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stops the thread, cancelling whatever still runs there, and waits up
    /// to `wait` for it to end. Returns whether it ended.
    pub(crate) fn stop(&mut self, wait: Duration) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(thread) = self.thread.take() else {
            return true;
        };
        if in_export_thread() {
            return false;
        }
        let done = self
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match done.recv_timeout(wait) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                true
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
        }
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}

/// Where the export thread's warnings go: the subscriber `init` built, once
/// it exists (a weak reference, so the export thread never keeps it alive).
pub(crate) type DispatchCell = Arc<OnceLock<WeakDispatch>>;
