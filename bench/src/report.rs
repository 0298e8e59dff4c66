//! Results: rows of metric × path, ratios to the direct path, goals, the
//! printed table and the JSON file.
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A target a path's figure should meet.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// value / direct >= x
    RatioAtLeast(f64),
    /// value / direct <= x
    RatioAtMost(f64),
    /// value <= x
    AtMost(f64),
    /// value < x
    Below(f64),
    /// value >= x
    AtLeast(f64),
}

impl Goal {
    fn text(self, unit: &str) -> String {
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        match self {
            Goal::RatioAtLeast(x) => format!(">= {x}x"),
            Goal::RatioAtMost(x) => format!("<= {x}x"),
            Goal::AtMost(x) => format!("<= {}{unit}", trim(x)),
            Goal::Below(x) => format!("< {}{unit}", trim(x)),
            Goal::AtLeast(x) => format!(">= {}{unit}", trim(x)),
        }
    }

    fn met(self, value: f64, ratio: Option<f64>) -> Option<bool> {
        if !value.is_finite() {
            return None;
        }
        match self {
            Goal::RatioAtLeast(x) => ratio.map(|r| r >= x),
            Goal::RatioAtMost(x) => ratio.map(|r| r <= x),
            Goal::AtMost(x) => Some(value <= x),
            Goal::Below(x) => Some(value < x),
            Goal::AtLeast(x) => Some(value >= x),
        }
    }
}

fn trim(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// One metric across the paths.
#[derive(Debug, Serialize)]
pub struct Row {
    pub section: &'static str,
    pub key: String,
    pub label: String,
    pub unit: &'static str,
    /// Path name -> figure.
    pub values: BTreeMap<String, f64>,
    /// Path name -> figure / direct figure (when both exist).
    pub ratio_to_direct: BTreeMap<String, f64>,
    pub goal: Option<String>,
    /// Path name -> whether the goal is met (tunnel paths only).
    pub goal_met: BTreeMap<String, bool>,
    /// Path name -> the single runs behind a median, where there were several.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub samples: BTreeMap<String, Vec<f64>>,
    #[serde(skip)]
    goal_spec: Option<Goal>,
    #[serde(skip)]
    decimals: usize,
}

/// All rows, in the order first recorded.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub paths: Vec<String>,
}

pub const DIRECT: &str = "direct";

impl Report {
    pub fn new(paths: &[&str]) -> Self {
        Report {
            rows: Vec::new(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// Records `value` for `path` in row `key` (created on first use).
    #[allow(clippy::too_many_arguments)]
    pub fn set(
        &mut self,
        section: &'static str,
        key: &str,
        label: &str,
        unit: &'static str,
        decimals: usize,
        goal: Option<Goal>,
        path: &str,
        value: f64,
    ) {
        let row = match self.rows.iter_mut().position(|r| r.key == key) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    section,
                    key: key.to_string(),
                    label: label.to_string(),
                    unit,
                    values: BTreeMap::new(),
                    ratio_to_direct: BTreeMap::new(),
                    goal: goal.map(|g| g.text(unit)),
                    goal_met: BTreeMap::new(),
                    samples: BTreeMap::new(),
                    goal_spec: goal,
                    decimals,
                });
                self.rows.last_mut().expect("just pushed")
            }
        };
        row.values.insert(path.to_string(), value);
    }

    /// Keeps the single runs behind row `key`'s figure for `path`.
    pub fn samples(&mut self, key: &str, path: &str, samples: Vec<f64>) {
        if samples.len() > 1 {
            if let Some(row) = self.rows.iter_mut().find(|r| r.key == key) {
                row.samples.insert(path.to_string(), samples);
            }
        }
    }

    /// Computes ratios and goal checks.
    pub fn finish(&mut self) {
        for row in &mut self.rows {
            let direct = row.values.get(DIRECT).copied();
            for (path, &value) in &row.values {
                if path == DIRECT {
                    continue;
                }
                let ratio = direct
                    .filter(|d| *d != 0.0 && d.is_finite() && value.is_finite())
                    .map(|d| value / d);
                if let Some(r) = ratio {
                    row.ratio_to_direct.insert(path.clone(), r);
                }
                if let Some(met) = row.goal_spec.and_then(|g| g.met(value, ratio)) {
                    row.goal_met.insert(path.clone(), met);
                }
            }
        }
    }

    /// The table as text.
    pub fn table(&self) -> String {
        let tunnels: Vec<&String> = self.paths.iter().filter(|p| *p != DIRECT).collect();
        let mut header = vec!["metric".to_string(), "unit".to_string(), DIRECT.to_string()];
        for t in &tunnels {
            header.push(t.to_string());
            header.push("ratio".to_string());
        }
        header.push("goal".to_string());
        for t in &tunnels {
            header.push(format!("{t} ok"));
        }
        let mut lines: Vec<Option<Vec<String>>> = Vec::new();
        let mut sections: Vec<(usize, &str)> = Vec::new();
        let mut last_section = "";
        for row in &self.rows {
            if row.section != last_section {
                sections.push((lines.len(), row.section));
                last_section = row.section;
            }
            let fmt = |v: Option<&f64>| match v {
                Some(v) if v.is_finite() => format!("{:.*}", row.decimals, v),
                _ => "-".to_string(),
            };
            let mut cells = vec![
                row.label.clone(),
                row.unit.to_string(),
                fmt(row.values.get(DIRECT)),
            ];
            for t in &tunnels {
                cells.push(fmt(row.values.get(*t)));
                cells.push(
                    row.ratio_to_direct
                        .get(*t)
                        .map(|r| format!("{r:.2}x"))
                        .unwrap_or_else(|| "-".into()),
                );
            }
            cells.push(row.goal.clone().unwrap_or_default());
            for t in &tunnels {
                cells.push(match row.goal_met.get(*t) {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None if row.goal.is_some() && row.values.contains_key(*t) => "?".into(),
                    None => String::new(),
                });
            }
            lines.push(Some(cells));
        }
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for cells in lines.iter().flatten() {
            for (w, c) in widths.iter_mut().zip(cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        let render = |cells: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                if i == 0 {
                    let _ = write!(s, "{c:<w$}");
                } else if i == 1 {
                    let _ = write!(s, " | {c:<w$}");
                } else {
                    let _ = write!(s, " | {c:>w$}");
                }
            }
            s.trim_end().to_string()
        };
        let total: usize = widths.iter().sum::<usize>() + 3 * (widths.len() - 1);
        let mut out = String::new();
        out.push_str(&render(&header));
        out.push('\n');
        out.push_str(&"-".repeat(total));
        out.push('\n');
        let mut next_section = sections.iter().peekable();
        for (i, cells) in lines.iter().enumerate() {
            if let Some((_, name)) = next_section.next_if(|(at, _)| *at == i) {
                out.push_str(&format!("[{name}]\n"));
            }
            if let Some(cells) = cells {
                out.push_str(&render(cells));
                out.push('\n');
            }
        }
        out
    }
}

/// Facts about the machine and the build that produced the figures.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub mem_total_mib: u64,
    pub date_utc: String,
    pub git_commit: String,
}

impl Machine {
    pub fn probe(root: &std::path::Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let mem_total_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .map(|kib| kib / 1024)
            .unwrap_or(0);
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel,
            mem_total_mib,
            date_utc: utc_now(),
            git_commit: git_commit(root),
        }
    }
}

fn git_commit(root: &std::path::Path) -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => {
            // Tracked files changed since that commit?
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit} (with uncommitted changes)")
            } else {
                commit
            }
        }
        None => "unknown".into(),
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (year, month, day),
/// counting in 400-year eras that begin on March 1st.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn ratios_and_goals() {
        let mut r = Report::new(&[DIRECT, "vnet"]);
        let g = Some(Goal::RatioAtLeast(0.5));
        r.set("s", "k", "thing", "MB/s", 0, g, DIRECT, 100.0);
        r.set("s", "k", "thing", "MB/s", 0, g, "vnet", 40.0);
        r.set(
            "s",
            "m",
            "mem",
            "KiB",
            0,
            Some(Goal::Below(10.0)),
            "vnet",
            9.0,
        );
        r.finish();
        assert_eq!(r.rows[0].ratio_to_direct["vnet"], 0.4);
        assert!(!r.rows[0].goal_met["vnet"]);
        assert!(r.rows[1].goal_met["vnet"]);
        let t = r.table();
        assert!(t.contains("0.40x"), "{t}");
        assert!(t.contains("[s]"), "{t}");
    }
}
