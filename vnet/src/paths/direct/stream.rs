//! One stream on a direct link: a QUIC bidirectional stream, carried by
//! the same copy engine as a relayed one.
//!
//! QUIC ends a stream cleanly only when told to (`finish`); anything else
//! must end it in a reset, so that a stream whose other end failed is
//! never taken for one that ended well: dropping a [`QuicStream`] that
//! was not shut down resets it, and stops its receiving side.
use proto::direct::reset;
use quinn::{RecvStream, SendStream, VarInt};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Both halves of a direct stream.
pub(crate) struct QuicStream {
    send: SendStream,
    recv: RecvStream,
    /// Our side was finished: a clean end.
    finished: bool,
}

impl QuicStream {
    /// The stream made of `send` and `recv`.
    pub(crate) fn new(send: SendStream, recv: RecvStream) -> Self {
        Self {
            send,
            recv,
            finished: false,
        }
    }

    /// Resets both ways with `code`: the peer's reads and writes fail.
    pub(crate) fn refuse(mut self, code: u32) {
        self.abort(code);
    }

    fn abort(&mut self, code: u32) {
        let code = VarInt::from_u32(code);
        let _ = self.send.reset(code);
        let _ = self.recv.stop(code);
        // The reset is what the peer gets; never a finish after it.
        self.finished = true;
    }

    /// The receiving half, to read a header before carrying the stream.
    pub(crate) fn recv(&mut self) -> &mut RecvStream {
        &mut self.recv
    }
}

impl Drop for QuicStream {
    fn drop(&mut self) {
        if !self.finished {
            self.abort(reset::CUT);
        }
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send)
            .poll_write(cx, buf)
            .map_err(io::Error::from)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let done = Pin::new(&mut self.send).poll_shutdown(cx);
        if let Poll::Ready(Ok(())) = done {
            self.finished = true;
        }
        done
    }
}

impl net::relay::Relayable for QuicStream {
    fn socket(&self) -> Option<&TcpStream> {
        None
    }
}
