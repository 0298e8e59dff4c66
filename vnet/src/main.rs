//! `vnet [CONFIG]`: run an endpoint.
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // A vanished log reader (closed pipe) must not take the process down.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match vnet::VnetConfig::load(&args.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("vnet: {err}");
            return ExitCode::from(2);
        }
    };
    let mut signals = match proto::signal::Shutdown::install() {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("vnet: cannot install signal handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    if config.vnet.terminal {
        tracing::warn!("terminal=true: the interactive shell is not in this build yet; running from the config file");
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        route = %config.route.addr(),
        name = %config.vnet.name,
        group = %config.vnet.group,
        "vnet starting"
    );
    let shutdown = CancellationToken::new();
    let vnet = vnet::start(config, shutdown.clone());
    signals.recv().await;
    tracing::info!("stopping");
    vnet.shutdown();
    vnet.stopped().await;
    ExitCode::SUCCESS
}
