//! Sending a stream's first bytes ahead of the answer that starts it.
//!
//! A stream is asked for with one frame (`Visit` from the visiting vnet,
//! `Open` from the route) and started by the answer (`Ready`, `Opened`).
//! Holding the client's first bytes until the answer would add a round
//! trip across the route to every new connection; instead they follow the
//! request at once and wait in the other side's socket.
//!
//! Until the answer comes, what was sent is kept. The side asked starts
//! carrying bytes only after it has answered, so a connection that closes
//! without answering has carried none of them further, and the same bytes
//! can be sent again on another connection: nothing is lost or doubled.
use bytes::BytesMut;
use futures::{FutureExt, SinkExt, StreamExt};
use std::cell::RefCell;
use std::fmt::Display;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_util::codec::{Decoder, Encoder, Framed};

/// Most bytes sent ahead of an answer; after that, reading the source
/// waits for it. Enough for a first request (an HTTP request, a TLS
/// client hello) while bounding what a stream holds while it starts.
pub const AHEAD_LIMIT: usize = 16 * 1024;

/// Most bytes one read takes: most first requests fit in one.
const READ_CHUNK: usize = 4096;

/// Bytes read from a stream's source and sent ahead of the answer.
#[derive(Debug, Default)]
pub struct Ahead {
    /// Everything read from the source so far; sent first on each
    /// connection asked.
    pub bytes: BytesMut,
    /// The source has reached EOF.
    pub eof: bool,
}

/// How waiting for an answer ended.
#[derive(Debug)]
pub enum Answered<T> {
    /// The answer, after everything in [`Ahead`] was sent.
    Answer(T),
    /// The connection closed or failed before answering (why, for logs).
    /// None of the bytes sent on it went further; [`Ahead`] still holds
    /// them for another connection.
    Lost(String),
    /// Reading the source failed: its peer is gone.
    SourceFailed(io::Error),
}

impl Ahead {
    /// Starts with `leftover`: bytes of the source read before (to be
    /// sent first).
    pub fn new(leftover: &[u8]) -> Self {
        Self {
            bytes: BytesMut::from(leftover),
            eof: false,
        }
    }

    /// Sends `request` on `to` with the bytes held right behind it (one
    /// write), then as [`until_answer`](Self::until_answer).
    pub async fn ask<R, S, C, M>(
        &mut self,
        from: &mut R,
        to: &mut Framed<S, C>,
        request: M,
    ) -> Answered<<C as Decoder>::Item>
    where
        R: AsyncRead + Unpin,
        S: AsyncRead + AsyncWrite + Unpin,
        C: Decoder + Encoder<M>,
        <C as Decoder>::Error: Display,
        <C as Encoder<M>>::Error: Display,
    {
        if let Err(err) = to.feed(request).await {
            return Answered::Lost(err.to_string());
        }
        self.until_answer(from, to).await
    }

    /// Sends the bytes held to `to`, then whatever `from` gives (up to
    /// [`AHEAD_LIMIT`] in all), until `to` answers with a frame. Bytes
    /// `from` already has go in the same write as those held.
    ///
    /// Whatever `to` sends after its answer stays in its read buffer.
    /// Cancel-safe as to the source: every byte read from `from` is in
    /// `self.bytes`, whether or not it was sent yet.
    pub async fn until_answer<R, S, C>(
        &mut self,
        from: &mut R,
        to: &mut Framed<S, C>,
    ) -> Answered<<C as Decoder>::Item>
    where
        R: AsyncRead + Unpin,
        S: AsyncRead + AsyncWrite + Unpin,
        C: Decoder,
        <C as Decoder>::Error: Display,
    {
        // What the source has already goes in the same write.
        if let Some(read) = self
            .room()
            .and_then(|room| read_some(from, &mut self.bytes, room).now_or_never())
        {
            if let Err(err) = self.got(read) {
                return Answered::SourceFailed(err);
            }
        }
        let mut sent = 0;
        loop {
            if sent < self.bytes.len() || !to.write_buffer().is_empty() {
                // Behind whatever frame waits in the write buffer.
                let mut out = to.write_buffer_mut().split();
                out.extend_from_slice(&self.bytes[sent..]);
                sent = self.bytes.len();
                if let Err(err) = send(to.get_mut(), &out).await {
                    return Answered::Lost(err.to_string());
                }
            }
            let room = self.room();
            let event = tokio::select! {
                answer = to.next() => Event::Answer(answer),
                read = read_some(from, &mut self.bytes, room.unwrap_or(0)), if room.is_some() => {
                    Event::Read(read)
                }
            };
            match event {
                Event::Answer(Some(Ok(answer))) => return Answered::Answer(answer),
                Event::Answer(Some(Err(err))) => return Answered::Lost(err.to_string()),
                Event::Answer(None) => return Answered::Lost("closed before answering".into()),
                Event::Read(read) => {
                    if let Err(err) = self.got(read) {
                        return Answered::SourceFailed(err);
                    }
                }
            }
        }
    }

    /// How much more may be read from the source now, if anything.
    fn room(&self) -> Option<usize> {
        let room = AHEAD_LIMIT.saturating_sub(self.bytes.len());
        (room > 0 && !self.eof).then_some(room)
    }

    /// Takes note of a read from the source (0 bytes: EOF).
    fn got(&mut self, read: io::Result<usize>) -> io::Result<()> {
        self.eof |= read? == 0;
        Ok(())
    }
}

async fn send<S: AsyncWrite + Unpin>(to: &mut S, bytes: &[u8]) -> io::Result<()> {
    to.write_all(bytes).await?;
    to.flush().await
}

enum Event<T> {
    Answer(Option<T>),
    Read(io::Result<usize>),
}

thread_local! {
    /// Where reads land before they are copied out, so a stream holds
    /// exactly what it read (usually a few bytes), not a read-sized buffer
    /// that, freed once the stream starts, would leave holes in the heap
    /// under thousands of idle connections.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Reads what `from` has, at most `room` bytes, onto the end of `into`.
async fn read_some<R: AsyncRead + Unpin>(
    from: &mut R,
    into: &mut BytesMut,
    room: usize,
) -> io::Result<usize> {
    poll_fn(|cx| {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut buf = ReadBuf::new(&mut scratch[..room.min(READ_CHUNK)]);
            ready!(Pin::new(&mut *from).poll_read(cx, &mut buf))?;
            into.extend_from_slice(buf.filled());
            Poll::Ready(Ok(buf.filled().len()))
        })
    })
    .await
}

#[cfg(test)]
mod tests;
