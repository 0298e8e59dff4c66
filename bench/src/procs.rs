//! Child processes under measurement, and what Linux tells about them:
//! resident memory from /proc/PID/status, CPU time from /proc/PID/stat.
//! Also the descriptor limit and free loopback ports.
use serde::Serialize;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// What a process does in its tunnel; rows are keyed by role so a vnet
/// process and its rathole counterpart land in the same row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The public middle: route, rathole server.
    Hub,
    /// Next to the target: vnet home, rathole client.
    Serving,
    /// Where the visitor connects: vnet office (rathole has none).
    Visiting,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Hub => "hub",
            Role::Serving => "serving side",
            Role::Visiting => "visiting side",
        }
    }
}

/// A child that is killed when dropped (also on panic or Ctrl-C).
pub struct Proc {
    pub label: String,
    pub role: Role,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// Starts `program args`, stdout and stderr into `log`, stdin closed.
    pub fn spawn(
        label: &str,
        role: Role,
        program: &Path,
        args: &[&Path],
        log: &Path,
        env: &[(&str, &str)],
    ) -> Result<Proc, String> {
        let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {label} ({}): {e}", program.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| format!("{label} exited at once"))?;
        Ok(Proc {
            label: label.to_string(),
            role,
            pid,
            log: log.to_path_buf(),
            child,
        })
    }

    /// Resident set size in KiB, if the process is still there.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// User plus system CPU seconds so far.
    pub fn cpu_secs(&self) -> Option<f64> {
        cpu_secs(self.pid)
    }

    /// Open descriptors, counted in /proc/PID/fd.
    pub fn fd_count(&self) -> Option<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .ok()
            .map(|d| d.count())
    }

    /// `Err` with the exit status if the process has ended.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited: {status}", self.label)),
            Err(err) => Err(format!("{}: cannot query: {err}", self.label)),
        }
    }

    /// Kills and reaps the process (bounded).
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }

    /// Lines of the log that look like warnings or errors, and how many.
    pub fn log_problems(&self, keep: usize) -> (usize, Vec<String>) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut count = 0;
        let mut kept = Vec::new();
        for line in text.lines() {
            let line = strip_ansi(line);
            // tracing's format: timestamp, level, then the rest.
            let level = line.split_whitespace().nth(1).unwrap_or("");
            if matches!(level, "WARN" | "ERROR") || line.contains("panicked") {
                count += 1;
                if kept.len() < keep {
                    kept.push(line);
                }
            }
        }
        (count, kept)
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// VmRSS of any process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of any process, seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; count after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

/// Scheduler totals of a process over all its threads, from each thread's
/// /proc/PID/task/TID/schedstat: nanoseconds on a CPU (precise, unlike the
/// 10 ms ticks of `cpu_secs`) and how many times a thread was put on one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sched {
    pub cpu_ns: u64,
    pub runs: u64,
}

pub fn sched(pid: u32) -> Option<Sched> {
    let mut total = Sched::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(text) = std::fs::read_to_string(task.ok()?.path().join("schedstat")) else {
            continue; // a thread that just ended
        };
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
        total.cpu_ns += fields.next()??;
        let _waiting = fields.next();
        total.runs += fields.next()??;
    }
    Some(total)
}

/// Busy and total jiffies of all CPUs together, from /proc/stat.
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

/// The first three fields of /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// The open-files limit before and after raising it.
#[derive(Debug, Clone, Serialize)]
pub struct NofileLimit {
    pub soft_before: u64,
    pub hard_before: u64,
    pub soft: u64,
    pub hard: u64,
}

// rlim_t is u64 here but not on every target.
#[allow(clippy::unnecessary_cast)]
fn get_nofile() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some((limit.rlim_cur as u64, limit.rlim_max as u64))
}

#[allow(clippy::unnecessary_cast)]
fn set_nofile(soft: u64, hard: u64) -> bool {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we own.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 }
}

/// Raises this process's open-files limit (children inherit it): the hard
/// limit to `want` if allowed (root with CAP_SYS_RESOURCE), then the soft
/// limit to the hard one.
pub fn raise_nofile(want: u64) -> NofileLimit {
    let (soft_before, hard_before) = get_nofile().unwrap_or((0, 0));
    if hard_before < want {
        let _ = set_nofile(soft_before.min(want), want);
    }
    let (_, hard) = get_nofile().unwrap_or((soft_before, hard_before));
    // An unlimited hard limit still cannot exceed fs.nr_open.
    let soft_goal = hard.min(1 << 20);
    if !set_nofile(soft_goal, hard) {
        let _ = set_nofile(want.min(hard), hard);
    }
    let (soft, hard) = get_nofile().unwrap_or((soft_before, hard_before));
    NofileLimit {
        soft_before,
        hard_before,
        soft,
        hard,
    }
}

/// `n` distinct free loopback ports.
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    // Hold them all while choosing so none repeats.
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(
            std::net::TcpListener::bind(("127.0.0.1", 0))
                .map_err(|e| format!("no free loopback port: {e}"))?,
        );
    }
    held.iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| format!("no free loopback port: {e}"))
        })
        .collect()
}

/// Waits until `log` contains `needle` (bounded).
pub async fn wait_for_log(log: &Path, needle: &str, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
