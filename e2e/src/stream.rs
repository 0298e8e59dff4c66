//! The data side: a byte pattern, readers and writers that report how a
//! stream ended, and [`transfer`], one mapped connection with a cut in the
//! middle.
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{mib, TIMEOUT};

/// Largest read or write of the fast paths.
pub const CHUNK: usize = 64 * 1024;

/// The pattern repeats every `PERIOD` bytes: a prime, so that a lost,
/// doubled or shifted chunk of any power-of-two size shows up.
const PERIOD: usize = 65_521;

/// `PERIOD` pseudo-random bytes, then `CHUNK` more that go on repeating
/// them, so that any offset has `CHUNK` contiguous bytes of pattern after
/// it.
fn block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| {
        let mut x: u32 = 0x9e37_79b9;
        let mut bytes: Vec<u8> = (0..PERIOD)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        for i in 0..CHUNK {
            bytes.push(bytes[i % PERIOD]);
        }
        bytes
    })
}

/// The `len` (at most [`CHUNK`]) pattern bytes that start at stream
/// offset `offset`.
pub fn pattern(offset: u64, len: usize) -> &'static [u8] {
    assert!(len <= CHUNK);
    let start = (offset % PERIOD as u64) as usize;
    &block()[start..start + len]
}

/// The stream offset of the first byte of `data` (received at `offset`)
/// that differs from the pattern, if any. Comparing with the pattern checks
/// every byte, which is stronger than a checksum of the whole.
pub fn first_mismatch(offset: u64, data: &[u8]) -> Option<u64> {
    let mut at = offset;
    for piece in data.chunks(CHUNK) {
        let want = pattern(at, piece.len());
        if piece != want {
            let i = piece
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Some(at + i as u64);
        }
        at += piece.len() as u64;
    }
    None
}

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
    fn of(err: io::Error, waited: Duration) -> End {
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

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Service to client.
    Download,
    /// Client to service.
    Upload,
}

/// One transfer through a use, and where the cut falls.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Direction.
    pub dir: Dir,
    /// Stream length.
    pub total: u64,
    /// The writer writes this much, then waits until the cut is done
    /// before writing the rest: the rest cannot have left before the cut.
    pub head: u64,
    /// The reader reads slowly (16 KiB a millisecond) until it has this
    /// much, so the hops in between are full and moving, then triggers the
    /// cut and reads on at full speed.
    pub slow_until: u64,
    /// Instead of going on after the head, the writer resets its socket
    /// (SO_LINGER 0 and close): that is the cut.
    pub writer_resets: bool,
    /// After the cut (or the trigger, with no cut), every read or write
    /// must end within this.
    pub bound: Duration,
}

impl Plan {
    /// A plain transfer with nothing cut: the reader reads at full speed
    /// from the start.
    pub fn whole(dir: Dir, total: u64) -> Plan {
        Plan {
            dir,
            total,
            head: total,
            slow_until: 0,
            writer_resets: false,
            bound: Duration::from_secs(20),
        }
    }
}

/// What both ends saw.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The client of the use.
    pub client: Side,
    /// The service behind the serve.
    pub service: Side,
    /// From connecting to the end of both sides.
    pub elapsed: Duration,
}

impl Outcome {
    /// Both sides, one line each.
    pub fn describe(&self, total: u64) -> String {
        format!(
            "client: {}\n  service: {}\n  ({} ms in all)",
            self.client.describe(total),
            self.service.describe(total),
            self.elapsed.as_millis()
        )
    }
}

/// Runs one stream: a client connects to `use_addr`, the mapping reaches
/// `service` (the listener the serve points at), and the writer (service
/// for a download, client for an upload) sends `plan.total` pattern bytes
/// to the reader. Once the reader has `plan.slow_until` bytes (or its
/// stream ended), `cut` runs on this thread (kill a process, or nothing);
/// then the writer goes on past `plan.head`. A reader that sees a clean
/// EOF echoes its byte count (8 bytes, big-endian) and half-closes; a
/// writer that finished reads that count and the EOF after it.
pub fn transfer(
    use_addr: SocketAddr,
    service: TcpListener,
    plan: &Plan,
    cut: impl FnOnce(),
) -> Outcome {
    let started = Instant::now();
    let (trigger_tx, trigger_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (mut service_trigger, mut client_trigger) = (None, None);
    let (mut service_go, mut client_go) = (None, None);
    match plan.dir {
        Dir::Download => {
            client_trigger = Some(trigger_tx);
            service_go = Some(go_rx);
        }
        Dir::Upload => {
            service_trigger = Some(trigger_tx);
            client_go = Some(go_rx);
        }
    }

    let service_thread = {
        let plan = plan.clone();
        std::thread::spawn(move || match accept_within(&service, TIMEOUT) {
            Ok(stream) => play(stream, &plan, service_trigger, service_go),
            Err(why) => Side::Missing(why),
        })
    };
    let client_thread = {
        let plan = plan.clone();
        std::thread::spawn(
            move || match TcpStream::connect_timeout(&use_addr, TIMEOUT) {
                Ok(stream) => play(stream, &plan, client_trigger, client_go),
                Err(err) => Side::Missing(format!("client could not connect to {use_addr}: {err}")),
            },
        )
    };

    // Ok: the reader got its bytes or its end; Err: its thread ended
    // without (it reports why) or it took too long (the writer is stuck).
    let _ = trigger_rx.recv_timeout(TIMEOUT);
    cut();
    let _ = go_tx.send(());

    let join = |thread: std::thread::JoinHandle<Side>, who: &str| {
        thread
            .join()
            .unwrap_or_else(|_| Side::Missing(format!("the {who} thread panicked")))
    };
    // Both threads end by themselves: every socket call has a bound.
    let client = join(client_thread, "client");
    let service = join(service_thread, "service");
    Outcome {
        client,
        service,
        elapsed: started.elapsed(),
    }
}

fn accept_within(listener: &TcpListener, timeout: Duration) -> Result<TcpStream, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(format!("the service got no connection within {timeout:?}"));
                }
                // std has no accept with a timeout; a short poll is fine
                // for one connection.
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(err) => return Err(format!("accept failed: {err}")),
        }
    }
}

fn play(
    stream: TcpStream,
    plan: &Plan,
    trigger: Option<Sender<()>>,
    go: Option<Receiver<()>>,
) -> Side {
    match (trigger, go) {
        (Some(trigger), _) => Side::Reader(read_side(stream, plan, trigger)),
        (None, Some(go)) => Side::Writer(write_side(stream, plan, go)),
        (None, None) => unreachable!("every side reads or writes"),
    }
}

fn read_side(mut stream: TcpStream, plan: &Plan, trigger: Sender<()>) -> ReadReport {
    const SLOW: usize = 16 * 1024;
    let started = Instant::now();
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    let mut corrupt_at = None;
    let mut trigger = Some(trigger);
    let mut cut_at = None::<Instant>;
    let end = loop {
        if bytes >= plan.slow_until {
            if let Some(t) = trigger.take() {
                let _ = t.send(());
                cut_at = Some(Instant::now());
            }
        }
        let (len, deadline) = match cut_at {
            None => (SLOW, started + TIMEOUT),
            Some(at) => (CHUNK, at + plan.bound),
        };
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            break End::TimedOut(if cut_at.is_some() {
                plan.bound
            } else {
                TIMEOUT
            });
        };
        stream.set_read_timeout(Some(left)).expect("SO_RCVTIMEO");
        match stream.read(&mut buf[..len]) {
            Ok(0) => break End::Eof,
            Ok(n) => {
                if corrupt_at.is_none() {
                    corrupt_at = first_mismatch(bytes, &buf[..n]);
                }
                bytes += n as u64;
                if cut_at.is_none() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                break End::of(
                    err,
                    if cut_at.is_some() {
                        plan.bound
                    } else {
                        TIMEOUT
                    },
                )
            }
        }
    };
    let end_after_cut = cut_at.map(|at| at.elapsed());
    // An end before the trigger still lets the orchestrator go on.
    drop(trigger);
    let echo = (end == End::Eof).then(|| {
        stream
            .write_all(&bytes.to_be_bytes())
            .and_then(|()| stream.shutdown(Shutdown::Write))
            .map_err(|err| err.to_string())
    });
    ReadReport {
        bytes,
        end,
        corrupt_at,
        end_after_cut,
        echo,
    }
}

fn write_side(mut stream: TcpStream, plan: &Plan, go: Receiver<()>) -> WriteReport {
    let mut report = WriteReport {
        written: 0,
        write_end: None,
        failed_after_cut: None,
        reset_self: false,
        reverse: None,
    };
    let head = plan.head.min(plan.total);
    if let Err(end) = write_until(
        &mut stream,
        &mut report.written,
        head,
        Instant::now() + TIMEOUT,
    ) {
        report.write_end = Some(end);
        return report;
    }
    if plan.writer_resets {
        report.reset_self = true;
        reset(stream);
        return report;
    }
    let _ = go.recv_timeout(TIMEOUT);
    let cut_at = Instant::now();
    let deadline = cut_at + plan.bound;
    let tail = write_until(&mut stream, &mut report.written, plan.total, deadline).and_then(|()| {
        stream
            .shutdown(Shutdown::Write)
            .map_err(|e| End::of(e, plan.bound))
    });
    if let Err(end) = tail {
        report.write_end = Some(end);
        report.failed_after_cut = Some(cut_at.elapsed());
        return report;
    }
    report.reverse = Some(read_count(&mut stream, deadline));
    report
}

fn write_until(
    stream: &mut TcpStream,
    written: &mut u64,
    to: u64,
    deadline: Instant,
) -> Result<(), End> {
    while *written < to {
        let len = (to - *written).min(CHUNK as u64) as usize;
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return Err(End::TimedOut(Duration::ZERO));
        };
        stream.set_write_timeout(Some(left)).expect("SO_SNDTIMEO");
        match stream.write(pattern(*written, len)) {
            Ok(0) => {
                return Err(End::Error(
                    io::ErrorKind::WriteZero,
                    "write returned 0".into(),
                ))
            }
            Ok(n) => *written += n as u64,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(End::of(err, left)),
        }
    }
    Ok(())
}

/// Reads the reader's 8-byte count and then expects the end.
fn read_count(stream: &mut TcpStream, deadline: Instant) -> (Option<u64>, End) {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let end = loop {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            break End::TimedOut(Duration::ZERO);
        };
        stream.set_read_timeout(Some(left)).expect("SO_RCVTIMEO");
        match stream.read(&mut buf) {
            Ok(0) => break End::Eof,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => break End::of(err, left),
        }
    };
    let count = <[u8; 8]>::try_from(got.as_slice())
        .ok()
        .map(u64::from_be_bytes);
    (count, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_continuous_across_chunks_and_period() {
        let mut whole = Vec::new();
        let mut at = 0u64;
        while at < 3 * PERIOD as u64 {
            let n = 1000.min(CHUNK);
            whole.extend_from_slice(pattern(at, n));
            at += n as u64;
        }
        assert_eq!(first_mismatch(0, &whole), None);
        assert_eq!(&whole[..100], &whole[PERIOD..PERIOD + 100]);
        // A lost byte shows at once.
        assert!(first_mismatch(0, &whole[1..]).is_some());
        let mut bad = whole.clone();
        bad[70_000] ^= 1;
        assert_eq!(first_mismatch(0, &bad), Some(70_000));
    }
}
