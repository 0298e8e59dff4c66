//! `route [CONFIG]`: read the config (TLS included), bind, and run the
//! hub until Ctrl-C or SIGTERM. A config error exits with status 2.
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// The public hub of a vnet network: keeps each group's registry of vnets
/// and serves, and carries their traffic.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Config file; its [route] section says where to listen.
    #[arg(default_value = "config.ini")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // `route help` reads as a request for help, unless a file is named so.
    if args.config.as_os_str() == "help" && !args.config.exists() {
        let _ = <Args as clap::CommandFactory>::command().print_long_help();
        return ExitCode::SUCCESS;
    }
    net::process::init_logging(std::io::stderr);
    net::process::raise_open_files_limit();
    let config = match route::RouteConfig::load(&args.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("route: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(tls) = &config.tls {
        if let Some(path) = &tls.made {
            tracing::info!(cert = %path.display(), "made a self-signed certificate");
        }
        let fingerprint = &tls.fingerprint;
        tracing::info!(%fingerprint, "tls on; vnets can pin this fingerprint");
    }
    let mut signals = match net::signal::Signals::install() {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("route: cannot install signal handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    let addr = config.addr();
    let listener = match route::listen(&addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("route: cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(local) => {
            tracing::info!(addr = %local, version = env!("CARGO_PKG_VERSION"), "route listening")
        }
        Err(err) => tracing::warn!(%err, "listening, address unknown"),
    }
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        signals.stop("the route").await;
        on_signal.cancel();
    });
    route::run(listener, config, shutdown).await;
    tracing::info!("route stopped");
    ExitCode::SUCCESS
}
