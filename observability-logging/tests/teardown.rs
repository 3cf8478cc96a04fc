//! An event logged while its thread is being torn down (from a
//! thread-local whose destructor runs after the layer's buffers are gone)
//! is still written, and nothing panics: a panic in a thread-local
//! destructor aborts the process.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, Mutex};

use observability_logging::LogLayer;
use tracing_subscriber::layer::SubscriberExt;

/// Logs an event when dropped.
struct LogsWhenDropped;

impl Drop for LogsWhenDropped {
    fn drop(&mut self) {
        tracing::warn!("from a thread-local destructor");
    }
}

thread_local! {
    static HELD: RefCell<Option<LogsWhenDropped>> = const { RefCell::new(None) };
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_event_logged_in_a_thread_local_destructor_is_written() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::registry()
        .with(LogLayer::builder().writer(move || writer.clone()).build());
    let dispatch = tracing::Dispatch::new(subscriber);
    std::thread::spawn(move || {
        // The default for good, so that it is there when the thread's
        // destructors run.
        std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        // Registered before the layer's buffers, so destroyed after them.
        HELD.with(|held| *held.borrow_mut() = Some(LogsWhenDropped));
        tracing::info!("while the thread runs");
    })
    .join()
    .unwrap();
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("while the thread runs"), "{text}");
    assert!(text.contains("from a thread-local destructor"), "{text}");
}
