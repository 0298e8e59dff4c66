//! A stream sealed end to end, wrapped around its local side: [`Sealing`]
//! takes a local connection (the client a use accepted, or the service a
//! serve reached) and shows the relay, which carries it to the route,
//! only sealed records (`proto::e2e::record`). So the route relays bytes
//! it cannot read or change unnoticed, and the path to it (spares, bytes
//! sent ahead, the bridge) needs no change.
//!
//! Reading it gives the local side's bytes sealed, preceded by the
//! stream's header on the visiting side, and a close record at the local
//! side's end. Writing it takes sealed bytes from the route and writes
//! what they open to to the local side; shutting it down (the route's
//! side ended) is an error unless the close record came, and so is any
//! record that fails to open: the bridge then resets both ends instead
//! of passing on wrong or missing bytes. Buffers are held only while
//! bytes move. Bytes never move in the kernel here: each passes through
//! the cipher. Bytes from the route are read straight into the buffer
//! their records are opened in ([`Relayable::poll_pull`]).
use proto::e2e::record::{
    wire_len, Opened, Opener, RecordError, Sealer, MAX_PAYLOAD, MAX_RECORD, OVERHEAD, PAYLOAD_AT,
};
use proto::e2e::stream::StreamCrypto;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::pool::{give_buffer, take_buffer, BUFFER_SIZE};
use super::relayable::Relayable;

// A whole record fits a buffer.
const _: () = assert!(BUFFER_SIZE >= MAX_RECORD);

/// A local connection whose bytes travel sealed.
pub struct Sealing<S> {
    local: S,
    outgoing: Outgoing,
    incoming: Incoming,
}

/// Toward the route: sealed bytes not yet handed to the reader
/// (`pending[at..]`: the header, or a record that did not fit).
struct Outgoing {
    sealer: Sealer,
    pending: Vec<u8>,
    at: usize,
    /// The local side ended and the close record is sealed.
    closed: bool,
    /// The scratch buffer for a record that does not fit the reader's.
    scratch: Option<Box<[u8]>>,
}

/// From the route: sealed bytes `buf[start..end]`, of which the first
/// record may be opened already, its payload `plain` still to write.
struct Incoming {
    opener: Opener,
    buf: Option<Box<[u8]>>,
    start: usize,
    end: usize,
    plain: std::ops::Range<usize>,
    /// Length of the opened record whose payload is `plain`.
    record: usize,
    closed: bool,
}

fn broken(err: RecordError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl<S> Sealing<S> {
    /// Seals `local`'s stream with `crypto`; `header` goes first (the
    /// visiting side's stream header; empty on the serving side).
    pub fn new(local: S, crypto: StreamCrypto, header: &[u8]) -> Self {
        Self {
            local,
            outgoing: Outgoing {
                sealer: crypto.sealer,
                pending: header.to_vec(),
                at: 0,
                closed: false,
                scratch: None,
            },
            incoming: Incoming {
                opener: crypto.opener,
                buf: None,
                start: 0,
                end: 0,
                plain: 0..0,
                record: 0,
                closed: false,
            },
        }
    }
}

impl Outgoing {
    /// Hands out what is pending; `false` if nothing was.
    fn hand_out(&mut self, out: &mut ReadBuf<'_>) -> bool {
        if self.at == self.pending.len() {
            return false;
        }
        let n = (self.pending.len() - self.at).min(out.remaining());
        out.put_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        if self.at == self.pending.len() {
            self.pending = Vec::new();
            self.at = 0;
        }
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sealing<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let outgoing = &mut this.outgoing;
        if outgoing.hand_out(out) || outgoing.closed {
            return Poll::Ready(Ok(()));
        }
        // Read the local bytes straight into the reader's buffer, leaving
        // room for the record around them, and seal them there; when it
        // is too small for that, into a scratch record.
        let direct = out.remaining() > OVERHEAD;
        let room = if direct {
            out.initialize_unfilled()
        } else {
            outgoing
                .scratch
                .get_or_insert_with(|| take_buffer(BUFFER_SIZE))
        };
        let max = (room.len() - OVERHEAD).min(MAX_PAYLOAD);
        let mut payload = ReadBuf::new(&mut room[PAYLOAD_AT..PAYLOAD_AT + max]);
        let read = Pin::new(&mut this.local).poll_read(cx, &mut payload);
        let n = payload.filled().len();
        match read {
            Poll::Pending => {
                if let Some(scratch) = outgoing.scratch.take() {
                    give_buffer(scratch);
                }
                return Poll::Pending;
            }
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Ready(Ok(())) if n == 0 => {
                outgoing.sealer.seal_close(&mut outgoing.pending);
                outgoing.closed = true;
                outgoing.hand_out(out);
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Ok(())) => {}
        }
        let len = outgoing.sealer.seal_in_place(room, n);
        if direct {
            out.advance(len);
        } else {
            outgoing.pending.extend_from_slice(&room[..len]);
            outgoing.hand_out(out);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> Sealing<S> {
    /// Opens what has come and writes it to the local side, until all of
    /// it is written or the local side would block.
    fn poll_deliver(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let incoming = &mut self.incoming;
        loop {
            let Some(buf) = incoming.buf.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            if !incoming.plain.is_empty() {
                let bytes = &buf[incoming.plain.clone()];
                let n = ready!(Pin::new(&mut self.local).poll_write(cx, bytes))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                incoming.plain.start += n;
                if incoming.plain.is_empty() {
                    incoming.start += incoming.record;
                }
                continue;
            }
            match incoming
                .opener
                .open(&mut buf[incoming.start..incoming.end])
                .map_err(broken)?
            {
                Opened::Incomplete => {
                    incoming.release_if_empty();
                    return Poll::Ready(Ok(()));
                }
                Opened::Data { consumed, payload } => {
                    let start = incoming.start;
                    incoming.plain = start + payload.start..start + payload.end;
                    incoming.record = consumed;
                    if incoming.plain.is_empty() {
                        incoming.start += consumed;
                    }
                }
                Opened::Closed { consumed } => {
                    incoming.start += consumed;
                    incoming.closed = true;
                    if incoming.start < incoming.end {
                        return Poll::Ready(Err(broken(RecordError::AfterClose)));
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Sealing<S> {
    /// Reads sealed bytes from `input` straight into the buffer they are
    /// opened in, and delivers them (see [`Relayable::poll_pull`]).
    fn poll_pull_sealed(
        &mut self,
        cx: &mut Context<'_>,
        input: Pin<&mut dyn AsyncRead>,
    ) -> Poll<io::Result<usize>> {
        // What came before goes out first, so at most one buffer waits.
        ready!(self.poll_deliver(cx))?;
        let incoming = &mut self.incoming;
        let limit = match incoming.room() {
            Ok(limit) => limit,
            Err(err) => return Poll::Ready(Err(broken(err))),
        };
        let buf = incoming.buf.as_mut().expect("room() took a buffer");
        let mut read = ReadBuf::new(&mut buf[incoming.end..limit]);
        if input.poll_read(cx, &mut read)?.is_pending() {
            incoming.release_if_empty();
            return Poll::Pending;
        }
        let n = read.filled().len();
        if n > 0 && incoming.closed {
            return Poll::Ready(Err(broken(RecordError::AfterClose)));
        }
        incoming.end += n;
        if n == 0 {
            // Told on as a shutdown, which checks that the stream closed.
            return Poll::Ready(Ok(0));
        }
        if let Poll::Ready(Err(err)) = self.poll_deliver(cx) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(n))
    }
}

impl Incoming {
    /// Holds no buffer while nothing waits in it (idle streams cost none).
    fn release_if_empty(&mut self) {
        if self.start == self.end {
            if let Some(buf) = self.buf.take() {
                give_buffer(buf);
            }
            (self.start, self.end) = (0, 0);
        }
    }

    /// Where the next read into `buf` should stop: at the end of the
    /// record under way when its length is known, so records that fill the
    /// buffer (a bulk transfer) each start at its beginning and are never
    /// moved; else at the buffer's end. A record that would not fit moves
    /// to the beginning first. Takes a buffer if none is held.
    fn room(&mut self) -> Result<usize, RecordError> {
        let buf = self.buf.get_or_insert_with(|| take_buffer(BUFFER_SIZE));
        let capacity = buf.len();
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        let need = wire_len(&buf[self.start..self.end])?.unwrap_or(MAX_RECORD);
        if self.start + need > capacity {
            buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let known = self.end - self.start >= 2;
        Ok(if known { self.start + need } else { capacity })
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sealing<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // The same as pulling from a reader that holds `data`.
        let mut input = data;
        self.poll_pull_sealed(cx, Pin::new(&mut input) as _)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_deliver(cx))?;
        Pin::new(&mut self.local).poll_flush(cx)
    }

    /// The route's side has ended: the local side is told so only if the
    /// stream was closed by its close record.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_deliver(cx))?;
        if !self.incoming.closed {
            return Poll::Ready(Err(broken(RecordError::Truncated)));
        }
        Pin::new(&mut self.local).poll_shutdown(cx)
    }
}

impl<S: Relayable> Relayable for Sealing<S> {
    fn socket(&self) -> Option<&TcpStream> {
        self.local.socket()
    }

    fn poll_pull(
        &mut self,
        cx: &mut Context<'_>,
        input: Pin<&mut dyn AsyncRead>,
    ) -> Option<Poll<io::Result<usize>>> {
        Some(self.poll_pull_sealed(cx, input))
    }
}

impl<S> Drop for Sealing<S> {
    fn drop(&mut self) {
        for buf in [self.incoming.buf.take(), self.outgoing.scratch.take()]
            .into_iter()
            .flatten()
        {
            give_buffer(buf);
        }
    }
}

#[cfg(test)]
mod tests;
