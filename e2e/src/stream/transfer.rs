//! [`transfer`], the driver: one mapped connection between a client and
//! a service thread, a [`Plan`] saying which way the pattern goes and where
//! the cut falls, and the reading and writing sides that each bound every
//! socket call and report what they saw.
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use super::pattern::{first_mismatch, pattern, CHUNK};
use super::report::{reset, End, ReadReport, Side, WriteReport};
use crate::TIMEOUT;

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
