//! Process signals, shared by both binaries: Ctrl-C (SIGINT) and SIGTERM
//! stop the process cleanly. SIGHUP means two things: started from a
//! terminal (stdin is one), the terminal has closed, and the process stops
//! cleanly, saying so, as interactive programs do (and does not run on
//! unseen, holding its ports); otherwise (a service manager, `nohup`) it
//! asks for a reload of the config, as `systemctl reload` sends it. A
//! program that cannot reload says so and keeps running.
//!
//! Handlers are installed when [`Signals::install`] returns, not when the
//! future is first polled, so a binary can install them before it reports
//! that it is ready: a supervisor (or test) that sends SIGTERM right after
//! the "listening" line never kills the process uncleanly.

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Stop cleanly (SIGINT, SIGTERM).
    Stop,
    /// Reload the config (SIGHUP, not started from a terminal).
    Reload,
    /// The terminal it was started from has closed (SIGHUP): stop.
    TerminalClosed,
}

/// The process's signal handlers.
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
    /// Started from a terminal: SIGHUP is its closing.
    from_terminal: bool,
}

impl Signals {
    /// Installs the handlers now. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The OS refused to install a handler.
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use std::io::IsTerminal;
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
                hangup: signal(SignalKind::hangup())?,
                from_terminal: std::io::stdin().is_terminal(),
            })
        }
        #[cfg(not(unix))]
        Ok(Self {
            from_terminal: false,
        })
    }

    /// Waits for the next signal. Cancel-safe.
    pub async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Stop,
            _ = self.terminate.recv() => Signal::Stop,
            _ = self.hangup.recv() => if self.from_terminal {
                Signal::TerminalClosed
            } else {
                Signal::Reload
            },
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}

/// The line a process logs as it stops because its terminal has closed.
pub fn terminal_closed() {
    tracing::info!("SIGHUP: the terminal has closed; stopping");
}
