//! What a running vnet tells its user in its log: a serve whose service
//! does not listen yet (found without connecting to it), and when the next
//! attempt to reach a route is.
use std::process::Stdio;
use testkit::*;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

/// Runs the vnet binary on `text` (written to a temp file); its log.
fn vnet(name: &str, text: &str) -> (Child, Lines<BufReader<ChildStderr>>, std::path::PathBuf) {
    vnet_logging(name, text, "info")
}

/// [`vnet`] with `RUST_LOG=level`.
fn vnet_logging(
    name: &str,
    text: &str,
    level: &str,
) -> (Child, Lines<BufReader<ChildStderr>>, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("vnet-msg-{}-{name}.ini", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vnet"))
        .arg(&path)
        .env("RUST_LOG", level)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let logs = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, logs, path)
}

async fn line_with(logs: &mut Lines<BufReader<ChildStderr>>, needle: &str) -> String {
    loop {
        let line = within(&format!("log line {needle:?}"), logs.next_line())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("vnet ended before logging {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_whose_service_does_not_listen_is_registered_with_a_warning() {
    let route = Route::start().await;
    let port = dead_port().await;
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\n[serve.web]\nport={port}\n",
        route.addr.port()
    );
    let (_child, mut logs, path) = vnet("probe", &text);
    line_with(&mut logs, "serve registered").await;
    let warned = line_with(&mut logs, "nothing listens there yet").await;
    assert!(warned.contains(&format!("127.0.0.1:{port}")), "{warned}");
    std::fs::remove_file(path).unwrap();
    route.stop().await;
}

/// A service that takes one client (`nc -l` and the like) is not used up
/// by the check: the first connection it sees is the first visitor's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_does_not_connect_to_the_service() {
    let route = Route::start().await;
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    service.set_nonblocking(true).unwrap();
    let port = service.local_addr().unwrap().port();
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\n[serve.web]\nport={port}\n",
        route.addr.port()
    );
    let (_child, mut logs, path) = vnet_logging("quiet", &text, "vnet=debug");
    line_with(&mut logs, "serve registered").await;
    line_with(&mut logs, "serve's service is listening").await;
    // The check is done; a connection it made would be queued by now.
    let accepted = service.accept().map(|(_, peer)| peer);
    assert!(
        accepted
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the vnet connected to the service: {accepted:?}"
    );
    std::fs::remove_file(path).unwrap();
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_cannot_be_reached_says_when_the_next_attempt_is() {
    let port = dead_port().await;
    let text = format!("[route]\nip=127.0.0.1\nport={port}\n");
    let (_child, mut logs, path) = vnet("next", &text);
    let line = line_with(&mut logs, "cannot connect to route").await;
    assert!(line.contains("next attempt in "), "{line}");
    std::fs::remove_file(path).unwrap();
}
