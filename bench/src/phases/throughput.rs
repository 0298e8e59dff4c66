//! Throughput, upload and download, one stream and several; and from the
//! same transfers, the CPU time each process spent per GB forwarded.
use std::time::Duration;

use super::{median, Budget};
use crate::load::{self, Direction};
use crate::plan::Plan;
use crate::procs::{self, Role};
use crate::report::{Goal, Report};
use crate::tunnels::NetPath;

const SECTION: &str = "throughput";
const CPU_SECTION: &str = "CPU per GB forwarded (throughput phase)";

/// One kind of transfer, measured on every path.
struct Test {
    /// Row key, after "tput_".
    key: &'static str,
    label: String,
    dir: Direction,
    streams: usize,
    goal: Option<Goal>,
}

fn tests(plan: &Plan) -> [Test; 4] {
    let n = plan.parallel_streams;
    let test = |key, label, dir, streams, goal| Test {
        key,
        label,
        dir,
        streams,
        goal,
    };
    [
        test(
            "up1",
            "upload, 1 stream".to_string(),
            Direction::Up,
            1,
            Some(Goal::RatioAtLeast(0.35)),
        ),
        test(
            "down1",
            "download, 1 stream".to_string(),
            Direction::Down,
            1,
            Some(Goal::RatioAtLeast(0.35)),
        ),
        test(
            "up_par",
            format!("upload, {n} streams"),
            Direction::Up,
            n,
            None,
        ),
        test(
            "down_par",
            format!("download, {n} streams"),
            Direction::Down,
            n,
            None,
        ),
    ]
}

/// What one path's successful transfers cost, summed over all tests.
struct Tally {
    /// CPU seconds of each of the path's processes.
    cpu: Vec<(Role, f64)>,
    /// Bytes moved.
    forwarded: u64,
    /// CPU seconds of this process (clients and target).
    own_cpu: f64,
    /// Busy and total jiffies of the whole machine.
    machine_busy: (u64, u64),
}

impl Tally {
    fn new(path: &NetPath) -> Self {
        Tally {
            cpu: path
                .cpu_by_role()
                .into_iter()
                .map(|(r, _)| (r, 0.0))
                .collect(),
            forwarded: 0,
            own_cpu: 0.0,
            machine_busy: (0, 0),
        }
    }
}

/// Runs every test on every live path, the paths taking turns each round,
/// records each path's median, then the CPU time per GB.
pub async fn run(
    paths: &mut [NetPath],
    plan: &Plan,
    budget: &Budget,
    report: &mut Report,
    notes: &mut Vec<String>,
) {
    let mut tallies: Vec<Tally> = paths.iter().map(Tally::new).collect();
    for test in tests(plan) {
        if budget.used_up("throughput", notes) {
            break;
        }
        eprintln!(
            "bench: throughput: {} ({} x {} s per path, alternating)",
            test.label, plan.throughput_rounds, plan.throughput_secs
        );
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
        let count = paths.len();
        for i in (0..plan.throughput_rounds).flat_map(|_| 0..count) {
            let path = &mut paths[i];
            if !path.check_alive() {
                continue;
            }
            match transfer(path, &test, plan, &mut tallies[i]).await {
                Ok(mb_per_s) => samples[i].push(mb_per_s),
                Err(e) => notes.push(format!(
                    "{}: throughput {} failed: {e}",
                    path.name, test.label
                )),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for (path, samples) in paths.iter().zip(samples) {
            if let Some(median) = median(&samples) {
                let key = format!("tput_{}", test.key);
                report.set(
                    SECTION,
                    &key,
                    &test.label,
                    "MB/s",
                    0,
                    test.goal,
                    path.name,
                    median,
                );
                report.samples(&key, path.name, samples);
            }
        }
    }
    cpu_per_gb(paths, &tallies, report);
}

/// One timed transfer on one path; adds its cost to `tally` if it worked
/// and returns its rate in MB/s.
async fn transfer(
    path: &NetPath,
    test: &Test,
    plan: &Plan,
    tally: &mut Tally,
) -> Result<f64, String> {
    let addr = match test.dir {
        Direction::Up => path.ends.sink,
        Direction::Down => path.ends.source,
    };
    let before = path.cpu_by_role();
    let own_before = procs::cpu_secs(std::process::id());
    let machine_before = procs::machine_jiffies();
    let done = load::parallel(test.dir, addr, test.streams, plan.dur()).await;
    let after = path.cpu_by_role();
    let own_after = procs::cpu_secs(std::process::id());
    let machine_after = procs::machine_jiffies();
    let t = done?;
    if let (Some(b), Some(a)) = (own_before, own_after) {
        tally.own_cpu += a - b;
    }
    if let (Some(b), Some(a)) = (machine_before, machine_after) {
        tally.machine_busy.0 += a.0 - b.0;
        tally.machine_busy.1 += a.1 - b.1;
    }
    tally.forwarded += t.bytes;
    for ((slot, b), a) in tally.cpu.iter_mut().zip(&before).zip(&after) {
        slot.1 += a.1 - b.1;
    }
    Ok(t.mb_per_s())
}

/// CPU seconds per GB moved: the bench's own share and the machine's load
/// for every path, and each tunnel process's share for the tunnels.
fn cpu_per_gb(paths: &[NetPath], tallies: &[Tally], report: &mut Report) {
    for (path, tally) in paths.iter().zip(tallies) {
        if tally.forwarded == 0 {
            continue;
        }
        let gb = tally.forwarded as f64 / 1e9;
        report.set(
            CPU_SECTION,
            "cpu_bench",
            "bench process (clients and target)",
            "s/GB",
            2,
            None,
            path.name,
            tally.own_cpu / gb,
        );
        let (busy, total) = tally.machine_busy;
        if total > 0 {
            report.set(
                CPU_SECTION,
                "cpu_machine_busy",
                "whole machine busy during the transfers",
                "%",
                0,
                None,
                path.name,
                100.0 * busy as f64 / total as f64,
            );
        }
        if path.is_direct() {
            continue;
        }
        let mut sum = 0.0;
        for (role, secs) in &tally.cpu {
            sum += secs;
            report.set(
                CPU_SECTION,
                &format!("cpu_{role:?}"),
                role.label(),
                "s/GB",
                2,
                None,
                path.name,
                secs / gb,
            );
        }
        report.set(
            CPU_SECTION,
            "cpu_total",
            "all processes of the path",
            "s/GB",
            2,
            None,
            path.name,
            sum / gb,
        );
    }
}
