//! The shell in a real pseudo-terminal: prompt, completion, prompted
//! arguments, history across runs, Ctrl-D and Ctrl-C.
use rexpect::session::{spawn_command, PtySession};
use std::process::Command;
use testkit::*;

/// rexpect's own bound on every expectation.
const EXPECT_MS: u64 = 20_000;

fn shell(config: &std::path::Path, home: &std::path::Path) -> PtySession {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vnet"));
    command
        .arg(config)
        .env("HOME", home)
        .env("TERM", "xterm")
        .env("RUST_LOG", "warn");
    spawn_command(command, Some(EXPECT_MS)).unwrap()
}

/// A folder of its own (the shell's home, for its history) with an
/// office.ini for a `terminal=true` vnet at `route`.
fn office_config(route: &Route, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("vnet-tty-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("office.ini");
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\n[vnet]\nname=office\nterminal=true\n",
        route.addr.port()
    );
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

/// Waits for the shell to end and checks it exited with status 0.
fn exits_cleanly(mut p: PtySession) {
    p.exp_eof().unwrap();
    let status = format!("{:?}", p.process_mut().wait().unwrap());
    assert!(
        status.starts_with("Exited(") && status.ends_with(", 0)"),
        "{status}"
    );
}

#[test]
fn prompt_completion_prompts_history_and_exit() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let route = rt.block_on(Route::start());
    let echo = rt.block_on(tagged_echo("tty-echo"));
    let home = rt.block_on(async {
        let home = Vnet::start(&route, &serve_section("echo", 700, echo));
        home.registered("echo").await;
        home
    });
    let (dir, config) = office_config(&route, "main");

    let mut p = shell(&config, &dir);
    p.exp_string(">: ").unwrap();

    // Tab completes a command.
    p.send("sho").unwrap();
    p.send("\t").unwrap();
    p.flush().unwrap();
    p.exp_string("show ").unwrap();
    p.send_line("serves").unwrap();
    p.exp_string("- 1 serve(s) of 1 vnet(s) in this group -")
        .unwrap();

    // Missing arguments are prompted for, with defaults shown.
    p.send_line("use run echo").unwrap();
    p.exp_string("serveid(required): ").unwrap();
    p.send_line("700").unwrap();
    p.exp_string("ip(127.0.0.1): ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("port(the serve's port): ").unwrap();
    p.send_line("0").unwrap();
    let (_, opened) = p.exp_regex(r"listening on 127\.0\.0\.1:\d+").unwrap();
    let addr: std::net::SocketAddr = opened.trim_start_matches("listening on ").parse().unwrap();
    assert_eq!(rt.block_on(connect_tagged(addr)).1, "tty-echo");

    // Tab completes this vnet's use names.
    p.send("use close ec").unwrap();
    p.send("\t").unwrap();
    p.flush().unwrap();
    p.exp_string("echo ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("use echo closed (not listening)").unwrap();
    rt.block_on(assert_refused(addr));

    // Ctrl-D exits cleanly.
    p.exp_string(">: ").unwrap();
    p.send_control('d').unwrap();
    exits_cleanly(p);

    // History survives: the last command comes back with the Up key.
    let mut p = shell(&config, &dir);
    p.exp_string(">: ").unwrap();
    p.send("\x1b[A").unwrap();
    p.flush().unwrap();
    p.exp_string("use close echo").unwrap();
    // Ctrl-C exits too.
    p.send_control('c').unwrap();
    exits_cleanly(p);

    std::fs::remove_dir_all(&dir).unwrap();
    rt.block_on(async {
        home.stop().await;
        route.stop().await;
    });
}

#[test]
fn inline_arguments_are_never_prompted_and_ctrl_c_at_a_question_cancels() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let route = rt.block_on(Route::start());
    let (dir, config) = office_config(&route, "ask");
    let mut p = shell(&config, &dir);
    p.exp_string(">: ").unwrap();

    // Given key=value, the rest takes defaults: the next line is a
    // command, not an answer.
    p.send_line("use run ghost serveid=999 port=0").unwrap();
    p.exp_regex(r"use ghost listening on 127\.0\.0\.1:\d+ -> serve 999 \(standby")
        .unwrap();
    p.exp_string(">: ").unwrap();
    // Missing a required key is an error, not a question.
    p.send_line("serve run web ip=127.0.0.1").unwrap();
    p.exp_string("port: is required but missing").unwrap();
    p.exp_string(">: ").unwrap();

    // Ctrl-C at a question abandons the command, with one line.
    p.send_line("serve run web").unwrap();
    p.exp_string("ip(127.0.0.1): ").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("error: cancelled; nothing changed").unwrap();
    p.exp_string(">: ").unwrap();
    p.send_line("show serve").unwrap();
    let shown = p.exp_string(">: ").unwrap();
    assert!(
        !shown.contains("web"),
        "a cancelled serve was added: {shown}"
    );
    // So does Ctrl-D, at any question.
    p.send_line("use run other").unwrap();
    p.exp_string("serveid(required): ").unwrap();
    p.send_line("700").unwrap();
    p.exp_string("ip(127.0.0.1): ").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("error: cancelled; nothing changed").unwrap();
    p.exp_string(">: ").unwrap();
    p.send_line("exit").unwrap();
    exits_cleanly(p);

    let status = std::fs::read_to_string(dir.join(".vnet_history")).unwrap();
    let history: Vec<&str> = status.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        !history.contains(&"700"),
        "an answer went into the history: {history:?}"
    );
    assert!(history.contains(&"use run other"), "{history:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    rt.block_on(route.stop());
}

/// Closing the terminal (SIGHUP to a vnet started from one) stops it
/// cleanly, saying so, rather than leaving it running unseen with its
/// ports; without a terminal, SIGHUP reloads (tests/signals.rs).
#[test]
fn sighup_from_a_closed_terminal_stops_the_vnet() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let route = rt.block_on(Route::start());
    let (dir, config) = office_config(&route, "hangup");
    let mut command = Command::new(env!("CARGO_BIN_EXE_vnet"));
    command
        .arg(&config)
        .env("HOME", &dir)
        .env("TERM", "xterm")
        .env("RUST_LOG", "info");
    let mut p = spawn_command(command, Some(EXPECT_MS)).unwrap();
    p.exp_string("connected to route").unwrap();
    p.exp_string(">: ").unwrap();
    let pid = pid_running(&config).expect("the vnet's process");
    let sent = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(sent.success());
    p.exp_string("SIGHUP: the terminal has closed; stopping")
        .unwrap();
    exits_cleanly(p);
    std::fs::remove_dir_all(&dir).unwrap();
    rt.block_on(route.stop());
}

/// The pid of the process whose command line names `config`.
fn pid_running(config: &std::path::Path) -> Option<String> {
    let wanted = config.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_string_lossy().into_owned();
            pid.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.contains(&wanted.as_bytes()).then_some(pid)
        })
}
