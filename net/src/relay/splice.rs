//! Relaying between two plain TCP sockets inside the kernel (Linux).
//!
//! A mapped connection crosses three forwarding processes, and copying
//! every byte into user space and out again in each of them made
//! single-stream throughput CPU-bound. Here splice(2) moves the bytes
//! socket → pipe → socket as page references, never through our memory.
//!
//! Pipes are file descriptors, and a process already holds two sockets per
//! connection, so (as the copy engine does with buffers) a direction takes a pipe
//! only when it has data to move and gives it back, empty, once its socket
//! has nothing more to read: idle connections hold none. When no pipe can
//! be made (the descriptor limit is reached), the direction copies through
//! a buffer until it next goes idle, then tries a pipe again.
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::OwnedFd;
use std::task::{ready, Context, Poll};

use rustix::io::Errno;
use rustix::net::{recv, send, RecvFlags, SendFlags, Shutdown};
use rustix::pipe::{
    fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags,
};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::pool::{give_buffer, take_buffer, BUFFER_SIZE};
use super::relayable::Relayable;

/// Pipe capacity asked for (Linux's default is 64 KiB): the most one
/// direction moves per pair of splice calls. In bench runs through the
/// three hops on loopback, 256 KiB took 25% less CPU per byte than 64 KiB
/// and as little as 1 MiB, while 1 MiB let the kernel grow socket buffers
/// until a stalled connection held 2-3 times as many bytes.
pub const PIPE_SIZE: usize = 256 * 1024;

/// Empty pipes kept per thread, so a connection going from idle to busy
/// and back (every request/response) does not create and close a pipe
/// each time. Few, as each costs two descriptors however many
/// connections are idle.
const SPARE_PIPES: usize = 4;

/// The sockets are non-blocking already; NONBLOCK makes the pipe side
/// never wait either. MOVE is only a hint: socket pages are passed by
/// reference either way.
const FLAGS: SpliceFlags = SpliceFlags::MOVE.union(SpliceFlags::NONBLOCK);

thread_local! {
    static SPARE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
    static SPLICED: Cell<u64> = const { Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// Makes pipes fail as at the descriptor limit, to test the fallback.
    static REFUSE_PIPES: Cell<bool> = const { Cell::new(false) };
}

/// Bytes this thread has delivered through pipes with splice(2) (the
/// buffer fallback does not count), so tests can tell which path was taken.
pub fn spliced_on_this_thread() -> u64 {
    SPLICED.get()
}

/// A pipe and the bytes it holds: splice(2) needs one between two sockets.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    held: usize,
}

impl Pipe {
    /// A spare pipe of this thread, or a new one if one worth using can
    /// be made.
    fn take() -> Option<Self> {
        #[cfg(test)]
        if REFUSE_PIPES.get() {
            return None;
        }
        if let Some(pipe) = SPARE.with(|spare| spare.borrow_mut().pop()) {
            return Some(pipe);
        }
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).ok()?;
        let capacity = fcntl_setpipe_size(&write, PIPE_SIZE)
            .or_else(|_| fcntl_getpipe_size(&write))
            .ok()?;
        // A user over its pipe memory limit gets two-page pipes: a buffer
        // moves more per call than that.
        (capacity >= BUFFER_SIZE).then_some(Self {
            read,
            write,
            held: 0,
        })
    }
}

/// Where a direction holds bytes between reading and writing them.
enum Stage {
    Pipe(Pipe),
    /// The fallback without a pipe; unwritten bytes are `buf[start..end]`.
    Buffer {
        buf: Box<[u8]>,
        start: usize,
        end: usize,
    },
}

impl Stage {
    /// A pipe if one can be had, else a buffer.
    fn take() -> Self {
        Pipe::take().map_or_else(Self::buffer, Stage::Pipe)
    }

    fn buffer() -> Self {
        Stage::Buffer {
            buf: take_buffer(BUFFER_SIZE),
            start: 0,
            end: 0,
        }
    }

    /// Bytes read and not yet written.
    fn held(&self) -> usize {
        match self {
            Stage::Pipe(pipe) => pipe.held,
            Stage::Buffer { start, end, .. } => end - start,
        }
    }

    /// Reads what `from` has into this empty stage; 0 means EOF.
    fn fill(&mut self, from: &TcpStream) -> io::Result<usize> {
        match self {
            Stage::Pipe(pipe) => match splice(from, None, &pipe.write, None, PIPE_SIZE, FLAGS) {
                // At the urgent mark with the peer's FIN already queued,
                // splice(2) says 0 although bytes remain past the mark:
                // not EOF yet, copy them as below.
                Ok(0) if bytes_waiting(from)? => {
                    std::mem::replace(self, Self::buffer()).give_back();
                    self.fill(from)
                }
                Ok(n) => {
                    pipe.held += n;
                    Ok(n)
                }
                // splice(2) stops at TCP urgent data and says EAGAIN; only
                // read(2) goes past it (dropping the urgent byte, as the
                // copy path always has). So EAGAIN with bytes waiting
                // means: copy until this direction is next idle.
                Err(Errno::AGAIN) if bytes_waiting(from)? => {
                    std::mem::replace(self, Self::buffer()).give_back();
                    self.fill(from)
                }
                Err(err) => Err(err.into()),
            },
            Stage::Buffer { buf, start, end } => {
                let n = rustix::io::read(from, &mut buf[..])?;
                (*start, *end) = (0, n);
                Ok(n)
            }
        }
    }

    /// Writes what it can of the held bytes to `to`.
    ///
    /// splice(2) cannot ask for MSG_NOSIGNAL: a peer gone away raises
    /// SIGPIPE, which Rust programs ignore, so it arrives as EPIPE.
    fn drain(&mut self, to: &TcpStream) -> io::Result<usize> {
        match self {
            Stage::Pipe(pipe) => {
                let n = splice(&pipe.read, None, to, None, pipe.held, FLAGS)?;
                pipe.held = pipe.held.saturating_sub(n);
                SPLICED.set(SPLICED.get() + n as u64);
                Ok(n)
            }
            Stage::Buffer { buf, start, end } => {
                let n = send(to, &buf[*start..*end], SendFlags::NOSIGNAL)?;
                *start += n;
                Ok(n)
            }
        }
    }

    /// Keeps an empty stage for reuse on this thread (within bounds); a
    /// pipe still holding bytes is closed, never handed to another stream.
    fn give_back(self) {
        match self {
            Stage::Pipe(pipe) if pipe.held == 0 => SPARE.with(|spare| {
                let mut spare = spare.borrow_mut();
                if spare.len() < SPARE_PIPES {
                    spare.push(pipe);
                }
            }),
            Stage::Pipe(_) => {}
            Stage::Buffer { buf, .. } => give_buffer(buf),
        }
    }
}

/// Whether `socket` has bytes to read, without taking them (at EOF it
/// has none).
fn bytes_waiting(socket: &TcpStream) -> io::Result<bool> {
    match recv(socket, &mut [0u8; 1], RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((n, _)) => Ok(n > 0),
        Err(Errno::AGAIN) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// A fill of fewer bytes than this most likely took all the socket had
/// (a request, a reply): the next look is a peek, not another fill.
const SMALL_FILL: usize = 16 * 1024;

/// Peeks at `socket`: `WouldBlock` when it has nothing to read, so that
/// `try_io` clears its readiness. A byte or EOF waiting is `Ok`.
fn peek(socket: &TcpStream) -> io::Result<usize> {
    Ok(recv(socket, &mut [0u8; 1], RecvFlags::PEEK | RecvFlags::DONTWAIT)?.0)
}

/// One side of the relay: its socket, and the stream to tell of the bytes
/// that bypassed it.
struct End<'a, S> {
    tcp: &'a TcpStream,
    stream: &'a S,
}

/// One direction of the relay.
#[derive(Default)]
struct Direction {
    /// Present only between a read and the last write of what it read.
    stage: Option<Stage>,
    /// The reader reached EOF.
    eof: bool,
    /// The writer has been shut down; this direction is finished.
    done: bool,
    /// The last fill was small: peek before the next. Told "nothing",
    /// one peek ends the burst, where a fill that finds nothing costs a
    /// second call to tell an urgent mark (see [`Stage::fill`]) from an
    /// empty socket.
    look_first: bool,
    /// Bytes written so far.
    total: u64,
}

/// Readiness was stale (WouldBlock: `try_io` has cleared it, so the next
/// readiness poll waits) or a signal interrupted the call: try again.
fn try_again(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

impl Direction {
    /// Moves bytes from `from` to `to` until it would block, or until the
    /// reader's EOF has been passed on as a shutdown of the writer.
    fn poll<R: Relayable, W: Relayable>(
        &mut self,
        cx: &mut Context<'_>,
        from: &End<'_, R>,
        to: &End<'_, W>,
    ) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            while let Some(stage) = self.stage.as_mut().filter(|s| s.held() > 0) {
                ready!(to.tcp.poll_write_ready(cx))?;
                match to.tcp.try_io(Interest::WRITABLE, || stage.drain(to.tcp)) {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => {
                        self.total += n as u64;
                        to.stream.bytes_written(n as u64);
                    }
                    Err(err) if try_again(&err) => {}
                    Err(err) => return Poll::Ready(Err(err)),
                }
            }
            if self.eof {
                // All written: pass the half-close on.
                self.release();
                rustix::net::shutdown(to.tcp, Shutdown::Write)?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            if std::mem::take(&mut self.look_first) {
                // Nothing waiting clears the readiness, and the wait below
                // begins; bytes, or EOF, waiting are filled as usual.
                match from.tcp.try_io(Interest::READABLE, || peek(from.tcp)) {
                    Ok(_) => {}
                    Err(err) if try_again(&err) => {}
                    Err(err) => return Poll::Ready(Err(err)),
                }
            }
            match from.tcp.poll_read_ready(cx) {
                Poll::Ready(result) => result?,
                Poll::Pending => {
                    // Nothing to read for now: hold no pipe while idle.
                    self.release();
                    return Poll::Pending;
                }
            }
            let stage = self.stage.get_or_insert_with(Stage::take);
            match from.tcp.try_io(Interest::READABLE, || stage.fill(from.tcp)) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    from.stream.bytes_read(n as u64);
                    self.look_first = n < SMALL_FILL;
                }
                Err(err) if try_again(&err) => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    /// Gives the (empty) stage back: this direction is idle or finished.
    fn release(&mut self) {
        if let Some(stage) = self.stage.take() {
            stage.give_back();
        }
    }
}

/// Relays `a` to `b` and `b` to `a` in the kernel until both directions
/// have reached EOF and passed it on, with the semantics of
/// [`super::copy::copy_both`]. `None` unless both are plain TCP sockets.
pub(crate) fn copy_both<'a, A: Relayable, B: Relayable>(
    a: &'a A,
    b: &'a B,
) -> Option<impl Future<Output = io::Result<(u64, u64)>> + 'a> {
    let a = End {
        tcp: a.plain_tcp()?,
        stream: a,
    };
    let b = End {
        tcp: b.plain_tcp()?,
        stream: b,
    };
    let (mut ab, mut ba) = (Direction::default(), Direction::default());
    let mut turns = super::turns::Turns::default();
    Some(poll_fn(move |cx| {
        ready!(turns.poll_both(|forward| if forward {
            ab.poll(cx, &a, &b)
        } else {
            ba.poll(cx, &b, &a)
        }))?;
        Poll::Ready(Ok((ab.total, ba.total)))
    }))
}

#[cfg(test)]
mod tests;
