//! Copying both ways between two streams with buffers that exist only
//! while data is moving.
//!
//! tokio's `copy_bidirectional_with_sizes` keeps two buffers per stream
//! pair for its whole life, so every idle mapped connection held 128 KiB
//! in each process it crossed. Here a direction takes a buffer when it
//! reads, and gives it back as soon as its reader has nothing more to say,
//! so idle connections hold none and busy ones reuse freed buffers.
//! A writer that reads for itself ([`Relayable::poll_pull`]: sealed
//! records opened where they land) is handed the reader instead.
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

use super::pool::{give_buffer, take_buffer};
use super::relayable::Relayable;

/// One direction of a copy.
struct Direction {
    /// Present only between a read and the last write of what it read.
    buf: Option<Box<[u8]>>,
    /// Unwritten bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The reader reached EOF.
    eof: bool,
    /// The writer has been shut down; this direction is finished.
    done: bool,
    /// Bytes written so far.
    total: u64,
    size: usize,
}

impl Direction {
    fn new(size: usize) -> Self {
        Self {
            buf: None,
            start: 0,
            end: 0,
            eof: false,
            done: false,
            total: 0,
            size,
        }
    }

    /// Moves bytes from `reader` to `writer` until it would block, or until
    /// the reader's EOF has been passed on as a shutdown of the writer.
    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead,
        W: Relayable,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            while self.start < self.end {
                let buf = self
                    .buf
                    .as_deref()
                    .expect("unwritten bytes live in the buffer");
                let n = ready!(writer.as_mut().poll_write(cx, &buf[self.start..self.end]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.start += n;
                self.total += n as u64;
            }
            if self.eof {
                // All written: pass the half-close on.
                ready!(writer.as_mut().poll_flush(cx))?;
                ready!(writer.as_mut().poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            if let Some(pulled) = writer.as_mut().get_mut().poll_pull(cx, reader.as_mut()) {
                match pulled {
                    Poll::Ready(Ok(n)) => {
                        self.total += n as u64;
                        self.eof = n == 0;
                        continue;
                    }
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => {
                        ready!(writer.as_mut().poll_flush(cx))?;
                        return Poll::Pending;
                    }
                }
            }
            let size = self.size;
            let buf = self.buf.get_or_insert_with(|| take_buffer(size));
            let mut read = ReadBuf::new(buf);
            match reader.as_mut().poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    (self.start, self.end) = (0, n);
                    self.eof = n == 0;
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => {
                    // Nothing to read for now: hold no buffer while idle,
                    // and push out what was written.
                    if let Some(buf) = self.buf.take() {
                        give_buffer(buf);
                    }
                    ready!(writer.as_mut().poll_flush(cx))?;
                    return Poll::Pending;
                }
            }
        }
    }
}

/// Copies `a` to `b` and `b` to `a` until both directions have reached EOF
/// and passed it on (a half-close one way leaves the other running).
/// Returns the bytes copied a→b and b→a.
///
/// # Errors
/// The first I/O error of either direction; the copy stops there.
pub async fn copy_both<A, B>(a: &mut A, b: &mut B, size: usize) -> io::Result<(u64, u64)>
where
    A: Relayable,
    B: Relayable,
{
    let mut ab = Direction::new(size);
    let mut ba = Direction::new(size);
    let mut turns = super::turns::Turns::default();
    poll_fn(|cx| {
        ready!(turns.poll_both(|forward| if forward {
            ab.poll(cx, Pin::new(&mut *a), Pin::new(&mut *b))
        } else {
            ba.poll(cx, Pin::new(&mut *b), Pin::new(&mut *a))
        }))?;
        Poll::Ready(Ok((ab.total, ba.total)))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn large_transfers_both_ways_with_tiny_pipes() {
        // 8-byte pipes force Pending on nearly every read and write, so
        // buffers are dropped and taken again all the time.
        let (mut client, mut a) = tokio::io::duplex(8);
        let (mut b, mut server) = tokio::io::duplex(8);
        let pump = tokio::spawn(async move { copy_both(&mut a, &mut b, 64).await });
        let up: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let down: Vec<u8> = (0..70_000u32).map(|i| (i % 241) as u8).collect();
        let (up2, down2) = (up.clone(), down.clone());
        let client_side = tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(&mut client);
            let (sent, got) = tokio::join!(
                async {
                    w.write_all(&up2).await.unwrap();
                    w.shutdown().await.unwrap();
                },
                async {
                    let mut got = Vec::new();
                    r.read_to_end(&mut got).await.unwrap();
                    got
                }
            );
            let () = sent;
            got
        });
        let (mut r, mut w) = tokio::io::split(&mut server);
        let (got_up, ()) = tokio::join!(
            async {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                got
            },
            async {
                w.write_all(&down2).await.unwrap();
                w.shutdown().await.unwrap();
            }
        );
        assert_eq!(got_up, up);
        assert_eq!(client_side.await.unwrap(), down);
        assert_eq!(pump.await.unwrap().unwrap(), (100_000, 70_000));
    }

    #[tokio::test]
    async fn an_idle_direction_holds_no_buffer() {
        let (_client, mut a) = tokio::io::duplex(64);
        let mut dir = Direction::new(1024);
        let (mut b, _server) = tokio::io::duplex(64);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(dir
            .poll(&mut cx, Pin::new(&mut a), Pin::new(&mut b))
            .is_pending());
        assert!(dir.buf.is_none(), "an idle direction kept its buffer");
    }
}
