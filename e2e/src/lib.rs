//! Harness for black-box tests of the `route` and `vnet` binaries.
//!
//! The tests in `tests/` run the real programs as child processes, on
//! 127.0.0.1 and ports the system picks, from ini files written to a temp
//! dir of their own, and push bytes through them with small std TCP
//! services written in the tests. Nothing here links the project's
//! crates: what is tested is what a user runs.
//!
//! - [`bins`] finds the binaries (and builds them once if they are
//!   missing).
//! - [`process`] runs one of them, collects its log lines and kills it on
//!   drop, so nothing is left running even when a test panics.
//! - [`net`] starts a route and vnets from config text and waits for the
//!   log lines that say each is ready (never a sleep).
//! - [`relay`] stands in for the network between a vnet and the route, so
//!   a test can reset one connection while every process stays up.
//! - [`stream`] is the data side: a deterministic byte pattern, readers
//!   that tell a clean end from an error, and [`stream::transfer`], one
//!   mapped connection with a cut in the middle.
//!
//! Every wait is bounded by [`TIMEOUT`] (or a shorter bound of its own) and
//! fails the test with a message saying what did not happen.
#![cfg(unix)]

pub mod bins;
pub mod net;
pub mod process;
pub mod relay;
pub mod stream;

use std::time::Duration;

/// Bound on any single wait for a process or a socket during setup.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// Raises this process's open-files soft limit as far as the hard limit
/// allows and returns the new soft limit.
pub fn raise_nofile_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or_else(|_| {
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024)
    })
}

/// Resident memory of a process in KiB (`VmRSS` in `/proc/PID/status`),
/// or `None` once it has gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `n` bytes as MiB with two decimals, for messages.
pub fn mib(n: u64) -> String {
    format!("{:.2} MiB", n as f64 / MIB as f64)
}
