//! The measuring phases, one module each, run in this order by `run`:
//! memory at rest, latency, connection rate, throughput (with CPU per GB),
//! head-of-line isolation, and concurrent idle connections.
//!
//! Each phase adds rows to the report under its own section and notes
//! what went wrong to `notes`; none of them fails the run.
pub mod at_rest;
pub mod connections;
pub mod head_of_line;
pub mod idle_conns;
pub mod latency;
pub mod throughput;

use std::time::{Duration, Instant};

/// The time budget of the measuring part. Phases check it between steps
/// (each step has its own timeouts too) and skip what no longer fits.
pub struct Budget {
    started: Instant,
    limit: Duration,
}

impl Budget {
    /// Starts counting now: 4 minutes for a quick run, 8 for a full one.
    pub fn start(quick: bool) -> Self {
        Budget {
            started: Instant::now(),
            limit: Duration::from_secs(if quick { 240 } else { 480 }),
        }
    }

    /// True once the budget is used up, noting that `what` was skipped.
    pub fn used_up(&self, what: &str, notes: &mut Vec<String>) -> bool {
        let gone = self.started.elapsed() > self.limit;
        if gone {
            notes.push(format!(
                "skipped {what}: the run's time budget of {:?} was used up",
                self.limit
            ));
        }
        gone
    }
}

/// Middle value (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}
