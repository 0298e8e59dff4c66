//! A program of the workspace run as its own process, as a user starts
//! it: stdin closed, killed when dropped, and its log (stderr) read line
//! by line, so a test waits for a line instead of sleeping.
use std::ffi::OsStr;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

use crate::wait::within;

/// A running program and its log.
pub struct Logged {
    pub child: Child,
    pub logs: Lines<BufReader<ChildStderr>>,
}

impl Logged {
    /// Starts `program` with `args` and `RUST_LOG=level`.
    pub fn start(program: impl AsRef<OsStr>, args: &[&OsStr], level: &str) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_LOG", level)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let logs = BufReader::new(child.stderr.take().unwrap()).lines();
        Self { child, logs }
    }

    /// The next log line containing `needle` (bounded by [`within`]).
    pub async fn line_with(&mut self, needle: &str) -> String {
        line_with(&mut self.logs, needle).await
    }

    /// Reads the log until a line with each of `needles` has come, in
    /// whatever order (bounded by [`within`]).
    pub async fn lines_with_all(&mut self, needles: &[&str]) {
        let mut missing: Vec<&str> = needles.to_vec();
        within(&format!("log lines {needles:?}"), async {
            while !missing.is_empty() {
                let Some(line) = self.logs.next_line().await.unwrap() else {
                    panic!("the log ended before lines with {missing:?}");
                };
                missing.retain(|needle| !line.contains(needle));
            }
        })
        .await
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }
}

/// Reads `logs` until a line contains `needle`, and returns that line;
/// fails the test when the log ends first or nothing comes in time.
pub async fn line_with(logs: &mut Lines<BufReader<ChildStderr>>, needle: &str) -> String {
    within(&format!("log line {needle:?}"), async {
        while let Some(line) = logs.next_line().await.unwrap() {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("the log ended before a line with {needle:?}");
    })
    .await
}
