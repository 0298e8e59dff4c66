//! `route [CONFIG]`: read the config (TLS included), bind, and run the
//! hub until Ctrl-C or SIGTERM; SIGHUP reads the config again. A config
//! error exits with status 2.
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
    let signals = match net::signal::Signals::install() {
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
    let status = match &config.status {
        None => None,
        Some(status) => match tokio::net::TcpListener::bind(status.addr).await {
            Ok(listener) => {
                let url = format!("http://{}/", status.addr);
                tracing::info!(%url, "status page, JSON at api/status, metrics at metrics");
                Some(listener)
            }
            Err(err) => {
                eprintln!(
                    "route: cannot serve the status page on {}: {err}",
                    status.addr
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let shutdown = CancellationToken::new();
    let (reload_tx, reloads) = tokio::sync::mpsc::channel(1);
    tokio::spawn(follow_signals(
        signals,
        args.config.clone(),
        reload_tx,
        shutdown.clone(),
    ));
    route::run_reloading(listener, status, config, shutdown, reloads).await;
    tracing::info!("route stopped");
    ExitCode::SUCCESS
}

/// Stops the route on SIGINT/SIGTERM (or when its terminal closes); on
/// SIGHUP reads the config again and hands it to the running route, or
/// says why not and changes nothing.
async fn follow_signals(
    mut signals: net::signal::Signals,
    path: PathBuf,
    reloads: tokio::sync::mpsc::Sender<route::Reload>,
    shutdown: CancellationToken,
) {
    use net::signal::Signal;
    loop {
        match signals.next().await {
            Signal::Stop => break,
            Signal::TerminalClosed => {
                net::signal::terminal_closed();
                break;
            }
            Signal::Reload => {
                tracing::info!(file = %path.display(), "SIGHUP: reloading the config");
                // Reading it may read (or make) certificate files.
                let file = path.clone();
                let loaded = tokio::task::spawn_blocking(move || route::RouteConfig::load(&file));
                match loaded.await {
                    Ok(Ok(config)) => {
                        if let Some(made) = config.tls.as_ref().and_then(|t| t.made.as_ref()) {
                            tracing::info!(cert = %made.display(), "made a self-signed certificate; in force after a restart");
                        }
                        drop(reloads.send((config, None)).await);
                    }
                    Ok(Err(err)) => tracing::error!(%err, "config not reloaded; nothing changed"),
                    Err(err) => tracing::error!(%err, "config not reloaded; nothing changed"),
                }
            }
        }
    }
    shutdown.cancel();
}
