//! What [`super::bridge`] needs of a stream: its bytes, and whether it is
//! a plain TCP socket the kernel may move bytes on directly.
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A stream [`super::bridge`] can carry.
///
/// Between two plain TCP sockets on Linux, bytes move inside the kernel
/// (see `relay::splice`) and never pass through the stream's `AsyncRead` or
/// `AsyncWrite`; a layer that watches its bytes (a counter) is told of them
/// through the `bytes_*` hooks instead.
pub trait Relayable: AsyncRead + AsyncWrite + Unpin {
    /// The TCP socket beneath any layers (TLS included), to arm its
    /// reset-on-close while the stream runs (see
    /// [`crate::socket::reset_on_close`]); `None` for memory pipes.
    fn socket(&self) -> Option<&TcpStream>;

    /// The plain TCP socket beneath, if bytes may be moved on it directly;
    /// `None` when they must pass through this layer (TLS, memory pipes).
    fn plain_tcp(&self) -> Option<&TcpStream> {
        None
    }

    /// `n` bytes were read from [`plain_tcp`](Self::plain_tcp) directly.
    fn bytes_read(&self, _n: u64) {}

    /// `n` bytes were written to [`plain_tcp`](Self::plain_tcp) directly.
    fn bytes_written(&self, _n: u64) {}

    /// For a layer that wants what it is given in a buffer of its own (to
    /// open sealed records where they land, sparing a copy): reads from
    /// `input` itself and writes it on, answering how many bytes it read,
    /// 0 once `input` ended and all it read is written. `None` (the
    /// default): the copy engine reads into its buffer and writes that.
    fn poll_pull(
        &mut self,
        _cx: &mut Context<'_>,
        _input: Pin<&mut dyn AsyncRead>,
    ) -> Option<Poll<io::Result<usize>>> {
        None
    }
}

impl Relayable for TcpStream {
    fn socket(&self) -> Option<&TcpStream> {
        Some(self)
    }

    fn plain_tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl Relayable for tokio::io::DuplexStream {
    fn socket(&self) -> Option<&TcpStream> {
        None
    }
}
