//! `vnet [CONFIG]`: run an endpoint, with the interactive shell when
//! `[vnet] terminal=true`.
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
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
    let mut signals = match net::signal::Shutdown::install() {
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
    tokio::select! {
        _ = signals.recv() => {}
        ended = &mut shell_ended, if terminal => match ended {
            Ok(Ended::Exit) => {}
            // No more input (a pipe, or no stdin under a service manager):
            // keep serving until a signal.
            Ok(Ended::EndOfInput) | Err(_) => {
                tracing::info!("shell input ended; vnet keeps running");
                signals.recv().await;
            }
        },
    }
    tracing::info!("stopping");
    vnet.shutdown();
    vnet.stopped().await;
    ExitCode::SUCCESS
}
