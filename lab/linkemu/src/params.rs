//! The link's settings and counters, shared between the two pumps and the
//! control loop: parsing the control file the lab writes, and formatting
//! the status file it waits on.
//!
//! Control file: `key=value` lines, `#` starts a comment. Keys are `gen`
//! (a number the lab bumps on every change; the status file echoes it once
//! the change is in force) and, for each direction `up` (left to right)
//! and `down`, `DIR.delay_ms` (one-way delay, fractional), `DIR.loss_pct`
//! (share of all frames dropped) and `DIR.udp_loss_pct` (share of IPv4 UDP
//! frames dropped, on top). Keys left out keep their value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Direction index: frames from the left interface to the right one.
pub const UP: usize = 0;
/// Direction index: frames from the right interface to the left one.
pub const DOWN: usize = 1;
const DIR_NAMES: [&str; 2] = ["up", "down"];

/// What happens to frames in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DirParams {
    pub delay: Duration,
    /// Probability (0..=1) that any frame is dropped.
    pub loss: f64,
    /// Probability (0..=1) that an IPv4 UDP frame is dropped (after `loss`).
    pub udp_loss: f64,
}

/// Both directions, and the generation the lab gave them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Params {
    pub gen: u64,
    pub dirs: [DirParams; 2],
}

impl Params {
    /// These settings with the control file `text` applied on top.
    pub fn apply(&self, text: &str) -> Result<Params, String> {
        let mut next = *self;
        for (no, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |what: &str| format!("line {}: {what}: {raw:?}", no + 1);
            let (key, value) = line.split_once('=').ok_or_else(|| err("no ="))?;
            let (key, value) = (key.trim(), value.trim());
            if key == "gen" {
                next.gen = value.parse().map_err(|_| err("gen is not a number"))?;
                continue;
            }
            let (dir, field) = key.split_once('.').ok_or_else(|| err("unknown key"))?;
            let dir = DIR_NAMES
                .iter()
                .position(|d| *d == dir)
                .ok_or_else(|| err("direction is not up or down"))?;
            let number: f64 = value.parse().map_err(|_| err("not a number"))?;
            if !number.is_finite() || number < 0.0 {
                return Err(err("must be 0 or more"));
            }
            let d = &mut next.dirs[dir];
            match field {
                "delay_ms" if number <= 60_000.0 => {
                    d.delay = Duration::from_secs_f64(number / 1000.0)
                }
                "loss_pct" if number <= 100.0 => d.loss = number / 100.0,
                "udp_loss_pct" if number <= 100.0 => d.udp_loss = number / 100.0,
                "delay_ms" | "loss_pct" | "udp_loss_pct" => return Err(err("out of range")),
                _ => return Err(err("unknown key")),
            }
        }
        Ok(next)
    }
}

/// Frame counts of one direction.
#[derive(Default)]
pub struct Counters {
    pub forwarded: AtomicU64,
    /// Dropped on purpose (loss, udp_loss).
    pub lost: AtomicU64,
    /// Dropped because the delay queue was full.
    pub overflow: AtomicU64,
    /// Dropped by the interface below (a full rate-limit queue).
    pub refused: AtomicU64,
}

/// What the pumps and the control loop share.
#[derive(Default)]
pub struct Shared {
    params: Mutex<Params>,
    /// Bumped on every change, so pumps re-read `params` only then.
    version: AtomicU64,
    pub counters: [Counters; 2],
}

impl Shared {
    pub fn new(params: Params) -> Self {
        Shared {
            params: Mutex::new(params),
            ..Default::default()
        }
    }

    pub fn params(&self) -> Params {
        *self.params.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set(&self, params: Params) {
        *self.params.lock().unwrap_or_else(|e| e.into_inner()) = params;
        self.version.fetch_add(1, Ordering::Release);
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The status file: the generation in force and the counters.
    pub fn status(&self) -> String {
        let p = self.params();
        let mut out = format!("gen={}\n", p.gen);
        for (i, name) in DIR_NAMES.iter().enumerate() {
            let c = &self.counters[i];
            let d = &p.dirs[i];
            out += &format!(
                "{name}.delay_ms={}\n{name}.loss_pct={}\n{name}.udp_loss_pct={}\n",
                d.delay.as_secs_f64() * 1000.0,
                d.loss * 100.0,
                d.udp_loss * 100.0
            );
            for (key, value) in [
                ("forwarded", &c.forwarded),
                ("lost", &c.lost),
                ("overflow", &c.overflow),
                ("refused", &c.refused),
            ] {
                out += &format!("{name}.{key}={}\n", value.load(Ordering::Relaxed));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_keys_and_keeps_the_rest() {
        let p = Params::default()
            .apply("gen=3\nup.delay_ms=1.25 # comment\ndown.loss_pct=5\n\n")
            .unwrap();
        assert_eq!(p.gen, 3);
        assert_eq!(p.dirs[UP].delay, Duration::from_micros(1250));
        assert_eq!(p.dirs[DOWN].loss, 0.05);
        let q = p.apply("gen=4\ndown.udp_loss_pct=100").unwrap();
        assert_eq!(q.dirs[UP].delay, Duration::from_micros(1250));
        assert_eq!(q.dirs[DOWN].loss, 0.05);
        assert_eq!(q.dirs[DOWN].udp_loss, 1.0);
    }

    #[test]
    fn rejects_bad_lines() {
        for bad in [
            "up.loss_pct=101",
            "up.delay_ms=-1",
            "side.delay_ms=1",
            "up.jitter=1",
            "gen=x",
            "up.loss_pct",
            "up.delay_ms=NaN",
        ] {
            assert!(Params::default().apply(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_echoes_the_generation() {
        let shared = Shared::new(Params::default().apply("gen=7").unwrap());
        assert!(shared.status().starts_with("gen=7\n"));
        assert!(shared.status().contains("down.forwarded=0\n"));
    }
}
