//! A connection as both sides use it: plain TCP, or TLS 1.3 over it.
//!
//! Both programs use `Transport<TcpStream>`; generic so tests can use
//! memory pipes. The plain case is the socket itself, with no extra layer
//! on the hot path.
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

use crate::relay::Relayable;

/// Plain or TLS.
pub enum Transport<S> {
    /// No encryption.
    Plain(S),
    /// TLS, client or server side.
    Tls(Box<TlsStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Plain connections can be relayed in the kernel; TLS bytes must be
/// decrypted here.
impl<S: Relayable> Relayable for Transport<S> {
    fn socket(&self) -> Option<&TcpStream> {
        match self {
            Transport::Plain(s) => s.socket(),
            Transport::Tls(s) => s.get_ref().0.socket(),
        }
    }

    fn plain_tcp(&self) -> Option<&TcpStream> {
        match self {
            Transport::Plain(s) => s.plain_tcp(),
            Transport::Tls(_) => None,
        }
    }

    fn bytes_read(&self, n: u64) {
        if let Transport::Plain(s) = self {
            s.bytes_read(n);
        }
    }

    fn bytes_written(&self, n: u64) {
        if let Transport::Plain(s) = self {
            s.bytes_written(n);
        }
    }
}
