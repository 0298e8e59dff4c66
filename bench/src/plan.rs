//! How much a run measures: the counts and durations of every phase.
use serde::Serialize;
use std::time::Duration;

/// Counts and durations of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub mode: &'static str,
    pub throughput_secs: f64,
    /// Each throughput figure is the median of this many runs, the paths
    /// taking turns, so a passing disturbance hits one run, not a path.
    pub throughput_rounds: usize,
    pub parallel_streams: usize,
    pub round_trips: usize,
    pub round_trip_bytes: usize,
    pub connections: usize,
    pub connection_concurrency: usize,
    pub idle_steps: Vec<usize>,
    pub idle_open_concurrency: usize,
    pub hol_secs: f64,
    /// Stalls per path; throughput is measured before and after each.
    pub hol_rounds: usize,
    pub hol_pings: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        if quick {
            Plan {
                mode: "quick",
                throughput_secs: 1.0,
                throughput_rounds: 1,
                parallel_streams: 8,
                round_trips: 500,
                round_trip_bytes: 64,
                connections: 200,
                connection_concurrency: 32,
                idle_steps: vec![1_000],
                idle_open_concurrency: 64,
                hol_secs: 1.0,
                hol_rounds: 1,
                hol_pings: 200,
            }
        } else {
            Plan {
                mode: "full",
                throughput_secs: 1.5,
                throughput_rounds: 3,
                parallel_streams: 8,
                round_trips: 5_000,
                round_trip_bytes: 64,
                connections: 1_000,
                connection_concurrency: 32,
                idle_steps: vec![1_000, 10_000],
                idle_open_concurrency: 64,
                hol_secs: 1.5,
                // Single-stream rates swing by 10-20% from one 1.5 s
                // transfer to the next on a 2-core machine: a median of
                // four stalled and five free transfers steadies the ratio.
                hol_rounds: 4,
                hol_pings: 1_000,
            }
        }
    }

    pub fn dur(&self) -> Duration {
        Duration::from_secs_f64(self.throughput_secs)
    }

    pub fn max_idle(&self) -> usize {
        self.idle_steps.iter().copied().max().unwrap_or(0)
    }
}
