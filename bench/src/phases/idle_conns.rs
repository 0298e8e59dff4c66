//! Concurrent idle mapped connections: what holding many open connections
//! costs the tunnel processes, and whether they all still work. Tunnels
//! only, since the figures are the tunnel processes' memory; run last, as
//! running out of descriptors may disturb the processes.
use std::time::Duration;
use tokio::net::TcpStream;

use super::Budget;
use crate::load;
use crate::plan::Plan;
use crate::procs::Role;
use crate::report::{Goal, Report};
use crate::tunnels::NetPath;

const SECTION: &str = "concurrent idle mapped connections (each echoes 1 byte)";

/// Longest opening the connections of one step may take.
const OPEN_LIMIT: Duration = Duration::from_secs(120);

/// Runs the idle steps on every live tunnel path, budget permitting.
pub async fn run(
    paths: &mut [NetPath],
    plan: &Plan,
    budget: &Budget,
    report: &mut Report,
    notes: &mut Vec<String>,
) {
    for path in paths.iter_mut().filter(|p| !p.is_direct()) {
        if budget.used_up(&format!("idle connections through {}", path.name), notes)
            || !path.check_alive()
        {
            continue;
        }
        one_path(path, plan, report, notes).await;
    }
}

/// The path's memory before any idle connection is opened.
struct Baseline {
    total_kib: u64,
    by_role: Vec<(Role, Option<u64>)>,
}

/// RSS of all the path's processes together, KiB.
fn total_rss(path: &NetPath) -> u64 {
    path.rss_by_role().iter().filter_map(|(_, r)| *r).sum()
}

/// Opens idle mapped connections in steps, measures the path's memory at
/// each, and checks that every connection still echoes.
async fn one_path(path: &mut NetPath, plan: &Plan, report: &mut Report, notes: &mut Vec<String>) {
    eprintln!(
        "bench: idle connections through {}: {:?}",
        path.name, plan.idle_steps
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = Baseline {
        by_role: path.rss_by_role(),
        total_kib: total_rss(path),
    };
    report.set(
        SECTION,
        "idle_rss_before",
        "RSS, all processes, before opening any",
        "MiB",
        1,
        None,
        path.name,
        base.total_kib as f64 / 1024.0,
    );
    let mut held = Vec::new();
    for &step in &plan.idle_steps {
        if !open_step(path, plan, step, &mut held, &base, report, notes).await {
            break;
        }
    }
    after_closing(path, held, report).await;
}

/// What one step found.
struct Step {
    /// Connections the step aimed to hold open.
    goal: usize,
    open_secs: f64,
    /// Descriptors of the path's busiest process.
    max_fds: Option<usize>,
    echoing: usize,
    rss_kib: u64,
    rss_by_role: Vec<(Role, Option<u64>)>,
    held: usize,
}

/// Brings `held` up to `step` connections, then measures and verifies
/// them. False once a process of the path has died.
async fn open_step(
    path: &mut NetPath,
    plan: &Plan,
    step: usize,
    held: &mut Vec<TcpStream>,
    base: &Baseline,
    report: &mut Report,
    notes: &mut Vec<String>,
) -> bool {
    let opened = load::open_idle(
        path.ends.idle,
        held,
        step,
        plan.idle_open_concurrency,
        32,
        OPEN_LIMIT,
    )
    .await;
    if opened.failed > 0 || held.len() < step {
        notes.push(format!(
            "{}: opening {step} idle connections: {} open after {:.1} s, {} attempts failed{}; errors: {}",
            path.name,
            held.len(),
            opened.secs,
            opened.failed,
            opened.gave_up.map(|g| format!(" ({g})")).unwrap_or_default(),
            opened.errors.join(" | ")
        ));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alive = path.check_alive();
    let rss_by_role = path.rss_by_role();
    let rss_kib = total_rss(path);
    let max_fds = path.procs.iter().filter_map(|p| p.fd_count()).max();
    let fds: Vec<String> = path
        .procs
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.label,
                p.fd_count().map_or("?".into(), |n| n.to_string())
            )
        })
        .collect();
    let (back, ok, first_err) = load::verify_idle(std::mem::take(held), 256).await;
    *held = back;
    if ok < step {
        notes.push(format!(
            "{}: at {step} idle connections: {ok} still echo{}; open descriptors: {}{}",
            path.name,
            first_err
                .map(|e| format!(" (first failure: {e})"))
                .unwrap_or_default(),
            fds.join(", "),
            if alive {
                String::new()
            } else {
                format!("; {}", path.broken.clone().unwrap_or_default())
            }
        ));
    }
    let found = Step {
        goal: step,
        open_secs: opened.secs,
        max_fds,
        echoing: ok,
        rss_kib,
        rss_by_role,
        held: held.len(),
    };
    record_step(path.name, &found, base, report);
    alive
}

/// The rows of one step: time to open, descriptors, connections that
/// echo, memory in all and per connection.
fn record_step(name: &str, s: &Step, base: &Baseline, report: &mut Report) {
    let step = s.goal;
    let label = format!("{step}");
    report.set(
        SECTION,
        &format!("idle_secs_{step}"),
        &format!("{label}: time to open them (from the step before)"),
        "s",
        1,
        None,
        name,
        s.open_secs,
    );
    if let Some(n) = s.max_fds {
        report.set(
            SECTION,
            &format!("idle_fds_{step}"),
            &format!("{label}: open descriptors, busiest process"),
            "",
            0,
            None,
            name,
            n as f64,
        );
    }
    report.set(
        SECTION,
        &format!("idle_ok_{step}"),
        &format!("{label}: connections echoing"),
        "",
        0,
        Some(Goal::AtLeast(step as f64)),
        name,
        s.echoing as f64,
    );
    report.set(
        SECTION,
        &format!("idle_rss_{step}"),
        &format!("{label}: RSS, all processes"),
        "MiB",
        1,
        None,
        name,
        s.rss_kib as f64 / 1024.0,
    );
    if s.held == 0 {
        return;
    }
    let per = s.rss_kib.saturating_sub(base.total_kib) as f64 / s.held as f64;
    report.set(
        SECTION,
        &format!("idle_per_{step}"),
        &format!("{label}: KiB per connection, all processes"),
        "KiB",
        1,
        Some(Goal::AtMost(16.0)),
        name,
        per,
    );
    for ((role, now), (_, was)) in s.rss_by_role.iter().zip(&base.by_role) {
        if let (Some(now), Some(was)) = (now, was) {
            let per = now.saturating_sub(*was) as f64 / s.held as f64;
            report.set(
                SECTION,
                &format!("idle_per_{step}_{role:?}"),
                &format!("{label}: KiB per connection, {}", role.label()),
                "KiB",
                1,
                None,
                name,
                per,
            );
        }
    }
}

/// Closes the connections and, 2 s later, records what memory and
/// descriptors the path gave back.
async fn after_closing(path: &mut NetPath, held: Vec<TcpStream>, report: &mut Report) {
    let count = held.len();
    drop(held);
    tokio::time::sleep(Duration::from_secs(2)).await;
    if path.check_alive() && count > 0 {
        report.set(
            SECTION,
            "idle_rss_after",
            "RSS, all processes, 2 s after closing them",
            "MiB",
            1,
            None,
            path.name,
            total_rss(path) as f64 / 1024.0,
        );
        let fds: usize = path.procs.iter().filter_map(|p| p.fd_count()).sum();
        report.set(
            SECTION,
            "idle_fds_after",
            "open descriptors, all processes, 2 s after closing them",
            "",
            0,
            None,
            path.name,
            fds as f64,
        );
    }
}
