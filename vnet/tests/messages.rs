//! What a running vnet tells its user in its log: a serve whose service
//! does not answer yet, and when the next attempt to reach a route is.
use std::process::Stdio;
use testkit::*;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

/// Runs the vnet binary on `text` (written to a temp file); its log.
fn vnet(name: &str, text: &str) -> (Child, Lines<BufReader<ChildStderr>>, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("vnet-msg-{}-{name}.ini", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vnet"))
        .arg(&path)
        .env("RUST_LOG", "info")
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
async fn a_serve_whose_service_does_not_answer_is_registered_with_a_warning() {
    let route = Route::start().await;
    let port = dead_port().await;
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\n[serve.web]\nport={port}\n",
        route.addr.port()
    );
    let (_child, mut logs, path) = vnet("probe", &text);
    line_with(&mut logs, "serve registered").await;
    let warned = line_with(&mut logs, "nothing answers there yet").await;
    assert!(warned.contains(&format!("127.0.0.1:{port}")), "{warned}");
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
