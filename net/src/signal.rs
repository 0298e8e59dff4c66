//! Process shutdown signals, shared by both binaries.
//!
//! Handlers are installed when [`Shutdown::install`] returns, not when the
//! future is first polled, so a binary can install them before it reports
//! that it is ready: a supervisor (or test) that sends SIGTERM right after
//! the "listening" line never kills the process uncleanly.

/// Ctrl-C (SIGINT) and, on Unix, SIGTERM.
pub struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Installs the handlers now. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The OS refused to install a handler.
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for the next signal. Cancel-safe.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
