//! Head-of-line isolation: does one mapped connection whose reader stopped
//! slow down the others? Downloads and pings are measured with and without
//! such a stalled connection.
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::{median, Budget};
use crate::load::{self, percentile_us, Hol, Transfer};
use crate::plan::Plan;
use crate::report::{Goal, Report};
use crate::tunnels::NetPath;

const SECTION: &str = "head-of-line: another mapped connection's reader stalled";

/// Runs the stall test on every live path. `source_written` counts the
/// bytes the target's source has handed to the kernel, which shows when
/// the stalled connection can take no more.
pub async fn run(
    paths: &mut [NetPath],
    plan: &Plan,
    budget: &Budget,
    source_written: &AtomicU64,
    report: &mut Report,
    notes: &mut Vec<String>,
) {
    if budget.used_up("head-of-line", notes) {
        return;
    }
    eprintln!(
        "bench: head-of-line isolation ({} stalls, {} s transfers, {} pings)",
        plan.hol_rounds, plan.hol_secs, plan.hol_pings
    );
    for path in paths.iter_mut() {
        if !path.check_alive() {
            continue;
        }
        let dur = Duration::from_secs_f64(plan.hol_secs);
        match load::head_of_line(
            path.ends.echo,
            path.ends.source,
            source_written,
            dur,
            plan.hol_pings,
            plan.hol_rounds,
        )
        .await
        {
            Ok(h) => record(&h, path.name, report),
            Err(e) => notes.push(format!("{}: head-of-line test failed: {e}", path.name)),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The rows of one path's result.
fn record(h: &Hol, name: &str, report: &mut Report) {
    let rates = |t: &[Transfer]| t.iter().map(|t| t.mb_per_s()).collect::<Vec<_>>();
    let (free_runs, stalled_runs) = (rates(&h.free), rates(&h.stalled));
    let free = median(&free_runs).unwrap_or(f64::NAN);
    let stalled = median(&stalled_runs).unwrap_or(f64::NAN);
    report.set(
        SECTION,
        "hol_free",
        "download, 1 stream, nothing stalled",
        "MB/s",
        0,
        None,
        name,
        free,
    );
    report.set(
        SECTION,
        "hol_stalled",
        "download, 1 stream, while stalled",
        "MB/s",
        0,
        None,
        name,
        stalled,
    );
    report.samples("hol_free", name, free_runs);
    report.samples("hol_stalled", name, stalled_runs);
    let kept = if free > 0.0 { stalled / free } else { f64::NAN };
    report.set(
        SECTION,
        "hol_kept",
        "throughput kept (stalled / not stalled)",
        "",
        2,
        Some(Goal::AtLeast(0.9)),
        name,
        kept,
    );
    report.set(
        SECTION,
        "hol_ping_free_p50",
        "64-byte RTT on an open conn, nothing stalled, p50",
        "us",
        1,
        None,
        name,
        percentile_us(&h.ping_free, 50.0).unwrap_or(f64::NAN),
    );
    report.set(
        SECTION,
        "hol_ping_p50",
        "64-byte RTT on an open conn, while stalled, p50",
        "us",
        1,
        None,
        name,
        percentile_us(&h.ping_stalled, 50.0).unwrap_or(f64::NAN),
    );
    report.set(
        SECTION,
        "hol_ping_p99",
        "64-byte RTT on an open conn, while stalled, p99",
        "us",
        1,
        None,
        name,
        percentile_us(&h.ping_stalled, 99.0).unwrap_or(f64::NAN),
    );
    report.set(
        SECTION,
        "hol_buffered",
        "bytes held for the stalled conn",
        "MB",
        1,
        None,
        name,
        h.stall_buffered as f64 / 1e6,
    );
}
