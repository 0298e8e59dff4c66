//! Counting the bytes of one side of a stream as they move, whichever
//! engine moves them: [`Tallied`] wraps a stream and adds what is read
//! from it and written to it into a shared [`Tally`], so a status page can
//! show a long stream's bytes while it runs, not only once it ends.
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::relayable::Relayable;

/// Bytes read from and written to the tallied sides of streams; shared by
/// every stream counted into it.
#[derive(Debug, Default)]
pub struct Tally {
    read: AtomicU64,
    written: AtomicU64,
}

impl Tally {
    /// Bytes read from the tallied sides so far.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Bytes written to the tallied sides so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Counts `n` bytes read from a tallied side by other means (read
    /// ahead before the stream started).
    pub fn add_read(&self, n: u64) {
        self.read.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` bytes written to a tallied side by other means.
    pub fn add_written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }
}

/// A stream whose bytes are counted into a [`Tally`] as they move.
pub struct Tallied<S> {
    inner: S,
    tally: Arc<Tally>,
}

impl<S> Tallied<S> {
    /// Counts `inner`'s bytes into `tally`.
    pub fn new(inner: S, tally: Arc<Tally>) -> Self {
        Self { inner, tally }
    }
}

/// Bytes relayed in the kernel bypass `poll_read`/`poll_write` and are
/// counted here instead.
impl<S: Relayable> Relayable for Tallied<S> {
    fn socket(&self) -> Option<&TcpStream> {
        self.inner.socket()
    }

    fn plain_tcp(&self) -> Option<&TcpStream> {
        self.inner.plain_tcp()
    }

    fn bytes_read(&self, n: u64) {
        self.tally.add_read(n);
        self.inner.bytes_read(n);
    }

    fn bytes_written(&self, n: u64) {
        self.tally.add_written(n);
        self.inner.bytes_written(n);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tallied<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.tally.add_read((buf.filled().len() - before) as u64);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tallied<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.tally.add_written(n as u64);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
