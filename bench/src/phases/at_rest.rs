//! Memory at rest: each process's RSS right after start, before any load.
use std::time::Duration;

use crate::procs;
use crate::report::{Goal, Report};
use crate::tunnels::NetPath;

const SECTION: &str = "memory at rest";

/// Waits a second so the processes settle, and meanwhile measures how busy
/// the machine is without us (returned, in percent of all CPUs), then
/// records every process's resident memory.
pub async fn run(paths: &[NetPath], report: &mut Report, notes: &mut Vec<String>) -> Option<f64> {
    let busy = background_busy(notes).await;
    for path in paths {
        for (role, rss) in path.rss_by_role() {
            if let Some(kib) = rss {
                report.set(
                    SECTION,
                    &format!("idle_rss_{role:?}"),
                    &format!("RSS at idle, {}", role.label()),
                    "KiB",
                    0,
                    Some(Goal::Below(8.0 * 1024.0)),
                    path.name,
                    kib as f64,
                );
            }
        }
    }
    busy
}

/// Percent of all CPUs that other processes kept busy over one second; a
/// busy machine makes every later figure noisy, so that gets a note.
async fn background_busy(notes: &mut Vec<String>) -> Option<f64> {
    let before = procs::machine_jiffies();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (Some(b), Some(a)) = (before, procs::machine_jiffies()) else {
        return None;
    };
    let busy = 100.0 * (a.0 - b.0) as f64 / (a.1 - b.1).max(1) as f64;
    if busy > 10.0 {
        let note = format!(
            "other processes kept the CPUs {busy:.0}% busy in the second before measuring \
             (load average {}): figures will be noisy",
            procs::load_average()
        );
        eprintln!("bench: warning: {note}");
        notes.push(note);
    }
    Some(busy)
}
