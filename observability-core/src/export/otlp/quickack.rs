//! Connections that acknowledge what they receive at once.
//!
//! A receiver that keeps Nagle's algorithm on (tonic's server unless told
//! otherwise, and many sidecars built on it) holds each small write back
//! until its previous one is acknowledged. The exporter's side delays its
//! acknowledgements (up to 40 ms on Linux) when it has nothing to send, and
//! while it waits for the receiver's HTTP/2 `WINDOW_UPDATE` or answer, it
//! has nothing to send: every export then stalls for the delay, and at a
//! high span rate the queue overflows. Asking the kernel to acknowledge
//! every segment at once (`TCP_QUICKACK`, which Linux clears again as it
//! sees fit, so it is set after every read) removes the stall; it costs one
//! system call per read on the export thread, none on the request path.
//! Elsewhere the connection is used as it is.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An [`HttpConnector`] whose connections acknowledge at once.
#[derive(Clone, Debug)]
pub(super) struct QuickAckConnector(pub(super) HttpConnector);

impl tower_service::Service<Uri> for QuickAckConnector {
    type Response = QuickAckStream;
    type Error = <HttpConnector as tower_service::Service<Uri>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<QuickAckStream, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let stream = connecting.await?;
            quick_ack(stream.inner());
            Ok(QuickAckStream(stream))
        })
    }
}

/// Turns on immediate acknowledgements (Linux; elsewhere nothing). A
/// failure is harmless: the connection only keeps its delayed ones.
fn quick_ack(stream: &TcpStream) {
    #[cfg(target_os = "linux")]
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
}

/// A TCP connection that re-arms immediate acknowledgements after every
/// read.
#[derive(Debug)]
pub(super) struct QuickAckStream(TokioIo<TcpStream>);

impl Connection for QuickAckStream {
    fn connected(&self) -> Connected {
        self.0.connected()
    }
}

impl Read for QuickAckStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let read = Pin::new(&mut self.0).poll_read(cx, buf);
        if read.is_ready() {
            quick_ack(self.0.inner());
        }
        read
    }
}

impl Write for QuickAckStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
}
