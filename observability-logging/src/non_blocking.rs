//! A writer that hands each line to a background thread, for hot paths
//! where the application must not wait on a slow terminal or pipe.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// A [`MakeWriter`] that queues each line for a background thread. When the
/// queue is full the line is dropped and counted ([`dropped`](Self::dropped)),
/// never waited for. Lines are never split: each write is one line.
#[derive(Clone, Debug)]
pub struct NonBlocking {
    sender: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// Flushes the queue and stops the background thread when dropped (waiting
/// at most one second).
#[must_use = "lines still queued are lost when the guard is dropped early"]
#[derive(Debug)]
pub struct NonBlockingGuard {
    sender: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
}

impl NonBlocking {
    /// Writes to `writer` from a thread of its own, queueing at most
    /// `capacity` lines.
    pub fn new<W: Write + Send + 'static>(writer: W, capacity: usize) -> (Self, NonBlockingGuard) {
        let (sender, receiver) = sync_channel(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("observability-log-writer".to_owned())
            .spawn(move || run(writer, receiver))
            .ok();
        (
            Self {
                sender: sender.clone(),
                dropped: Arc::new(AtomicU64::new(0)),
            },
            NonBlockingGuard {
                sender: Some(sender),
                thread,
            },
        )
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn run<W: Write>(mut writer: W, receiver: Receiver<Message>) {
    while let Ok(message) = receiver.recv() {
        match message {
            Message::Line(line) => {
                let _ = writer.write_all(&line);
            }
            Message::Flush(done) => {
                let _ = writer.flush();
                let _ = done.send(());
            }
        }
    }
    let _ = writer.flush();
}

impl Drop for NonBlockingGuard {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let (tx, rx) = sync_channel(1);
            if sender.send(Message::Flush(tx)).is_ok() {
                let _ = rx.recv_timeout(Duration::from_secs(1));
            }
        }
        // The thread ends once every `NonBlocking` clone is gone too.
        drop(self.thread.take());
    }
}

/// One line on its way to the queue.
#[derive(Debug)]
pub struct NonBlockingWriter<'a> {
    owner: &'a NonBlocking,
}

impl Write for NonBlockingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.owner.sender.try_send(Message::Line(buf.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.owner.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = NonBlockingWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        NonBlockingWriter { owner: self }
    }
}
