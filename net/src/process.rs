//! What both programs set up at start: logging to a writer, and enough
//! open files for their connections.
use tracing_subscriber::fmt::MakeWriter;

/// Installs the tracing subscriber: `RUST_LOG` filters (default `info`),
/// lines go to `writer`, colours only on a terminal. A vanished log reader
/// (a closed pipe) does not take the process down.
pub fn init_logging<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(writer)
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Raises the open-files soft limit to the hard one: each mapped
/// connection holds two sockets in each process, and the usual soft limit
/// of 1024 would cap it near 500. Logs the outcome.
pub fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-files limit"),
        Err(err) => tracing::warn!(%err, "cannot raise the open-files limit"),
    }
}
