//! The `vnet` binary: bad configs exit with status 2 and say where the
//! problem is, before anything starts.
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn temp_config(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("vnet-cli-{}-{name}.ini", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn vnet(args: &[&std::ffi::OsStr]) -> Output {
    // Bad configs fail before any socket is opened, so this cannot hang;
    // stdin is closed in case it ever tried to read.
    Command::new(env!("CARGO_BIN_EXE_vnet"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn each_kind_of_config_error_exits_2_naming_section_and_key() {
    let route = "[route]\nip=127.0.0.1\nport=7749\n";
    let cases = [
        (
            "missing",
            format!("{route}[serve.ssh]\nip=127.0.0.1\n"),
            "[serve.ssh] port: is required but missing",
        ),
        (
            "range",
            format!("{route}[serve.ssh]\nport=22\nserveid=1200\n"),
            "[serve.ssh] serveid: \"1200\" is not a number in 0-999",
        ),
        (
            "address",
            "[route]\nip=10.0.0.999\nport=7749\n".to_string(),
            "[route] ip: \"10.0.0.999\" is not an IP address or host name",
        ),
        (
            "same-port",
            format!("{route}[use.a]\nserveid=1\nport=2222\n[use.b]\nserveid=2\nport=2222\n"),
            "[use.b] port: port 2222 is already used by [use.a]",
        ),
        (
            "name-comment",
            format!("{route}[vnet]\nname=xiao;vnet名称\n"),
            "[vnet] name: \"xiao;vnet名称\": a comment needs a space before its ; or # (`key=value ;comment`)",
        ),
        (
            "group-fullwidth",
            format!("{route}[vnet]\ngroup=home ；家\n"),
            "[vnet] group: \"home ；家\": a full-width ； does not start a comment",
        ),
        (
            "syntax",
            format!("{route}[serve.ssh]\nserveid 700\n"),
            "line 5: \"serveid 700\" is neither key=value nor a [section] header (did you mean serveid=700?)",
        ),
        (
            "threads",
            format!("{route}[vnet]\nthreads=0\n"),
            "[vnet] threads: \"0\" is not a number in 1-64",
        ),
        (
            "route-port",
            "[route]\nip=127.0.0.1\n".to_string(),
            "[route] port: is required but missing",
        ),
    ];
    assert!(!cases.is_empty());
    for (name, text, want) in cases {
        let path = temp_config(name, &text);
        let out = vnet(&[path.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{}: {want}", path.display())),
            "{name}: {stderr}"
        );
        assert!(
            !stderr.contains("vnet starting"),
            "{name}: started anyway: {stderr}"
        );
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn a_missing_file_exits_2() {
    let out = vnet(&["no-such-config.ini".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-config.ini: cannot read"));
}

#[test]
fn help_and_version() {
    let help = vnet(&["--help".as_ref()]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("[CONFIG]"));
    let word = vnet(&["help".as_ref()]);
    assert!(word.status.success());
    assert!(String::from_utf8_lossy(&word.stdout).contains("[CONFIG]"));
    let version = vnet(&["--version".as_ref()]);
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("vnet {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_use_whose_port_is_taken_stops_a_service_vnet_with_status_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    // The route need not exist: the ports are checked before anything
    // else matters.
    let path = temp_config(
        "taken",
        &format!("[route]\nip=127.0.0.1\nport=1\n[use.web]\nserveid=700\nport={port}\n"),
    );
    let out = vnet(&[path.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("vnet: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        line.contains("[use.web] cannot start: cannot listen on 127.0.0.1:")
            && line.contains(&format!("held by pid {}", std::process::id())),
        "{line}"
    );
    std::fs::remove_file(path).unwrap();
}

/// `threads=` sets the worker threads that carry streams: one unless
/// asked for more. The start line says how many the runtime has.
#[test]
fn threads_sets_the_worker_threads() {
    use std::io::BufRead;
    for (name, line, want) in [("threads-default", "", 1), ("threads-3", "threads=3\n", 3)] {
        // The route need not exist: the vnet keeps trying it.
        let path = temp_config(
            name,
            &format!("[route]\nip=127.0.0.1\nport=1\n[vnet]\n{line}"),
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_vnet"))
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if line.contains("vnet starting") {
                    let _ = tx.send(line);
                    return;
                }
            }
        });
        let started = rx.recv_timeout(std::time::Duration::from_secs(10));
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_file(path).unwrap();
        let started = started.unwrap_or_else(|_| panic!("{name}: no start line"));
        assert!(
            started.contains(&format!("threads={want}")),
            "{name}: {started}"
        );
    }
}
