//! `vnet ctl`: the shell's commands for a running vnet, from another
//! terminal or a script, in either mode.
//!
//! The vnet listens on a Unix socket beside its config (`config.ini` has
//! `config.ini.ctl`), made readable and writable by its own user only, and
//! answers only peers of that user (or root). One connection carries one
//! command line; the answer is a status line (`0` done, `1` the command
//! failed) followed by the command's text.
//!
//! - `server`: the vnet's side, a task per connection running the command
//!   through the shell's own executor with nobody to ask.
//! - `client`: the `vnet ctl` program's side.
pub mod client;
pub mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest command line a client may send.
pub const MAX_COMMAND: usize = 4096;

/// How long a client has to send its command line.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The socket of the vnet running with `config`: beside the file, with
/// `.ctl` added to its name (or where a symbolic link of that name
/// points). Absolute when the config exists, so that the vnet and
/// `vnet ctl` agree from any working directory.
pub fn socket_path(config: &Path) -> PathBuf {
    let config = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    let mut name = config.file_name().unwrap_or_default().to_os_string();
    name.push(".ctl");
    config.with_file_name(name)
}

/// Whom the socket's two ends trust: this process's own user, and root.
pub(crate) fn trusted(uid: u32) -> bool {
    uid == rustix::process::geteuid().as_raw() || uid == 0
}

/// Exit status and answer, as the server sends them.
pub(crate) fn answer(ok: bool, text: &str) -> String {
    format!("{}\n{text}", if ok { 0 } else { 1 })
}
