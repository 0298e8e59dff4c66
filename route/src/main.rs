//! `route [CONFIG]`: run the hub.
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // A vanished log reader (closed pipe) must not take the process down.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Each mapped connection holds two sockets in each process; the usual
    // soft limit of 1024 open files would cap it near 500.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-files limit"),
        Err(err) => tracing::warn!(%err, "cannot raise the open-files limit"),
    }
    let config = match route::RouteConfig::load(&args.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("route: {err}");
            return ExitCode::from(2);
        }
    };
    let mut signals = match net::signal::Shutdown::install() {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("route: cannot install signal handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut settings = route::Settings::from_config(&config);
    if config.basics.tls {
        let base = args.config.parent().unwrap_or(std::path::Path::new("."));
        match route::tls::server(&config, base, &args.config.display().to_string()) {
            Ok(tls) => {
                if let Some(path) = &tls.made {
                    tracing::info!(cert = %path.display(), "made a self-signed certificate");
                }
                tracing::info!(fingerprint = %tls.fingerprint, "tls on; vnets can pin this fingerprint");
                settings.tls = Some(tls);
            }
            Err(err) => {
                eprintln!("route: {err}");
                return ExitCode::from(2);
            }
        }
    }
    let addr = config.basics.addr();
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
        signals.recv().await;
        on_signal.cancel();
    });
    route::run(listener, settings, shutdown).await;
    tracing::info!("route stopped");
    ExitCode::SUCCESS
}
