//! Latency: small round trips, one after another, on one connection.
use std::time::Duration;

use super::Budget;
use crate::load::{self, percentile_us};
use crate::plan::Plan;
use crate::procs::Sched;
use crate::report::{Goal, Report};
use crate::tunnels::NetPath;

const SECTION: &str = "latency: 64-byte round trips on one connection";

/// Longest the round trips of one path may take.
const LIMIT: Duration = Duration::from_secs(60);

/// Records the p50 and p99 round-trip time of every live path.
pub async fn run(
    paths: &mut [NetPath],
    plan: &Plan,
    budget: &Budget,
    report: &mut Report,
    notes: &mut Vec<String>,
) {
    if budget.used_up("latency", notes) {
        return;
    }
    eprintln!("bench: latency ({} round trips)", plan.round_trips);
    for path in paths.iter_mut() {
        if !path.check_alive() {
            continue;
        }
        let before = path.sched_total();
        match load::latency(path.ends.echo, plan.round_trips, LIMIT).await {
            Ok(times) => {
                let after = path.sched_total();
                if !path.is_direct() {
                    per_round_trip(report, path.name, before, after, times.len());
                }
                let p50 = percentile_us(&times, 50.0).unwrap_or(f64::NAN);
                let p99 = percentile_us(&times, 99.0).unwrap_or(f64::NAN);
                let label = format!("{} round trips", plan.round_trips);
                report.set(
                    SECTION,
                    "rtt_p50",
                    &format!("{label}, p50"),
                    "us",
                    1,
                    Some(Goal::RatioAtMost(3.0)),
                    path.name,
                    p50,
                );
                report.set(
                    SECTION,
                    "rtt_p99",
                    &format!("{label}, p99"),
                    "us",
                    1,
                    Some(Goal::RatioAtMost(5.0)),
                    path.name,
                    p99,
                );
            }
            Err(e) => notes.push(format!("{}: latency failed: {e}", path.name)),
        }
    }
}

/// Where a round trip's time goes in the forwarding processes: how often
/// one of them is woken and put on a CPU, and the CPU time it spends.
fn per_round_trip(report: &mut Report, path: &str, before: Sched, after: Sched, trips: usize) {
    if trips == 0 {
        return;
    }
    let n = trips as f64;
    report.set(
        SECTION,
        "rtt_runs",
        "forwarding processes scheduled, per round trip",
        "",
        1,
        None,
        path,
        after.runs.saturating_sub(before.runs) as f64 / n,
    );
    report.set(
        SECTION,
        "rtt_cpu",
        "CPU per round trip, forwarding processes",
        "us",
        1,
        None,
        path,
        after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / n / 1000.0,
    );
}
