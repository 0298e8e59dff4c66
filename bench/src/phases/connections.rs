//! Connection rate: connect, echo one byte, close; first one at a time,
//! then many at once.
use std::time::Duration;

use super::Budget;
use crate::load::{self, percentile_us};
use crate::plan::Plan;
use crate::report::{Goal, Report};
use crate::tunnels::NetPath;

const SECTION: &str = "connection rate: connect + 1-byte echo + close";

/// Longest the connections of one path and one setting may take.
const LIMIT: Duration = Duration::from_secs(90);

/// One way of opening the connections, and how its rows are named.
struct Setting {
    concurrency: usize,
    /// Part of the row keys: conn_{key}_rate and so on.
    key: &'static str,
    goal: Option<Goal>,
    /// Start of the row labels, e.g. "200 sequential".
    how: String,
}

impl Setting {
    fn new(plan: &Plan, concurrency: usize, key: &'static str, goal: Option<Goal>) -> Self {
        let how = if concurrency == 1 {
            format!("{} sequential", plan.connections)
        } else {
            format!("{}, {} at a time", plan.connections, concurrency)
        };
        Setting {
            concurrency,
            key,
            goal,
            how,
        }
    }
}

/// Measures sequential, then concurrent connections, on every live path.
pub async fn run(
    paths: &mut [NetPath],
    plan: &Plan,
    budget: &Budget,
    report: &mut Report,
    notes: &mut Vec<String>,
) {
    let settings = [
        Setting::new(plan, 1, "seq", Some(Goal::RatioAtLeast(0.5))),
        Setting::new(plan, plan.connection_concurrency, "par", None),
    ];
    for setting in &settings {
        if budget.used_up("connection rate", notes) {
            break;
        }
        eprintln!("bench: connection rate ({})", setting.how);
        for path in paths.iter_mut() {
            if !path.check_alive() {
                continue;
            }
            one_path(path, plan, setting, report, notes).await;
            // Let closed connections settle between paths.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One setting on one path.
async fn one_path(
    path: &NetPath,
    plan: &Plan,
    setting: &Setting,
    report: &mut Report,
    notes: &mut Vec<String>,
) {
    let Setting {
        concurrency,
        key,
        goal,
        ref how,
    } = *setting;
    let before = path.sched_total();
    let r = load::conn_rate(path.ends.echo, plan.connections, concurrency, LIMIT).await;
    let after = path.sched_total();
    if r.failed > 0 || r.ok < plan.connections {
        notes.push(format!(
            "{}: connection rate ({how}): {} ok, {} failed{}",
            path.name,
            r.ok,
            r.failed,
            r.first_error
                .as_deref()
                .map(|e| format!(", first error: {e}"))
                .unwrap_or_default()
        ));
    }
    let rate = if r.secs > 0.0 {
        r.ok as f64 / r.secs
    } else {
        f64::NAN
    };
    report.set(
        SECTION,
        &format!("conn_{key}_rate"),
        &format!("{how}: connections/s"),
        "1/s",
        0,
        goal,
        path.name,
        rate,
    );
    report.set(
        SECTION,
        &format!("conn_{key}_p50"),
        &format!("{how}: time to first byte, p50"),
        "us",
        0,
        None,
        path.name,
        percentile_us(&r.ttfb, 50.0).unwrap_or(f64::NAN),
    );
    report.set(
        SECTION,
        &format!("conn_{key}_p99"),
        &format!("{how}: time to first byte, p99"),
        "us",
        0,
        None,
        path.name,
        percentile_us(&r.ttfb, 99.0).unwrap_or(f64::NAN),
    );
    if !path.is_direct() && r.ok > 0 {
        // Where a connection's cost goes: the forwarding processes' own
        // CPU time (user and kernel) and wakeups, spread over the
        // connections made.
        let n = r.ok as f64;
        report.set(
            SECTION,
            &format!("conn_{key}_cpu"),
            &format!("{how}: CPU per connection, forwarding processes"),
            "us",
            0,
            None,
            path.name,
            after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / n / 1000.0,
        );
        report.set(
            SECTION,
            &format!("conn_{key}_runs"),
            &format!("{how}: forwarding processes scheduled, per connection"),
            "",
            1,
            None,
            path.name,
            after.runs.saturating_sub(before.runs) as f64 / n,
        );
    }
    if r.failed > 0 {
        report.set(
            SECTION,
            &format!("conn_{key}_failed"),
            &format!("{how}: failed"),
            "",
            0,
            Some(Goal::AtMost(0.0)),
            path.name,
            r.failed as f64,
        );
    }
}
