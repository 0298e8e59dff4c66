//! A connection as both sides use it: plain TCP, or TLS 1.3 over it.
//!
//! Generic over the socket type so this crate opens no sockets; both
//! programs use `Transport<TcpStream>`. The plain case is the socket
//! itself, with no extra layer on the hot path.
use sha2::{Digest, Sha256};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

use crate::io::Spliceable;

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
impl<S: Spliceable> Spliceable for Transport<S> {
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

/// SHA-256 of a certificate's DER bytes, as 64 lowercase hex digits.
///
/// ```
/// assert_eq!(proto::transport::fingerprint(b"").len(), 64);
/// ```
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fingerprint as users write it (colons, spaces and case ignored), or
/// `None` if it is not 64 hex digits.
///
/// ```
/// use proto::transport::normalize_fingerprint;
/// let colons = "AB:".repeat(31) + "AB";
/// assert_eq!(normalize_fingerprint(&colons), Some("ab".repeat(32)));
/// assert_eq!(normalize_fingerprint("abc"), None);
/// ```
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}
