//! What each end of a transfer saw: how a direction ended ([`End`]), the
//! reader's and the writer's reports, one side's report as a whole
//! ([`Side`]) with the checks and the message line made from it, and
//! [`reset`], closing a socket with RST instead of FIN.
use std::fmt;
use std::io;
use std::net::TcpStream;
use std::time::Duration;

use crate::mib;

/// Closes `stream` with a reset: SO_LINGER 0, then close, so the kernel
/// sends RST (and drops whatever was still unsent) instead of FIN.
pub fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(stream);
}

/// How one direction of a stream ended, seen by a reader or writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `read` returned 0: the peer half-closed (FIN).
    Eof,
    /// A socket error, e.g. `ConnectionReset` or `BrokenPipe`.
    Error(io::ErrorKind, String),
    /// Neither within the bound.
    TimedOut(Duration),
}

impl End {
    pub(super) fn of(err: io::Error, waited: Duration) -> End {
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => End::TimedOut(waited),
            kind => End::Error(kind, err.to_string()),
        }
    }

    /// A socket error (not a clean end, not a timeout).
    pub fn is_error(&self) -> bool {
        matches!(self, End::Error(..))
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Eof => write!(f, "a clean EOF"),
            End::Error(kind, text) => write!(f, "error {kind:?} ({text})"),
            End::TimedOut(bound) => write!(f, "neither data nor an end within {bound:?}"),
        }
    }
}

/// What the receiving side of the transfer saw.
#[derive(Debug, Clone)]
pub struct ReadReport {
    /// Bytes received.
    pub bytes: u64,
    /// How the stream ended.
    pub end: End,
    /// First offset that did not match the pattern.
    pub corrupt_at: Option<u64>,
    /// Time from the cut (the trigger) to the end, if the cut came first.
    pub end_after_cut: Option<Duration>,
    /// After a clean EOF the reader sends its byte count back and
    /// half-closes; this is how that went.
    pub echo: Option<Result<(), String>>,
}

/// What the sending side of the transfer saw.
#[derive(Debug, Clone)]
pub struct WriteReport {
    /// Bytes accepted by `write`.
    pub written: u64,
    /// A failed (or timed-out) write or shutdown.
    pub write_end: Option<End>,
    /// Time from the cut to that failure.
    pub failed_after_cut: Option<Duration>,
    /// The writer reset its own socket after the head (the cut itself).
    pub reset_self: bool,
    /// After writing everything and half-closing: the count the reader
    /// echoed and how the reverse direction ended.
    pub reverse: Option<(Option<u64>, End)>,
}

/// One side's report.
#[derive(Debug, Clone)]
pub enum Side {
    /// It received the stream.
    Reader(ReadReport),
    /// It sent the stream.
    Writer(WriteReport),
    /// It never got going: no connection, or its thread gave no report.
    Missing(String),
}

impl Side {
    /// Whether this side learned of the cut as an error (a failed read or
    /// write, or a reset on the reverse direction), within the bound.
    pub fn saw_error(&self) -> bool {
        match self {
            Side::Reader(r) => r.end.is_error(),
            Side::Writer(w) => {
                w.write_end.as_ref().is_some_and(End::is_error)
                    || w.reverse.as_ref().is_some_and(|(_, end)| end.is_error())
            }
            Side::Missing(_) => false,
        }
    }

    /// Whether this side saw the whole stream, byte-exact, and clean ends
    /// both ways (the count echo and its EOF included).
    pub fn clean(&self, total: u64) -> bool {
        match self {
            Side::Reader(r) => {
                r.bytes == total
                    && r.end == End::Eof
                    && r.corrupt_at.is_none()
                    && matches!(r.echo, Some(Ok(())))
            }
            Side::Writer(w) => {
                w.written == total
                    && w.write_end.is_none()
                    && matches!(w.reverse, Some((Some(n), End::Eof)) if n == total)
            }
            Side::Missing(_) => false,
        }
    }

    /// One line for messages, against a stream of `total` bytes.
    pub fn describe(&self, total: u64) -> String {
        match self {
            Side::Reader(r) => {
                let intact = match r.corrupt_at {
                    None => "pattern intact".to_string(),
                    Some(at) => format!("CORRUPT from byte {at}"),
                };
                let when = r
                    .end_after_cut
                    .map(|d| format!(", {} ms after the cut", d.as_millis()))
                    .unwrap_or_default();
                format!(
                    "received {} bytes ({} of {}, {intact}), then {}{when}",
                    r.bytes,
                    mib(r.bytes),
                    mib(total),
                    r.end
                )
            }
            Side::Writer(w) => {
                let mut text = format!(
                    "wrote {} bytes ({} of {})",
                    w.written,
                    mib(w.written),
                    mib(total)
                );
                if w.reset_self {
                    text.push_str(", then reset its socket itself");
                }
                if let Some(end) = &w.write_end {
                    text.push_str(&format!(", then the write failed: {end}"));
                    if let Some(d) = w.failed_after_cut {
                        text.push_str(&format!(", {} ms after the cut", d.as_millis()));
                    }
                }
                if let Some((count, end)) = &w.reverse {
                    match count {
                        Some(n) => text.push_str(&format!(
                            ", half-closed, read back the peer's count {n} and then {end}"
                        )),
                        None => text
                            .push_str(&format!(", half-closed, read back no count and then {end}")),
                    }
                }
                text
            }
            Side::Missing(why) => format!("no report: {why}"),
        }
    }
}
