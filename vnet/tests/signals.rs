//! Signals to a running vnet: SIGHUP reloads its config file (as
//! `systemctl reload` does), a file with errors changes nothing, and
//! SIGTERM still stops it cleanly.
use testkit::*;

fn signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_and_sigterm_stops() {
    let route = Route::start().await;
    let echo = tagged_echo("hup").await;
    let home = Vnet::start(&route, &serve_section("echo", 720, echo));
    home.registered("echo").await;
    let path = std::env::temp_dir().join(format!("vnet-hup-{}.ini", std::process::id()));
    let head = format!("[route]\nip=127.0.0.1\nport={}\n", route.addr.port());
    std::fs::write(&path, &head).unwrap();
    let mut vnet = Logged::start(env!("CARGO_BIN_EXE_vnet"), &[path.as_os_str()], "info");
    let pid = vnet.pid();
    vnet.line_with("connected to route").await;

    // An edit with a mistake: nothing changes, and the vnet runs on.
    std::fs::write(&path, format!("{head}[use.echo]\nserveid=7200\n")).unwrap();
    signal(pid, "HUP");
    let refused = vnet.line_with("config not reloaded").await;
    assert!(refused.contains("serveid"), "{refused}");

    std::fs::write(&path, format!("{head}[use.echo]\nserveid=720\nport=0\n")).unwrap();
    signal(pid, "HUP");
    // The use starts (and logs where it listens) as part of the reload,
    // and opens once it sees serve 720 (before or after the summary).
    let listening = vnet.line_with("use listening").await;
    let mut needles = vec!["config reloaded"];
    if !listening.contains("\"open\"") {
        needles.push("serve available; use open");
    }
    while !needles.is_empty() {
        let line = within("log lines", vnet.logs.next_line())
            .await
            .unwrap()
            .unwrap();
        needles.retain(|needle| !line.contains(needle));
        if line.contains("config reloaded") {
            assert!(line.contains("use.echo"), "{line}");
        }
    }
    let addr: std::net::SocketAddr = listening
        .split("addr=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(connect_tagged(addr).await.1, "hup");

    signal(pid, "TERM");
    vnet.line_with("stopping").await;
    let status = within("vnet exits", vnet.child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::remove_file(path).unwrap();
    home.stop().await;
    route.stop().await;
}
