//! The `vnet ctl` program: sends one command line to the vnet running
//! with a config and prints its answer.
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::socket_path;

/// How long a command may take: the longest ones wait on the route
/// (`ping`, `unserve`) or on a reload.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `command` against the vnet of `config`; returns the exit status:
/// 0 done, 1 the command failed, 2 no vnet answers for that config.
pub fn run(config: &Path, command: &str) -> u8 {
    let socket = socket_path(config);
    let mut stream = match UnixStream::connect(&socket) {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!(
                "vnet ctl: no vnet runs with {} (cannot open {}: {err})",
                config.display(),
                socket.display()
            );
            return 2;
        }
    };
    // Only a vnet of this user (or root) hears the command.
    match rustix::net::sockopt::socket_peercred(&stream) {
        Ok(peer) if super::trusted(peer.uid.as_raw()) => {}
        _ => {
            eprintln!(
                "vnet ctl: {} is not held by a vnet of this user; not talking to it",
                socket.display()
            );
            return 2;
        }
    }
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    let sent = stream
        .write_all(format!("{command}\n").as_bytes())
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write));
    let mut reply = String::new();
    if let Err(err) = sent.and_then(|()| stream.read_to_string(&mut reply).map(drop)) {
        eprintln!("vnet ctl: the vnet did not answer: {err}");
        return 2;
    }
    let (status, text) = reply.split_once('\n').unwrap_or((reply.as_str(), ""));
    match status {
        "0" => {
            if !text.is_empty() {
                println!("{text}");
            }
            0
        }
        "1" => {
            eprintln!("{text}");
            1
        }
        _ => {
            eprintln!("vnet ctl: the vnet's answer was not understood");
            2
        }
    }
}

/// The command line for `args` as a shell would have split them: a word
/// with spaces in it is quoted again (`info="home web"`).
///
/// # Errors
/// A word that is empty, or holds a `"` or a control character, which the
/// shell's line cannot carry.
pub fn command_line(args: &[String]) -> Result<String, String> {
    if let Some(bad) = args
        .iter()
        .find(|a| a.is_empty() || a.contains(|c: char| c == '"' || c.is_control()))
    {
        return Err(format!(
            "{:?}: a word may not be empty or hold quotes or control characters",
            bad
        ));
    }
    let words: Vec<String> = args
        .iter()
        .map(|arg| {
            if !arg.contains(char::is_whitespace) {
                arg.clone()
            } else if let Some((key, value)) = arg.split_once('=') {
                format!("{key}=\"{value}\"")
            } else {
                format!("\"{arg}\"")
            }
        })
        .collect();
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn words_with_spaces_are_quoted_and_unsafe_ones_refused() {
        let line = command_line(&words(&["serve", "run", "web", "info=home web"])).unwrap();
        assert_eq!(line, "serve run web info=\"home web\"");
        assert!(command_line(&words(&["show", ""])).is_err());
        assert!(command_line(&words(&["use", "info=\"x"])).is_err());
        assert!(command_line(&words(&["show", "serves\nexit"])).is_err());
    }
}
