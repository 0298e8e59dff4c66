//! The route process's own figures for the status page and metrics:
//! resident memory, open files, CPU time. Read from `/proc` on Linux;
//! elsewhere they are absent rather than made up.
use serde::Serialize;

/// The process's figures now; a figure that cannot be read is `None`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessFigures {
    /// Resident memory.
    pub rss_bytes: Option<u64>,
    /// Open file descriptors (sockets included).
    pub open_fds: Option<u64>,
    /// User and system CPU time so far.
    pub cpu_seconds: Option<f64>,
}

impl ProcessFigures {
    /// Reads them.
    pub fn now() -> Self {
        Self {
            rss_bytes: rss_bytes(),
            open_fds: open_fds(),
            cpu_seconds: cpu_seconds(),
        }
    }
}

#[cfg(target_os = "linux")]
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(target_os = "linux")]
fn open_fds() -> Option<u64> {
    let fds = std::fs::read_dir("/proc/self/fd").ok()?;
    // Less the one read_dir holds open to list them.
    Some((fds.count() as u64).saturating_sub(1))
}

#[cfg(target_os = "linux")]
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces and parens):
    // utime and stime are the 12th and 13th after it, in clock ticks.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second();
    (ticks > 0).then(|| (user + system) as f64 / ticks as f64)
}

#[cfg(not(target_os = "linux"))]
fn rss_bytes() -> Option<u64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn open_fds() -> Option<u64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn cpu_seconds() -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn figures_are_read_and_plausible() {
        let before = ProcessFigures::now();
        let after = ProcessFigures::now();
        let rss = after.rss_bytes.unwrap();
        assert!(rss > 1 << 20 && rss < 1 << 36, "{rss}");
        // Other tests of this process open files meanwhile: at least the
        // standard three.
        assert!(after.open_fds.unwrap() >= 3);
        assert!(after.cpu_seconds.unwrap() >= before.cpu_seconds.unwrap());
    }
}
