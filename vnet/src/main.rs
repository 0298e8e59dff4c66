//! `vnet [CONFIG]`: run an endpoint, with the interactive shell when
//! `[vnet] terminal=true`.
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
#[command(version, about)]
struct Args {
    /// Config file with [route], [vnet], [serve.NAME] and [use.NAME].
    #[arg(default_value = "config.ini")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
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
        "vnet starting"
    );
    let terminal = config.vnet.terminal;
    let shutdown = CancellationToken::new();
    let vnet = vnet::start(config, shutdown.clone());
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
    ExitCode::SUCCESS
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
