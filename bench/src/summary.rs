//! The end of a run: what became of the processes, the printed table and
//! the JSON file.
use serde::Serialize;
use std::path::Path;

use crate::plan::Plan;
use crate::procs::{NofileLimit, Role};
use crate::report::{self, Machine, Report};
use crate::tunnels::NetPath;

/// What the JSON file holds.
#[derive(Serialize)]
pub struct Output<'a> {
    pub tool: &'static str,
    pub version: &'static str,
    pub machine: &'a Machine,
    pub nofile: &'a NofileLimit,
    pub plan: &'a Plan,
    pub wall_secs: f64,
    /// Percent of all CPUs busy in the second before measuring.
    pub background_busy_percent: Option<f64>,
    pub build_secs: f64,
    pub install_secs: f64,
    pub paths: Vec<PathInfo>,
    pub rows: &'a [report::Row],
    pub notes: &'a [String],
}

#[derive(Serialize)]
pub struct PathInfo {
    name: String,
    hops: String,
    processes: Vec<ProcInfo>,
    broken: Option<String>,
}

#[derive(Serialize)]
struct ProcInfo {
    label: String,
    role: Role,
    log: String,
    warning_lines: usize,
    first_warnings: Vec<String>,
}

/// Notes processes that died and warnings in their logs, then stops every
/// path's processes; returns what the JSON file says about each path.
pub async fn wrap_up(paths: &mut [NetPath], notes: &mut Vec<String>) -> Vec<PathInfo> {
    let mut infos = Vec::new();
    for path in paths.iter_mut() {
        path.check_alive();
        if let Some(why) = &path.broken {
            notes.push(format!(
                "{}: a process ended during the run: {why}",
                path.name
            ));
        }
        let mut processes = Vec::new();
        for p in &path.procs {
            let (count, first) = p.log_problems(5);
            if count > 0 {
                notes.push(format!(
                    "{}: {count} warning/error lines in {} (first: {})",
                    p.label,
                    p.log.display(),
                    first.first().map(String::as_str).unwrap_or("")
                ));
            }
            processes.push(ProcInfo {
                label: p.label.clone(),
                role: p.role,
                log: p.log.display().to_string(),
                warning_lines: count,
                first_warnings: first,
            });
        }
        infos.push(PathInfo {
            name: path.name.to_string(),
            hops: path.hops.to_string(),
            processes,
            broken: path.broken.clone(),
        });
        path.stop().await;
    }
    infos
}

/// Prints the header (machine, paths, roles), the table and the notes.
pub fn print_table(
    plan: &Plan,
    machine: &Machine,
    infos: &[PathInfo],
    report: &Report,
    notes: &[String],
) {
    println!();
    println!("vnet visitor-path benchmark ({} run)", plan.mode);
    println!(
        "date {}   commit {}   {} CPUs: {}   {} MiB RAM   Linux {}",
        machine.date_utc,
        machine.git_commit,
        machine.nproc,
        machine.cpu_model,
        machine.mem_total_mib,
        machine.kernel
    );
    for info in infos {
        println!("  {:<8} {}", info.name, info.hops);
    }
    let mut roles: Vec<String> = Vec::new();
    for role in [Role::Hub, Role::Serving, Role::Visiting] {
        let who: Vec<&str> = infos
            .iter()
            .flat_map(|i| &i.processes)
            .filter(|p| p.role == role)
            .map(|p| p.label.as_str())
            .collect();
        if !who.is_empty() {
            roles.push(format!("{} = {}", role.label(), who.join(" / ")));
        }
    }
    if !roles.is_empty() {
        println!("  roles: {}", roles.join("; "));
    }
    println!(
        "  ratio = path / direct; for latency and time rows lower is better, for rates and throughput higher is better"
    );
    println!();
    print!("{}", report.table());
    if !notes.is_empty() {
        println!();
        println!("notes:");
        for note in notes {
            println!("  - {note}");
        }
    }
}

/// Writes the results as pretty JSON, creating the directory if needed.
pub fn write_json(path: &Path, output: &Output) -> Result<(), String> {
    let json =
        serde_json::to_string_pretty(output).map_err(|e| format!("cannot encode results: {e}"))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(path, json + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}
