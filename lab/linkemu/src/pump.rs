//! One direction of the link: frames read from one interface wait in a
//! FIFO delay line until their due time, then go out of the other; some
//! are dropped on the way, as the settings say.
//!
//! The line is a FIFO on purpose: a real link never reorders, so when the
//! delay is lowered at run time, new frames wait behind older ones.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::packet::{PacketSocket, Received};
use crate::params::{DirParams, Shared};

/// The most frames one pass takes in before it sends what is due.
const BATCH: usize = 64;
/// Bounds on what waits in the line (frames, bytes): beyond, tail drop.
const MAX_FRAMES: usize = 65_536;
const MAX_BYTES: usize = 64 << 20;
/// Larger than any frame the kernel can hand a packet socket.
const SCRATCH: usize = 65_536;

/// Frames waiting for their due time, oldest first.
#[derive(Default)]
pub struct DelayLine {
    frames: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
}

impl DelayLine {
    /// Queues `frame` to leave at `due`; false (and nothing queued) when
    /// the line is full.
    pub fn push(&mut self, due: Instant, frame: Vec<u8>) -> bool {
        if self.frames.len() >= MAX_FRAMES || self.bytes + frame.len() > MAX_BYTES {
            return false;
        }
        self.bytes += frame.len();
        self.frames.push_back((due, frame));
        true
    }

    /// The oldest frame, if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.frames.front()?.0 > now {
            return None;
        }
        let (_, frame) = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some(frame)
    }

    /// How long until the oldest frame is due (None: the line is empty).
    pub fn next_due(&self, now: Instant) -> Option<Duration> {
        self.frames
            .front()
            .map(|(due, _)| due.saturating_duration_since(now))
    }
}

/// A small fast generator for loss decisions (xorshift64*); quality is
/// ample for "drop about p of the frames".
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Whether an Ethernet frame carries IPv4 UDP.
pub fn is_udp(frame: &[u8]) -> bool {
    frame.len() > 23 && frame[12..14] == [0x08, 0x00] && frame[23] == 17
}

/// Whether the settings drop this frame.
pub fn dropped(frame: &[u8], p: &DirParams, rng: &mut Rng) -> bool {
    if p.loss > 0.0 && rng.next_f64() < p.loss {
        return true;
    }
    p.udp_loss > 0.0 && is_udp(frame) && rng.next_f64() < p.udp_loss
}

/// Moves frames from `rx` to `tx` for ever, direction `dir` of `shared`.
/// Returns only on a socket error (the interface went away).
pub fn run(
    rx: Arc<PacketSocket>,
    tx: Arc<PacketSocket>,
    dir: usize,
    shared: Arc<Shared>,
) -> io::Error {
    let counters = &shared.counters[dir];
    let mut rng = Rng::new(seed(dir));
    let mut line = DelayLine::default();
    let mut scratch = vec![0u8; SCRATCH];
    let mut version = shared.version();
    let mut params = shared.params().dirs[dir];
    let mut warned_big = false;
    loop {
        if shared.version() != version {
            version = shared.version();
            params = shared.params().dirs[dir];
        }
        let now = Instant::now();
        let mut taken = 0;
        while taken < BATCH {
            let n = match rx.try_recv(&mut scratch) {
                Ok(Received::Frame(n)) => n,
                Ok(Received::Empty) => break,
                Err(e) => return e,
            };
            taken += 1;
            let frame = &scratch[..n];
            if dropped(frame, &params, &mut rng) {
                counters.lost.fetch_add(1, Ordering::Relaxed);
            } else if !line.push(now + params.delay, frame.to_vec()) {
                counters.overflow.fetch_add(1, Ordering::Relaxed);
            }
        }
        let now = Instant::now();
        while let Some(frame) = line.pop_due(now) {
            match tx.send(&frame) {
                Ok(true) => counters.forwarded.fetch_add(1, Ordering::Relaxed),
                Ok(false) => {
                    if frame.len() > 9000 && !warned_big {
                        warned_big = true;
                        eprintln!(
                            "linkemu: dropping {}-byte frames from {}: turn off GRO/GSO/TSO on the link's veths",
                            frame.len(),
                            rx.name()
                        );
                    }
                    counters.refused.fetch_add(1, Ordering::Relaxed)
                }
                Err(e) => return e,
            };
        }
        if taken < BATCH {
            if let Err(e) = rx.wait(line.next_due(Instant::now())) {
                return e;
            }
        }
    }
}

/// A seed that differs per process, direction and run.
fn seed(dir: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32) ^ (dir as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_releases_in_order_when_due() {
        let t0 = Instant::now();
        let mut line = DelayLine::default();
        assert!(line.push(t0 + Duration::from_millis(5), vec![1]));
        // Due earlier, but queued later: still waits behind the first.
        assert!(line.push(t0 + Duration::from_millis(1), vec![2]));
        assert_eq!(line.next_due(t0), Some(Duration::from_millis(5)));
        assert_eq!(line.pop_due(t0 + Duration::from_millis(4)), None);
        let later = t0 + Duration::from_millis(5);
        assert_eq!(line.pop_due(later), Some(vec![1]));
        assert_eq!(line.pop_due(later), Some(vec![2]));
        assert_eq!(line.pop_due(later), None);
        assert_eq!(line.next_due(later), None);
    }

    #[test]
    fn line_is_bounded() {
        let t0 = Instant::now();
        let mut line = DelayLine::default();
        let big = vec![0u8; 1 << 20];
        let mut taken = 0;
        while line.push(t0, big.clone()) {
            taken += 1;
        }
        assert_eq!(taken, MAX_BYTES >> 20);
    }

    #[test]
    fn loss_rate_is_about_right() {
        let mut rng = Rng::new(42);
        let p = DirParams {
            loss: 0.05,
            ..Default::default()
        };
        let lost = (0..100_000)
            .filter(|_| dropped(&[0; 60], &p, &mut rng))
            .count();
        assert!((4_000..6_000).contains(&lost), "{lost}");
    }

    #[test]
    fn udp_loss_spares_other_frames() {
        let mut udp = vec![0u8; 60];
        udp[12] = 0x08;
        udp[23] = 17;
        let mut tcp = udp.clone();
        tcp[23] = 6;
        let p = DirParams {
            udp_loss: 1.0,
            ..Default::default()
        };
        let mut rng = Rng::new(7);
        assert!(dropped(&udp, &p, &mut rng));
        assert!(!dropped(&tcp, &p, &mut rng));
        assert!(!dropped(&udp[..20], &p, &mut rng));
    }
}
