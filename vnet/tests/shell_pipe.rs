//! The shell driven through a pipe, as a script would: every command's
//! output and its effect on real connections.
use std::process::Stdio;
use testkit::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A line no command prints by accident: `help ping` marks the end of the
/// previous command's output.
const END: &str = "ping: round trip to the route over the control connection, in milliseconds";

struct ShellProcess {
    child: Child,
    stdin: ChildStdin,
    out: Lines<BufReader<ChildStdout>>,
}

impl ShellProcess {
    async fn start(config: &std::path::Path) -> Self {
        Self::start_logging(config, "warn", Stdio::inherit()).await
    }

    async fn start_logging(config: &std::path::Path, level: &str, stderr: Stdio) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vnet"))
            .arg(config)
            .env("RUST_LOG", level)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, stdin, out }
    }

    /// Sends one command and returns what it printed.
    async fn run(&mut self, command: &str) -> String {
        self.stdin
            .write_all(format!("{command}\nhelp ping\n").as_bytes())
            .await
            .unwrap();
        let mut lines = Vec::new();
        loop {
            let line = within(&format!("output of {command:?}"), self.out.next_line())
                .await
                .unwrap();
            match line {
                Some(line) if line == END => return lines.join("\n"),
                Some(line) => lines.push(line),
                None => panic!("shell ended during {command:?}; got {lines:?}"),
            }
        }
    }
}

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("vnet-shell-{}-{name}.ini", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// A use on a free port for `serve_id`, added through the handle.
fn back_use(key: &str, serve_id: u16) -> vnet::config::UseConfig {
    vnet::config::UseConfig {
        key: key.into(),
        serve_id: proto::ServeId::new(serve_id),
        ip: [127, 0, 0, 1].into(),
        port: Some(0),
        active: true,
        direct: None,
    }
}

/// The port in "use NAME listening on 127.0.0.1:PORT ...".
fn listening_port(reply: &str) -> u16 {
    let addr = reply
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {reply:?}"));
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_through_a_pipe() {
    let route = Route::start().await;
    let home_echo = tagged_echo("home-echo").await;
    let office_echo = tagged_echo("office-echo").await;
    let home = Vnet::start(
        &route,
        &format!(
            "[vnet]\nname=home\n{}",
            serve_section("echo", 700, home_echo)
        ),
    );
    home.registered("echo").await;
    let base = format!(
        "[route]\nip=127.0.0.1\nport={}\n[vnet]\nname=office\nterminal=true\n",
        route.addr.port()
    );
    let config = write_config("office", &base);
    let mut shell = ShellProcess::start(&config).await;

    // The route's view.
    let vnets = shell.run("show vnets").await;
    assert!(
        vnets
            .lines()
            .any(|l| l.starts_with("01") && l.contains("home")),
        "{vnets}"
    );
    assert!(
        vnets
            .lines()
            .any(|l| l.starts_with("02") && l.contains("office")),
        "{vnets}"
    );
    let serves = shell.run("show serves").await;
    assert!(
        serves
            .lines()
            .any(|l| l.starts_with("700") && l.contains("echo")),
        "{serves}"
    );
    assert!(
        serves.ends_with("- 1 serve(s) of 1 vnet(s) in this group -"),
        "{serves}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&shell.run("show serves json").await).unwrap();
    assert_eq!(json[0]["serve_id"], 700);
    assert!(shell
        .run("ping")
        .await
        .starts_with("pong from the route in "));

    // A use opened from the shell carries bytes; closed, it refuses.
    let opened = shell.run("use run echo serveid=700 port=0").await;
    assert!(opened.contains("-> serve 700 (open)"), "{opened}");
    let port = listening_port(&opened);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(connect_tagged(addr).await.1, "home-echo");
    let uses = shell.run("show use").await;
    assert!(
        uses.lines()
            .any(|l| l.starts_with("700") && l.contains("echo") && l.contains("open")),
        "{uses}"
    );
    assert_eq!(
        shell.run("use close echo").await,
        "use echo closed (not listening)"
    );
    assert_refused(addr).await;
    let reopened = shell.run("use open echo").await;
    assert_eq!(
        connect_tagged(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            listening_port(&reopened)
        )))
        .await
        .1,
        "home-echo"
    );

    // A serve registered from the shell is reachable from the other vnet.
    let run = shell
        .run(&format!(
            "serve run local port={} serveid=650 info=\"office echo\"",
            office_echo.port()
        ))
        .await;
    assert_eq!(run, "serve local registered as 650");
    home.handle.use_add(back_use("back", 650)).await.unwrap();
    // home learns of 650 through its own control connection, maybe after
    // the office's answer: wait for the use to open rather than assume it.
    let local = home.open_use("back").await;
    assert_eq!(connect_tagged(local).await.1, "office-echo");
    let mine = shell.run("show serve").await;
    assert!(
        mine.lines()
            .any(|l| l.starts_with("650") && l.contains("registered") && l.contains("office echo")),
        "{mine}"
    );
    assert_eq!(
        shell.run("serve close local").await,
        "serve local closed (inactive)"
    );
    home.wait("650 gone from home's view", |s| !s.uses["back"].open)
        .await;
    assert_eq!(
        shell.run("serve open local").await,
        "serve local registered as 650"
    );
    assert_eq!(shell.run("serve delete local").await, "serve local deleted");

    // Errors are one line and change nothing.
    let cases = [
        ("serve run bad port=abc", "error: serve run: [serve.bad] port: \"abc\" is not a number in 1-65535"),
        ("serve run bad", "error: serve run: [serve.bad] port: is required but missing"),
        ("use run echo serveid=700", "error: a use named \"echo\" exists already"),
        ("serve open nothing", "error: serve nothing: no serve named \"nothing\""),
        ("use run x serveid=5000", "error: use run: [use.x] serveid: \"5000\" is not a number in 0-999"),
        ("frobnicate", "error: unknown command \"frobnicate\"; try help"),
        (
            "unserve vnetid=01 port=1",
            "asking vnet 01 for its unregistered service 127.0.0.1:1 ...\nerror: unserve refused: vnet 01 does not allow unserve (allow_unserve=false)",
        ),
    ];
    for (command, want) in cases {
        assert_eq!(shell.run(command).await, want, "{command}");
    }
    let taken = shell
        .run(&format!(
            "use run clash serveid=700 port={port}",
            port = listening_port(&reopened)
        ))
        .await;
    assert!(
        taken.starts_with("error: use clash: cannot listen on") && taken.contains("in use"),
        "{taken}"
    );
    let mine = shell.run("show serve").await;
    assert!(!mine.contains("bad"), "{mine}");
    assert!(!shell.run("show use").await.contains("clash"));

    // reload: a bad file changes nothing; a good one adds a use.
    let broken = write_config("broken", "[route]\nip=127.0.0.1\n");
    let refused = shell.run(&format!("reload {}", broken.display())).await;
    assert!(
        refused.contains("[route] port: is required but missing; nothing changed"),
        "{refused}"
    );
    let grown = write_config(
        "grown",
        &format!("{base}[use.extra]\nserveid=700\nport=0\n"),
    );
    let reloaded = shell.run(&format!("reload {}", grown.display())).await;
    assert!(reloaded.contains("added use.extra"), "{reloaded}");
    let shown = shell.run("show use json").await;
    let uses: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let extra = uses
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "extra")
        .expect("extra use");
    let extra_addr: std::net::SocketAddr = extra["listening"].as_str().unwrap().parse().unwrap();
    assert_eq!(connect_tagged(extra_addr).await.1, "home-echo");

    // exit: deregisters and ends with status 0.
    // A serve of the office's, watched from home: it leaves when the
    // office's control connection is gone.
    let again = shell.run("serve run again port=1 serveid=660").await;
    assert_eq!(again, "serve again registered as 660");
    home.handle.use_add(back_use("again", 660)).await.unwrap();
    home.open_use("again").await;
    shell.stdin.write_all(b"exit\n").await.unwrap();
    let status = within("vnet exits", shell.child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
    home.wait("the office's serves withdrawn", |s| !s.uses["again"].open)
        .await;
    let listed = within("list", home.handle.vnets()).await.unwrap();
    assert_eq!(listed.len(), 1, "office still listed: {listed:?}");

    for path in [config, broken, grown] {
        std::fs::remove_file(path).unwrap();
    }
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_input_keeps_the_vnet_running_until_sigterm() {
    let route = Route::start().await;
    let echo = tagged_echo("still-here").await;
    let home = Vnet::start(&route, &serve_section("echo", 710, echo));
    home.registered("echo").await;
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\n[vnet]\nterminal=true\n",
        route.addr.port()
    );
    let config = write_config("eof", &text);
    let mut shell = ShellProcess::start_logging(&config, "info", Stdio::piped()).await;
    let mut logs = BufReader::new(shell.child.stderr.take().unwrap()).lines();
    let opened = shell.run("use run echo serveid=710 port=0").await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], listening_port(&opened)));
    // Started right after launch, the use may be in standby until the
    // route's view of 710 arrives; it then opens by itself and logs it.
    if !opened.contains("(open)") {
        line_with(&mut logs, "serve available; use open").await;
    }
    drop(shell.stdin);
    line_with(&mut logs, "shell input ended; vnet keeps running").await;
    // Input is gone; the mapping still works.
    assert_eq!(connect_tagged(addr).await.1, "still-here");
    let pid = shell.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = within("vnet exits on SIGTERM", shell.child.wait())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::remove_file(config).unwrap();
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_is_not_utf8_is_one_error_and_the_next_is_read() {
    let route = Route::start().await;
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\n[vnet]\nterminal=true\n",
        route.addr.port()
    );
    let config = write_config("utf8", &text);
    let mut shell = ShellProcess::start(&config).await;
    shell.stdin.write_all(b"show \xff\xfe use\n").await.unwrap();
    let after = shell.run("help exit").await;
    assert_eq!(
        after,
        "error: line 1 is not valid UTF-8; skipped\n\
         exit: deregister, close listeners and connections, and exit with status 0"
    );
    shell.stdin.write_all(b"exit\n").await.unwrap();
    let status = within("vnet exits", shell.child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::remove_file(config).unwrap();
    route.stop().await;
}
