//! The workloads. Each takes an address (the target itself, or the local
//! end of a tunnel) and is bounded both in count and in time.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::target::BULK_BUF;

/// How long one connect plus first echo may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting plus the first echo of an idle connection may
/// take; short, as failures here are usually a process out of descriptors.
const IDLE_OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Slack on top of a timed transfer for draining buffers and the reply.
const DRAIN_SLACK: Duration = Duration::from_secs(20);

/// Bytes moved in some time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Transfer {
    pub bytes: u64,
    pub secs: f64,
}

impl Transfer {
    pub fn mb_per_s(&self) -> f64 {
        if self.secs > 0.0 {
            self.bytes as f64 / self.secs / 1e6
        } else {
            0.0
        }
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect to {addr}: timed out"))?
        .map_err(|e| err(&format!("connect to {addr}"), e))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Writes to the sink for `dur`, half-closes and waits for the sink's
/// count: throughput as the target saw it, buffers drained.
pub async fn upload(addr: SocketAddr, dur: Duration) -> Result<Transfer, String> {
    let work = async {
        let mut stream = connect(addr).await?;
        let chunk = vec![0x3cu8; BULK_BUF];
        let start = Instant::now();
        while start.elapsed() < dur {
            stream
                .write_all(&chunk)
                .await
                .map_err(|e| err("upload write", e))?;
        }
        stream
            .shutdown()
            .await
            .map_err(|e| err("upload shutdown", e))?;
        let mut count = [0u8; 8];
        stream
            .read_exact(&mut count)
            .await
            .map_err(|e| err("upload: reading the sink's count", e))?;
        Ok(Transfer {
            bytes: u64::from_be_bytes(count),
            secs: start.elapsed().as_secs_f64(),
        })
    };
    timeout(dur + DRAIN_SLACK, work)
        .await
        .map_err(|_| "upload timed out".to_string())?
}

/// Reads from the source for `dur`.
pub async fn download(addr: SocketAddr, dur: Duration) -> Result<Transfer, String> {
    let work = async {
        let mut stream = connect(addr).await?;
        let mut buf = vec![0u8; BULK_BUF];
        let mut bytes = 0u64;
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(0)) => return Err("download: source closed early".to_string()),
                Ok(Ok(n)) => bytes += n as u64,
                Ok(Err(e)) => return Err(err("download read", e)),
            }
        }
        Ok(Transfer {
            bytes,
            secs: start.elapsed().as_secs_f64(),
        })
    };
    timeout(dur + DRAIN_SLACK, work)
        .await
        .map_err(|_| "download timed out".to_string())?
}

#[derive(Debug, Clone, Copy)]
pub enum Direction {
    Up,
    Down,
}

/// `n` transfers at once; total bytes over the longest one's time.
pub async fn parallel(
    dir: Direction,
    addr: SocketAddr,
    n: usize,
    dur: Duration,
) -> Result<Transfer, String> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        set.spawn(async move {
            match dir {
                Direction::Up => upload(addr, dur).await,
                Direction::Down => download(addr, dur).await,
            }
        });
    }
    let mut total = Transfer::default();
    let mut first_err = None;
    while let Some(done) = set.join_next().await {
        match done {
            Ok(Ok(t)) => {
                total.bytes += t.bytes;
                total.secs = total.secs.max(t.secs);
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(err("transfer task", e));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// `n` sequential round trips of `size` bytes on an open echo connection.
pub async fn round_trips(
    stream: &mut TcpStream,
    n: usize,
    size: usize,
    within: Duration,
) -> Result<Vec<Duration>, String> {
    let out = vec![0x42u8; size];
    let mut back = vec![0u8; size];
    let mut times = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + within;
    for _ in 0..n {
        let start = Instant::now();
        let trip = async {
            stream.write_all(&out).await?;
            stream.read_exact(&mut back).await
        };
        match tokio::time::timeout_at(deadline, trip).await {
            Ok(Ok(_)) => times.push(start.elapsed()),
            Ok(Err(e)) => return Err(err("round trip", e)),
            Err(_) => {
                return Err(format!(
                    "round trips: only {} of {n} within {within:?}",
                    times.len()
                ))
            }
        }
    }
    Ok(times)
}

/// Opens an echo connection, warms it up, then times `n` round trips.
pub async fn latency(
    addr: SocketAddr,
    n: usize,
    within: Duration,
) -> Result<Vec<Duration>, String> {
    let mut stream = connect(addr).await?;
    round_trips(&mut stream, 50, 64, within).await?;
    round_trips(&mut stream, n, 64, within).await
}

/// Result of a connection-rate run.
#[derive(Debug, Default)]
pub struct ConnRate {
    pub ok: usize,
    pub failed: usize,
    pub secs: f64,
    /// Connect start to echoed byte, per successful connection.
    pub ttfb: Vec<Duration>,
    pub first_error: Option<String>,
}

/// One connection: connect, one byte there and back, close.
async fn one_conn(addr: SocketAddr) -> Result<Duration, String> {
    let start = Instant::now();
    let work = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| err("connect", e))?;
        let _ = stream.set_nodelay(true);
        stream.write_all(&[7]).await.map_err(|e| err("write", e))?;
        let mut byte = [0u8; 1];
        stream
            .read_exact(&mut byte)
            .await
            .map_err(|e| err("reading the echo", e))?;
        Ok::<_, String>(start.elapsed())
    };
    timeout(CONNECT_TIMEOUT, work)
        .await
        .map_err(|_| "no echo within 10 s".to_string())?
}

/// `total` connections, `concurrency` at a time, until done or `within`.
pub async fn conn_rate(
    addr: SocketAddr,
    total: usize,
    concurrency: usize,
    within: Duration,
) -> ConnRate {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = tokio::time::Instant::now() + within;
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        set.spawn(async move {
            let mut mine = ConnRate::default();
            while next.fetch_add(1, Ordering::Relaxed) < total
                && tokio::time::Instant::now() < deadline
            {
                match one_conn(addr).await {
                    Ok(t) => {
                        mine.ok += 1;
                        mine.ttfb.push(t);
                    }
                    Err(e) => {
                        mine.failed += 1;
                        mine.first_error.get_or_insert(e);
                    }
                }
            }
            mine
        });
    }
    let mut all = ConnRate::default();
    while let Some(done) = set.join_next().await {
        if let Ok(mine) = done {
            all.ok += mine.ok;
            all.failed += mine.failed;
            all.ttfb.extend(mine.ttfb);
            if all.first_error.is_none() {
                all.first_error = mine.first_error;
            }
        }
    }
    all.secs = start.elapsed().as_secs_f64();
    all
}

/// Outcome of opening idle connections.
#[derive(Debug, Default)]
pub struct IdleOpen {
    pub failed: usize,
    pub errors: Vec<String>,
    pub gave_up: Option<String>,
    pub secs: f64,
}

/// Opens echo connections until `held` has `goal` of them, each checked
/// with a one-byte echo, `concurrency` at a time. Stops early after
/// `max_failures` failures or at `within`.
pub async fn open_idle(
    addr: SocketAddr,
    held: &mut Vec<TcpStream>,
    goal: usize,
    concurrency: usize,
    max_failures: usize,
    within: Duration,
) -> IdleOpen {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + within;
    let mut out = IdleOpen::default();
    let mut set = JoinSet::new();
    let mut launched = held.len();
    loop {
        let stop = out.failed >= max_failures || tokio::time::Instant::now() >= deadline;
        if stop && out.gave_up.is_none() {
            out.gave_up = Some(if out.failed >= max_failures {
                format!("stopped after {} failures", out.failed)
            } else {
                format!("stopped at the phase limit of {within:?}")
            });
        }
        while !stop && set.len() < concurrency && launched < goal {
            launched += 1;
            set.spawn(async move {
                let mut stream = timeout(IDLE_OPEN_TIMEOUT, TcpStream::connect(addr))
                    .await
                    .map_err(|_| format!("connect: no answer within {IDLE_OPEN_TIMEOUT:?}"))?
                    .map_err(|e| err("connect", e))?;
                let _ = stream.set_nodelay(true);
                echo_one(&mut stream, IDLE_OPEN_TIMEOUT).await?;
                Ok::<_, String>(stream)
            });
        }
        let joined = match tokio::time::timeout_at(
            deadline + 2 * IDLE_OPEN_TIMEOUT,
            set.join_next(),
        )
        .await
        {
            Ok(Some(joined)) => joined,
            Ok(None) => break,
            Err(_) => {
                set.abort_all();
                out.gave_up
                    .get_or_insert_with(|| "connections hung past the phase limit".into());
                break;
            }
        };
        match joined {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => {
                out.failed += 1;
                launched -= 1;
                if out.errors.len() < 5 && !out.errors.contains(&e) {
                    out.errors.push(e);
                }
            }
            Err(e) => {
                out.failed += 1;
                launched -= 1;
                if out.errors.len() < 5 {
                    out.errors.push(err("task", e));
                }
            }
        }
        if stop && set.is_empty() {
            break;
        }
    }
    out.secs = start.elapsed().as_secs_f64();
    out
}

/// One byte there and back, bounded.
async fn echo_one(stream: &mut TcpStream, within: Duration) -> Result<(), String> {
    let work = async {
        stream.write_all(&[0x69]).await?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        Ok::<_, std::io::Error>(byte[0])
    };
    match timeout(within, work).await {
        Ok(Ok(0x69)) => Ok(()),
        Ok(Ok(other)) => Err(format!("echo returned {other:#x}")),
        Ok(Err(e)) => Err(err("echo", e)),
        Err(_) => Err(format!("no echo within {within:?}")),
    }
}

/// Checks that each held connection still echoes, `concurrency` at a
/// time; returns the connections and how many answered.
pub async fn verify_idle(
    held: Vec<TcpStream>,
    concurrency: usize,
) -> (Vec<TcpStream>, usize, Option<String>) {
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for mut stream in held {
        let gate = gate.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let result = echo_one(&mut stream, CONNECT_TIMEOUT).await;
            (stream, result)
        });
    }
    let mut back = Vec::new();
    let mut ok = 0;
    let mut first_err = None;
    while let Some(done) = set.join_next().await {
        if let Ok((stream, result)) = done {
            match result {
                Ok(()) => ok += 1,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
            back.push(stream);
        }
    }
    (back, ok, first_err)
}

/// Head-of-line test results for one path.
#[derive(Debug, Default)]
pub struct Hol {
    /// Downloads with nothing stalled: before the first stall and after
    /// each one.
    pub free: Vec<Transfer>,
    /// Downloads while another connection is stalled.
    pub stalled: Vec<Transfer>,
    pub ping_free: Vec<Duration>,
    pub ping_stalled: Vec<Duration>,
    /// Bytes the source got rid of before the stalled connection stopped
    /// taking more: what the path buffers for a reader that stopped
    /// (largest over the rounds).
    pub stall_buffered: u64,
}

/// One connection to the source is opened and never read; once the source
/// can write no more into it, one-stream download throughput and the
/// round-trip time on an already-open echo connection are measured. The
/// same is measured with nothing stalled before and after each of
/// `rounds` stalls, so drift (other load on the machine) does not pass
/// for an effect of the stall.
pub async fn head_of_line(
    echo: SocketAddr,
    source: SocketAddr,
    source_written: &AtomicU64,
    dur: Duration,
    pings: usize,
    rounds: usize,
) -> Result<Hol, String> {
    let rounds = rounds.max(1);
    let pings = (pings / rounds).max(1);
    let mut out = Hol::default();
    let mut pinger = connect(echo).await?;
    round_trips(&mut pinger, 50, 64, Duration::from_secs(10)).await?;
    out.free.push(download(source, dur).await?);
    out.ping_free = round_trips(&mut pinger, pings, 64, Duration::from_secs(30)).await?;
    for _ in 0..rounds {
        // Let the previous download's connection end on the source side.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = source_written.load(Ordering::Relaxed);
        let stall_start = Instant::now();
        let stalled = connect(source).await?;
        // Stalled once the source has written nothing new for 300 ms (at most 15 s).
        let mut last = before;
        let mut quiet = 0;
        while stall_start.elapsed() < Duration::from_secs(15) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = source_written.load(Ordering::Relaxed);
            if now == last && now > before {
                quiet += 1;
                if quiet >= 3 {
                    break;
                }
            } else {
                quiet = 0;
            }
            last = now;
        }
        let held = source_written.load(Ordering::Relaxed) - before;
        out.stall_buffered = out.stall_buffered.max(held);

        out.stalled.push(download(source, dur).await?);
        out.ping_stalled
            .extend(round_trips(&mut pinger, pings, 64, Duration::from_secs(30)).await?);
        drop(stalled);
        tokio::time::sleep(Duration::from_millis(300)).await;
        out.free.push(download(source, dur).await?);
    }
    Ok(out)
}

/// Value at percentile `p` (0-100) of `times`, microseconds.
pub fn percentile_us(times: &[Duration], p: f64) -> Option<f64> {
    if times.is_empty() {
        return None;
    }
    let mut sorted: Vec<Duration> = times.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[index].as_secs_f64() * 1e6)
}
