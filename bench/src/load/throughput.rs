//! Bulk transfers: one upload into the sink or one download from the
//! source for a set time, several at once, and the head-of-line test that
//! downloads and pings while another connection to the source is stalled.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::dial::{connect, err};
use super::latency::round_trips;
use crate::target::BULK_BUF;

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
