//! Latency: timed round trips of a few bytes on one open echo connection,
//! and percentiles of the times they took.
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::dial::{connect, err};

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
