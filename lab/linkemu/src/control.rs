//! The control loop: notices changes to the control file, puts them in
//! force, and keeps the status file (generation in force, counters) fresh
//! so the lab can wait for a change to take hold.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::params::Shared;

/// How often the control file is read.
const POLL: Duration = Duration::from_millis(20);
/// How often the status file is rewritten when nothing changed.
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// Runs until `stop` says so. `text` is the control file as first read.
pub fn run(
    control: &Path,
    status: &Path,
    mut text: String,
    shared: &Shared,
    stop: impl Fn() -> bool,
) {
    let mut error = String::new();
    write_status(status, shared, &error);
    let mut last_status = Instant::now();
    while !stop() {
        std::thread::sleep(POLL);
        // A missing or half-written file is read again next time; the lab
        // writes it by rename, so a read sees the old or the new whole.
        if let Ok(now) = std::fs::read_to_string(control) {
            if now != text {
                match shared.params().apply(&now) {
                    Ok(params) => {
                        shared.set(params);
                        error.clear();
                    }
                    Err(e) => {
                        eprintln!("linkemu: {}: {e} (settings unchanged)", control.display());
                        error = e;
                    }
                }
                text = now;
                write_status(status, shared, &error);
                last_status = Instant::now();
            }
        }
        if last_status.elapsed() >= STATUS_EVERY {
            write_status(status, shared, &error);
            last_status = Instant::now();
        }
    }
}

/// Writes the status file whole (through a rename), with `error` if the
/// last control file was refused.
fn write_status(path: &Path, shared: &Shared, error: &str) {
    let mut body = shared.status();
    if !error.is_empty() {
        body += &format!("error={error}\n");
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let written = std::fs::write(&tmp, body).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        eprintln!("linkemu: {}: {e}", path.display());
    }
}
