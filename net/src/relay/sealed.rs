//! A stream sealed end to end: [`Sealed`] wraps a connection to the route
//! and carries a stream's bytes as sealed records (`proto::e2e::record`),
//! so the route relays what it cannot read or change unnoticed.
//!
//! Reading opens records in a buffer taken only while bytes arrive;
//! writing seals what it is given into records and pushes them out in
//! batches; shutting down sends the close record. A record that fails to
//! open, or an end without the close record, is an error, so the relay
//! resets both ends instead of passing on wrong or missing bytes. Bytes
//! never move in the kernel here (`plain_tcp` is `None`): each must pass
//! through the cipher.
use bytes::Bytes;
use proto::e2e::record::{Opened, Opener, RecordError, Sealer, MAX_PAYLOAD};
use proto::e2e::stream::StreamCrypto;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::pool::{give_buffer, take_buffer, BUFFER_SIZE};
use super::relayable::Relayable;

/// Sealed bytes held before they must go out: a few records, so a bulk
/// transfer writes in large batches.
const WRITE_BATCH: usize = 64 * 1024;

/// A connection carrying one sealed stream.
pub struct Sealed<S> {
    inner: S,
    read: ReadSide,
    write: WriteSide,
}

/// Sealed bytes received: `buf[start..end]` not yet opened or handed out;
/// `plain` the opened payload being handed out.
struct ReadSide {
    opener: Opener,
    buf: Option<Box<[u8]>>,
    start: usize,
    end: usize,
    plain: std::ops::Range<usize>,
    /// Bytes of the record whose payload is `plain`, from `start`.
    record: usize,
    closed: bool,
}

/// Sealed bytes to send: `buf[sent..]`.
struct WriteSide {
    sealer: Sealer,
    buf: Vec<u8>,
    sent: usize,
    closed: bool,
}

fn broken(err: RecordError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl<S> Sealed<S> {
    /// Seals and opens one stream on `inner`; `received` are sealed bytes
    /// of it already read from `inner` (behind the stream's header).
    pub fn new(inner: S, crypto: StreamCrypto, received: &Bytes) -> Self {
        let mut read = ReadSide {
            opener: crypto.opener,
            buf: None,
            start: 0,
            end: 0,
            plain: 0..0,
            record: 0,
            closed: false,
        };
        if !received.is_empty() {
            let mut buf = take_buffer(BUFFER_SIZE.max(received.len()));
            buf[..received.len()].copy_from_slice(received);
            read.end = received.len();
            read.buf = Some(buf);
        }
        let write = WriteSide {
            sealer: crypto.sealer,
            buf: Vec::new(),
            sent: 0,
            closed: false,
        };
        Self { inner, read, write }
    }
}

impl ReadSide {
    /// Hands out opened bytes, or opens the next whole record in the
    /// buffer; `None` when more sealed bytes are needed.
    fn next(&mut self, out: &mut ReadBuf<'_>) -> io::Result<Option<()>> {
        let Some(buf) = self.buf.as_mut() else {
            return Ok(None);
        };
        if !self.plain.is_empty() {
            let n = self.plain.len().min(out.remaining());
            out.put_slice(&buf[self.plain.start..self.plain.start + n]);
            self.plain.start += n;
            if self.plain.is_empty() {
                self.start += self.record;
            }
            return Ok(Some(()));
        }
        match self
            .opener
            .open(&mut buf[self.start..self.end])
            .map_err(broken)?
        {
            Opened::Incomplete => Ok(None),
            Opened::Data { consumed, payload } => {
                self.plain = self.start + payload.start..self.start + payload.end;
                self.record = consumed;
                if self.plain.is_empty() {
                    self.start += consumed;
                }
                self.next(out)
            }
            Opened::Closed { consumed } => {
                self.start += consumed;
                if self.start < self.end {
                    return Err(broken(RecordError::AfterClose));
                }
                self.closed = true;
                self.release();
                Ok(Some(()))
            }
        }
    }

    /// Room to read more sealed bytes into: what is left of a record goes
    /// to the front first.
    fn room(&mut self) -> &mut [u8] {
        let buf = self.buf.get_or_insert_with(|| take_buffer(BUFFER_SIZE));
        if self.start > 0 {
            buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut buf[self.end..]
    }

    /// Gives the buffer back once nothing in it is waiting.
    fn release(&mut self) {
        if self.start == self.end {
            if let Some(buf) = self.buf.take() {
                give_buffer(buf);
            }
            (self.start, self.end) = (0, 0);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sealed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.read.closed {
                return Poll::Ready(Ok(()));
            }
            if this.read.next(out)?.is_some() {
                return Poll::Ready(Ok(()));
            }
            let mut room = ReadBuf::new(this.read.room());
            match Pin::new(&mut this.inner).poll_read(cx, &mut room) {
                Poll::Pending => {
                    this.read.release();
                    return Poll::Pending;
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Ready(Ok(())) => {
                    let n = room.filled().len();
                    if n == 0 {
                        // The connection ended: fine only after the close
                        // record, which `next` has seen by now if it came.
                        return Poll::Ready(Err(broken(RecordError::Truncated)));
                    }
                    this.read.end += n;
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Sealed<S> {
    /// Writes out every sealed byte held.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let write = &mut self.write;
        while write.sent < write.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &write.buf[write.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            write.sent += n;
        }
        write.buf.clear();
        write.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sealed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.write.buf.len() - self.write.sent >= WRITE_BATCH {
            ready!(self.poll_send(cx))?;
        }
        let n = data.len().min(MAX_PAYLOAD);
        let write = &mut self.write;
        write.sealer.seal(&data[..n], &mut write.buf);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        // Idle: hold no buffer.
        self.write.buf = Vec::new();
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.write.closed {
            let write = &mut self.write;
            write.sealer.seal_close(&mut write.buf);
            write.closed = true;
        }
        ready!(self.poll_send(cx))?;
        self.write.buf = Vec::new();
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: Relayable> Relayable for Sealed<S> {
    fn socket(&self) -> Option<&TcpStream> {
        self.inner.socket()
    }
}

impl<S> Drop for Sealed<S> {
    fn drop(&mut self) {
        if let Some(buf) = self.read.buf.take() {
            give_buffer(buf);
        }
    }
}

#[cfg(test)]
mod tests;
