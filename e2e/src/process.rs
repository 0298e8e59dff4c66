//! One child process: its log lines, waits on them, signals, and a kill on
//! drop.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::TIMEOUT;

/// A signal to send with [`Proc::signal`].
pub use rustix::process::Signal;

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// stderr reached its end: the process has exited (or closed it).
    closed: bool,
}

#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

/// A running `route` or `vnet`. Its stderr is read line by line on a
/// thread; dropping it kills the process (SIGKILL) and reaps it, and if the
/// test is panicking, prints the end of its log.
pub struct Proc {
    name: String,
    child: Child,
    log: Arc<Log>,
    reader: Option<JoinHandle<()>>,
    started: Instant,
}

impl Proc {
    /// Starts `program CONFIG` in `dir` with `RUST_LOG=info`.
    pub fn spawn(name: &str, program: &Path, config: &Path, dir: &Path) -> Proc {
        let mut child = Command::new(program)
            .arg(config)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("{name}: cannot start {}: {err}", program.display()));
        let started = Instant::now();
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Log::default());
        let reader = {
            let log = log.clone();
            std::thread::Builder::new()
                .name(format!("log-{name}"))
                .spawn(move || {
                    for line in BufReader::new(stderr).lines() {
                        let Ok(line) = line else { break };
                        let mut state = log.state.lock().unwrap();
                        state.lines.push(line);
                        log.changed.notify_all();
                    }
                    log.state.lock().unwrap().closed = true;
                    log.changed.notify_all();
                })
                .expect("log reader thread")
        };
        Proc {
            name: name.to_string(),
            child,
            log,
            reader: Some(reader),
            started,
        }
    }

    /// The name given at start (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When it was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Resident memory in KiB, `None` once gone.
    pub fn rss_kib(&self) -> Option<u64> {
        crate::rss_kib(self.pid())
    }

    /// How many log lines have arrived so far; pass it to
    /// [`Proc::wait_line_from`] to wait only for later lines.
    pub fn mark(&self) -> usize {
        self.log.state.lock().unwrap().lines.len()
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        self.log.state.lock().unwrap().lines.join("\n")
    }

    /// The last `n` log lines.
    pub fn log_tail(&self, n: usize) -> String {
        let state = self.log.state.lock().unwrap();
        let from = state.lines.len().saturating_sub(n);
        state.lines[from..].join("\n")
    }

    /// Waits up to [`TIMEOUT`] for a log line containing every one of
    /// `needles`, and returns it; panics with the log otherwise.
    pub fn wait_for(&self, needles: &[&str]) -> String {
        self.wait_line_from(0, needles, TIMEOUT)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Waits up to `timeout` for a line at index `from` or later that
    /// contains all of `needles`. The error says what was awaited and
    /// shows the end of the log.
    pub fn wait_line_from(
        &self,
        from: usize,
        needles: &[&str],
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut next = from;
        let mut state = self.log.state.lock().unwrap();
        loop {
            while next < state.lines.len() {
                let line = &state.lines[next];
                if needles.iter().all(|n| line.contains(n)) {
                    return Ok(line.clone());
                }
                next += 1;
            }
            let why = if state.closed {
                "it exited first"
            } else {
                let now = Instant::now();
                if now >= deadline {
                    "timed out"
                } else {
                    state = self
                        .log
                        .changed
                        .wait_timeout(state, deadline - now)
                        .unwrap()
                        .0;
                    continue;
                }
            };
            let from = state.lines.len().saturating_sub(40);
            return Err(format!(
                "{}: no log line with {needles:?} within {timeout:?} ({why}); its log ends:\n{}",
                self.name,
                state.lines[from..].join("\n")
            ));
        }
    }

    /// Sends `signal` (does not wait for the process to end).
    pub fn signal(&self, signal: Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal)
            .unwrap_or_else(|err| panic!("{}: kill({signal:?}): {err}", self.name));
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Reaping has no event to wait on without a signal handler;
            // a short poll is enough here.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- {} (pid {}) log, last lines -----\n{}",
                self.name,
                self.child.id(),
                self.log_tail(30)
            );
        }
    }
}
