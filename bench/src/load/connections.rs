//! Connections rather than bytes: the rate of short connect-echo-close
//! connections, and opening many idle echo connections, holding them and
//! checking later that each still answers.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::dial::{err, CONNECT_TIMEOUT};

/// How long connecting plus the first echo of an idle connection may
/// take; short, as failures here are usually a process out of descriptors.
const IDLE_OPEN_TIMEOUT: Duration = Duration::from_secs(5);

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
