//! What a running vnet tells its user in its log: a serve whose service
//! does not listen yet (found without connecting to it), and when the next
//! attempt to reach a route is.
use testkit::*;

/// Runs the vnet binary on `text` (written to a temp file), logging at
/// `level`.
fn vnet_logging(name: &str, text: &str, level: &str) -> (Logged, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("vnet-msg-{}-{name}.ini", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let vnet = Logged::start(env!("CARGO_BIN_EXE_vnet"), &[path.as_os_str()], level);
    (vnet, path)
}

/// [`vnet_logging`] at `info`.
fn vnet(name: &str, text: &str) -> (Logged, std::path::PathBuf) {
    vnet_logging(name, text, "info")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_whose_service_does_not_listen_is_registered_with_a_warning() {
    let route = Route::start().await;
    let port = dead_port().await;
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\n[serve.web]\nport={port}\n",
        route.addr.port()
    );
    let (mut running, path) = vnet("probe", &text);
    running.line_with("serve registered").await;
    let warned = running.line_with("nothing listens there yet").await;
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
    let (mut running, path) = vnet_logging("quiet", &text, "vnet=debug");
    running.line_with("serve registered").await;
    running.line_with("serve's service is listening").await;
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
    let (mut running, path) = vnet("next", &text);
    let line = running.line_with("cannot connect to route").await;
    assert!(line.contains("next attempt in "), "{line}");
    std::fs::remove_file(path).unwrap();
}
