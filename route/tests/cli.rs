//! The `route` binary: bad configs exit with status 2 naming section and
//! key; a good one listens and says where.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug)]
enum Event {
    FirstLine(Option<String>),
    Exited(ExitStatus),
}

fn temp_config(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("route-cli-{}-{name}.ini", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn route(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_route"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The route on `config`, logging at info level to a pipe.
fn start_logging(config: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_route"))
        .arg(config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn config_errors_exit_2_naming_section_and_key() {
    let cases = [
        (
            "missing-ip",
            "[route]\nport=7749\n",
            "[route] ip: is required but missing",
        ),
        (
            "bad-port",
            "[route]\nip=0.0.0.0\nport=77490\n",
            "[route] port: \"77490\" is not a number in 0-65535",
        ),
        (
            "bad-ip",
            "[route]\nip=1.2.3\nport=7749\n",
            "[route] ip: \"1.2.3\" is not an IP address or host name",
        ),
        (
            "unknown",
            "[route]\nip=::\nport=7749\n[roote]\n",
            "[roote]: unknown section",
        ),
    ];
    for (name, text, want) in cases {
        let path = temp_config(name, text);
        let out = route(&[path.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(want), "{name}: {stderr}");
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn listens_where_configured_and_stops_on_sigterm() {
    let path = temp_config("good", "[route] ; 注释\nip=127.0.0.1 ; loopback\nport=0\n");
    let mut child = start_logging(&path);
    let pid = child.id().to_string();
    // Everything the child does is awaited through a channel with a
    // timeout, so a route that never logs or never stops fails the test
    // instead of hanging it. Only the first line is read, then the pipe
    // closes: a log reader going away must not crash the route.
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let watcher = std::thread::spawn(move || {
        let first = BufReader::new(stderr).lines().next();
        tx.send(Event::FirstLine(first.and_then(Result::ok)))
            .unwrap();
        tx.send(Event::Exited(child.wait().unwrap())).unwrap();
    });
    let kill_and_fail = |why: &str| -> ! {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("{why}");
    };
    match rx.recv_timeout(LIMIT) {
        Ok(Event::FirstLine(Some(first))) => {
            assert!(
                first.contains("route listening") && first.contains("127.0.0.1:"),
                "{first}"
            );
        }
        other => kill_and_fail(&format!("no listening line: {other:?}")),
    }
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    match rx.recv_timeout(LIMIT) {
        Ok(Event::Exited(status)) => assert!(status.success(), "{status:?}"),
        other => kill_and_fail(&format!("route did not stop on SIGTERM: {other:?}")),
    }
    watcher.join().unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn help_and_version() {
    let help = route(&["--help".as_ref()]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("[CONFIG]"));
    let word = route(&["help".as_ref()]);
    assert!(word.status.success());
    assert!(String::from_utf8_lossy(&word.stdout).contains("[CONFIG]"));
    let version = route(&["--version".as_ref()]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("route {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn sighup_puts_a_new_token_in_force_and_names_what_needs_a_restart() {
    let path = temp_config("hup", "[route]\nip=127.0.0.1\nport=0\ntoken=alpha\n");
    let mut child = start_logging(&path);
    let pid = child.id().to_string();
    // Lines arrive through a channel, each awaited with a timeout.
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let kill = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    let line_with = |needle: &str| -> String {
        loop {
            match rx.recv_timeout(LIMIT) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(err) => {
                    let _ = Command::new("kill").args(["-KILL", &pid]).status();
                    panic!("no line with {needle:?}: {err}");
                }
            }
        }
    };
    line_with("route listening");

    std::fs::write(&path, "[route]\nip=localhost\nport=0\ntoken=beta\n").unwrap();
    kill("-HUP");
    let reloaded = line_with("config reloaded");
    assert!(reloaded.contains("changed=token"), "{reloaded}");
    let restart = line_with("need a restart");
    assert!(restart.contains("keys=ip"), "{restart}");

    std::fs::write(&path, "[route]\nip=127.0.0.1\nport=77777\n").unwrap();
    kill("-HUP");
    let refused = line_with("config not reloaded");
    assert!(refused.contains("port"), "{refused}");

    kill("-TERM");
    line_with("route stopped");
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    std::fs::remove_file(path).unwrap();
}
