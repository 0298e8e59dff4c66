//! `vnet [CONFIG]`: run an endpoint, with the interactive shell when
//! `[vnet] terminal=true`; `vnet ctl [CONFIG] COMMAND...`: run one shell
//! command against the vnet running with CONFIG.
use clap::Parser;
use net::signal::Signal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vnet::shell::{self, Ended, LogSink, Shell};

/// A vnet endpoint: registers local TCP services with a route and maps
/// remote ones onto local ports.
#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Also: vnet ctl [CONFIG] COMMAND...   runs one shell command against the \
                  vnet running with CONFIG (vnet ctl --help)"
)]
struct Args {
    /// Config file with [route], [vnet], [serve.NAME] and [use.NAME].
    #[arg(default_value = "config.ini")]
    config: PathBuf,
}

/// `vnet ctl` is not a config file's name unless such a file exists.
fn ctl_requested() -> Option<Vec<String>> {
    let mut argv = std::env::args_os();
    let _program = argv.next();
    if argv.next()? != "ctl" || std::path::Path::new("ctl").exists() {
        return None;
    }
    // A word that is not text cannot be a command's; it is shown as best
    // it can be and refused by the vnet's parser.
    Some(argv.map(|a| a.to_string_lossy().into_owned()).collect())
}

const CTL_USAGE: &str = "usage: vnet ctl [CONFIG] COMMAND...   (CONFIG defaults to config.ini)
runs one shell command (show serves, reload, use close NAME, ...) against
the vnet running with CONFIG; exit status 0 done, 1 the command failed,
2 no vnet runs with that config";

#[cfg(unix)]
fn ctl(args: &[String]) -> ExitCode {
    let (config, command) = match args.first() {
        None => (None, &[][..]),
        // One word is a command (a mistyped one gets the vnet's answer).
        Some(first)
            if shell::command::COMMANDS.contains(&first.as_str())
                || (args.len() == 1 && !first.ends_with(".ini")) =>
        {
            (None, args)
        }
        Some(first) => (Some(first.as_str()), &args[1..]),
    };
    if command
        .first()
        .is_some_and(|word| word == "--help" || word == "-h")
    {
        println!("{CTL_USAGE}");
        return ExitCode::SUCCESS;
    }
    if command.is_empty() {
        eprintln!("{CTL_USAGE}");
        return ExitCode::from(2);
    }
    let config = std::path::Path::new(config.unwrap_or("config.ini"));
    // `reload FILE` names a file from here, not from the vnet's directory.
    let mut command = command.to_vec();
    if let ["reload", file] = command.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        if let Ok(path) = std::fs::canonicalize(file) {
            command[1] = path.to_string_lossy().into_owned();
        }
    }
    match vnet::ctl::client::command_line(&command) {
        Ok(line) => ExitCode::from(vnet::ctl::client::run(config, &line)),
        Err(err) => {
            eprintln!("vnet ctl: {err}");
            ExitCode::from(2)
        }
    }
}

#[cfg(not(unix))]
fn ctl(_args: &[String]) -> ExitCode {
    eprintln!("vnet ctl: not available on this system yet");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    if let Some(args) = ctl_requested() {
        return ctl(&args);
    }
    run()
}

fn run() -> ExitCode {
    let args = Args::parse();
    // `vnet help` reads as a request for help, unless a file is named so.
    if args.config.as_os_str() == "help" && !args.config.exists() {
        let _ = <Args as clap::CommandFactory>::command().print_long_help();
        return ExitCode::SUCCESS;
    }
    let logs = LogSink::default();
    net::process::init_logging(logs.clone());
    net::process::raise_open_files_limit();
    let config = match vnet::VnetConfig::load(&args.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("vnet: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(config.vnet.threads))
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(serve(args, config, logs)),
        Err(err) => {
            eprintln!("vnet: cannot start: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the vnet of `config` until a signal, `exit`, or a failed start.
async fn serve(args: Args, config: vnet::VnetConfig, logs: LogSink) -> ExitCode {
    let mut signals = match net::signal::Signals::install() {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("vnet: cannot install signal handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        route = %config.route.addr(),
        name = %config.vnet.name,
        group = %config.vnet.group,
        terminal = config.vnet.terminal,
        threads = tokio::runtime::Handle::current().metrics().num_workers(),
        "vnet starting"
    );
    let identity = if config.vnet.secret.is_some() {
        let path = vnet::e2e::identity::key_path(&args.config);
        match vnet::e2e::identity::Identity::load_or_create(&path) {
            Ok((identity, made)) => {
                if made {
                    tracing::info!(file = %path.display(), "made this vnet's key pair for end-to-end encryption");
                }
                Some(identity)
            }
            Err(err) => {
                eprintln!("vnet: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let terminal = config.vnet.terminal;
    let shutdown = CancellationToken::new();
    let vnet = vnet::start_with_identity(config, shutdown.clone(), identity);
    if !terminal {
        // A service whose use cannot listen would run half-working: stop
        // at once instead, saying which use and address.
        if let Some(failed) = a_use_that_cannot_listen(&vnet).await {
            eprintln!("vnet: {failed}");
            vnet.shutdown();
            vnet.stopped().await;
            return ExitCode::FAILURE;
        }
    }

    // `exit` through `vnet ctl` stops the vnet as the shell's own does.
    let ctl_stop = CancellationToken::new();
    #[cfg(unix)]
    let ctl = start_ctl(&vnet, &args.config, ctl_stop.clone(), shutdown.clone()).await;

    let (shell_tx, mut shell_ended) = tokio::sync::oneshot::channel();
    if terminal {
        let shell = Shell {
            handle: vnet.clone(),
            rt: tokio::runtime::Handle::current(),
            config_path: args.config.clone(),
        };
        std::thread::spawn(move || {
            let _ = shell_tx.send(shell::run(shell, logs));
        });
    }
    let mut input_ended = !terminal;
    loop {
        tokio::select! {
            signal = signals.next() => match signal {
                Signal::Stop => break,
                Signal::TerminalClosed => {
                    net::signal::terminal_closed();
                    break;
                }
                Signal::Reload => reload(&vnet, &args.config).await,
            },
            _ = ctl_stop.cancelled() => break,
            ended = &mut shell_ended, if !input_ended => match ended {
                Ok(Ended::Exit) => break,
                // No more input (a pipe, or no stdin under a service
                // manager): keep serving until a signal.
                Ok(Ended::EndOfInput) | Err(_) => {
                    tracing::info!("shell input ended; vnet keeps running");
                    input_ended = true;
                }
            },
        }
    }
    tracing::info!("stopping");
    vnet.shutdown();
    vnet.stopped().await;
    // Its socket file goes with it.
    #[cfg(unix)]
    if let Some(ctl) = ctl {
        let _ = tokio::time::timeout(Duration::from_secs(2), ctl).await;
    }
    ExitCode::SUCCESS
}

/// Opens the `vnet ctl` socket beside the config; without it the vnet
/// runs on, saying why (a read-only directory, another vnet on the file).
#[cfg(unix)]
async fn start_ctl(
    vnet: &vnet::VnetHandle,
    config: &std::path::Path,
    stop: CancellationToken,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let path = vnet::ctl::socket_path(config);
    match vnet::ctl::server::CtlServer::bind(&path).await {
        Ok(server) => {
            let shell = std::sync::Arc::new(Shell {
                handle: vnet.clone(),
                rt: tokio::runtime::Handle::current(),
                config_path: config.to_path_buf(),
            });
            Some(tokio::spawn(server.run(shell, stop, shutdown)))
        }
        Err(err) => {
            tracing::warn!(%err, "vnet ctl is not available");
            None
        }
    }
}

/// SIGHUP: reloads the config file as the shell's `reload` does (the
/// reload logs what changed); a file with errors changes nothing.
async fn reload(vnet: &vnet::VnetHandle, path: &std::path::Path) {
    tracing::info!(file = %path.display(), "SIGHUP: reloading the config");
    match vnet::VnetConfig::load(path) {
        Ok(config) => drop(vnet.reload(config).await),
        Err(err) => tracing::error!(%err, "config not reloaded; nothing changed"),
    }
}

/// Waits (bounded) until every active use with a port of its own listens
/// or has failed; the first failure, for people.
async fn a_use_that_cannot_listen(vnet: &vnet::VnetHandle) -> Option<String> {
    let settled = |s: &vnet::Status| {
        s.uses.values().all(|u| {
            !u.config.active || u.config.port.is_none() || u.local.is_some() || u.error.is_some()
        })
    };
    let status = tokio::time::timeout(Duration::from_secs(10), vnet.wait_for(settled))
        .await
        .ok()?;
    status.uses.iter().find_map(|(key, u)| {
        let why = u.error.as_ref()?;
        Some(format!("[use.{key}] cannot start: {why}"))
    })
}
