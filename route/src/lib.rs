//! The route: the public hub of a vnet network.
//!
//! It listens on one port for every kind of connection a vnet makes: one
//! control connection per vnet ([`session`]), and one data connection per
//! mapped connection from each side ([`forward`]). The [`registry`] keeps,
//! per group, who is connected and what they serve.
//!
//! [`run`] takes a bound listener and a shutdown token, so tests and the
//! binary start it the same way. Cancelling the token stops accepting,
//! drops every connection, and `run` returns once its tasks are gone.
#![forbid(unsafe_code)]

mod accept;
pub mod asks;
pub mod config;
mod conn;
mod control;
pub mod registry;
pub mod state;
mod streams;
pub mod tls;

pub use config::RouteConfig;
/// Binds an address (IP or host name, with port) for [`run`].
pub use net::listen::bind_host as listen;

use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use state::Hub;

/// How long `run` waits for connection tasks after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves on `listener` until `shutdown` is cancelled.
pub async fn run(listener: TcpListener, config: RouteConfig, shutdown: CancellationToken) {
    let hub = Arc::new(Hub::new(config, shutdown));
    accept::accept_loop(listener, hub.clone()).await;
    hub.tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, hub.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
}
