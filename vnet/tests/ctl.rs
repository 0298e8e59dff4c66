//! `vnet ctl` against a config-mode vnet running as its own process: shell
//! commands with their output and exit status, a reload after an edit,
//! use close and open, a config no vnet runs with, another user refused,
//! and `exit`.
#![cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use testkit::*;

/// What `vnet ctl` printed and its exit status.
struct Ctl {
    status: i32,
    stdout: String,
    stderr: String,
}

async fn ctl_as(uid: Option<u32>, cwd: Option<&Path>, args: &[&str]) -> Ctl {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_vnet"));
    command.arg("ctl").args(args).stdin(Stdio::null());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    if let Some(uid) = uid {
        command.uid(uid);
    }
    let out = within(
        "vnet ctl",
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await
    .unwrap()
    .unwrap();
    Ctl {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn ctl(config: &Path, command: &str) -> Ctl {
    let mut args = vec![config.to_str().unwrap()];
    args.extend(command.split(' '));
    ctl_as(None, None, &args).await
}

/// Where the use `name` listens, from `show use json`.
async fn use_addr(config: &Path, name: &str) -> Option<std::net::SocketAddr> {
    let shown = ctl(config, "show use json").await;
    assert_eq!(shown.status, 0, "{}", shown.stderr);
    let uses: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    let entry = uses.as_array()?.iter().find(|u| u["name"] == name)?;
    entry["listening"].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_runs_shell_commands_against_a_running_vnet() {
    let route = Route::start().await;
    let echo = tagged_echo("ctl").await;
    let home = Vnet::start(&route, &serve_section("echo", 730, echo));
    home.registered("echo").await;
    let dir = std::env::temp_dir().join(format!("vnet-ctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config: PathBuf = dir.join("office.ini");
    let head = format!(
        "[route]\nip=127.0.0.1\nport={}\n[vnet]\nname=office\n",
        route.addr.port()
    );
    std::fs::write(&config, &head).unwrap();
    let mut vnet = Logged::start(env!("CARGO_BIN_EXE_vnet"), &[config.as_os_str()], "info");
    // Two tasks log these: either may come first.
    vnet.lines_with_all(&["vnet ctl listening", "connected to route"])
        .await;
    let socket = dir.join("office.ini.ctl");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is for its user only");

    // A show, with its output and status 0.
    let serves = ctl(&config, "show serves").await;
    assert_eq!(serves.status, 0, "{}", serves.stderr);
    assert!(
        serves.stdout.lines().any(|l| l.starts_with("730 ")),
        "{}",
        serves.stdout
    );

    // A use made through ctl carries a connection.
    let made = ctl(&config, "use run e serveid=730 port=0").await;
    assert_eq!(made.status, 0, "{}", made.stderr);
    let addr = use_addr(&config, "e").await.expect("use e listens");
    assert_eq!(connect_tagged(addr).await.1, "ctl");

    // Words with spaces arrive as one value, as from the shell.
    let port = format!("port={}", echo.port());
    let args = [
        config.to_str().unwrap(),
        "serve",
        "run",
        "spaced",
        &port,
        "info=home web",
    ];
    let made = ctl_as(None, None, &args).await;
    assert_eq!(made.status, 0, "{}", made.stderr);
    let shown = ctl(&config, "show serve").await;
    assert!(shown.stdout.contains("home web"), "{}", shown.stdout);

    // A command that fails: status 1 and the reason on stderr.
    let failed = ctl(&config, "use close nosuch").await;
    assert_eq!(failed.status, 1, "{}", failed.stdout);
    assert!(failed.stderr.contains("nosuch"), "{}", failed.stderr);

    // Close and open again.
    assert_eq!(ctl(&config, "use close e").await.status, 0);
    let shown = ctl(&config, "show use").await;
    assert!(shown.stdout.contains(" off "), "{}", shown.stdout);
    assert_eq!(ctl(&config, "use open e").await.status, 0);
    let addr = use_addr(&config, "e").await.expect("use e listens again");
    assert_eq!(connect_tagged(addr).await.1, "ctl");

    // Reload after an edit: the new use starts, the shell-made one stays.
    std::fs::write(&config, format!("{head}[use.file]\nserveid=730\nport=0\n")).unwrap();
    let reloaded = ctl(&config, "reload").await;
    assert_eq!(reloaded.status, 0, "{}", reloaded.stderr);
    assert!(reloaded.stdout.contains("file"), "{}", reloaded.stdout);
    let addr = use_addr(&config, "file").await.expect("use file listens");
    assert_eq!(connect_tagged(addr).await.1, "ctl");
    assert!(
        use_addr(&config, "e").await.is_some(),
        "shell-made use kept"
    );

    // `reload FILE` names the file from where ctl runs, not from the
    // vnet's directory.
    std::fs::write(
        dir.join("next.ini"),
        format!("{head}[use.next]\nserveid=730\nport=0\n"),
    )
    .unwrap();
    let reloaded = ctl_as(None, Some(&dir), &["office.ini", "reload", "next.ini"]).await;
    assert_eq!(reloaded.status, 0, "{}", reloaded.stderr);
    assert!(
        use_addr(&config, "next").await.is_some(),
        "{}",
        reloaded.stdout
    );

    // A config no vnet runs with: status 2.
    let nobody = ctl(&dir.join("other.ini"), "show use").await;
    assert_eq!(nobody.status, 2, "{}", nobody.stderr);
    assert!(nobody.stderr.contains("no vnet runs"), "{}", nobody.stderr);

    // Another user: the socket's mode keeps them out, and with the mode
    // opened up the vnet itself refuses them. (Needs root to switch users.)
    if rustix::process::geteuid().is_root() {
        let args = [config.to_str().unwrap(), "show", "use"];
        let stranger = ctl_as(Some(65534), None, &args).await;
        assert_eq!(stranger.status, 2, "{}", stranger.stdout);
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let stranger = ctl_as(Some(65534), None, &args).await;
        assert_eq!(stranger.status, 2, "{}", stranger.stdout);
        assert!(stranger.stdout.is_empty(), "{}", stranger.stdout);
        vnet.line_with("refused a connection from another user")
            .await;
    } else {
        eprintln!("not root: the other-user checks were skipped");
    }

    // `exit` stops the vnet cleanly, and its socket goes with it.
    let exited = ctl(&config, "exit").await;
    assert_eq!(exited.status, 0, "{}", exited.stderr);
    let status = within("vnet exits", vnet.child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket file was left behind");

    std::fs::remove_dir_all(&dir).unwrap();
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_linked_elsewhere_is_made_where_the_link_points() {
    let route = Route::start().await;
    let base = std::env::temp_dir().join(format!("vnet-ctl-link-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (config_dir, runtime_dir) = (base.join("etc"), base.join("run"));
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::create_dir_all(&runtime_dir).unwrap();
    let config = config_dir.join("config.ini");
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\n[vnet]\nname=linked\n",
        route.addr.port()
    );
    std::fs::write(&config, text).unwrap();
    let target = runtime_dir.join("config.ini.ctl");
    std::os::unix::fs::symlink(&target, config_dir.join("config.ini.ctl")).unwrap();
    let mut vnet = Logged::start(env!("CARGO_BIN_EXE_vnet"), &[config.as_os_str()], "info");
    vnet.line_with("vnet ctl listening").await;
    assert!(target.exists(), "the socket is where the link points");
    let shown = ctl(&config, "show vnet").await;
    assert_eq!(shown.status, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("linked"), "{}", shown.stdout);
    assert_eq!(ctl(&config, "exit").await.status, 0);
    assert!(within("vnet exits", vnet.child.wait())
        .await
        .unwrap()
        .success());
    assert!(!target.exists(), "the socket went with the vnet");
    assert!(
        config_dir.join("config.ini.ctl").symlink_metadata().is_ok(),
        "the link stays"
    );
    std::fs::remove_dir_all(&base).unwrap();
    route.stop().await;
}
