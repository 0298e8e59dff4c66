//! The route: the public hub of a vnet network.
//!
//! It listens on one port for every kind of connection a vnet makes: one
//! control connection per vnet, and one data connection per mapped
//! connection from each side. [`run`] takes a bound listener, a
//! [`RouteConfig`] and a shutdown token, so tests and the binary start it
//! the same way. Cancelling the token stops accepting, drops every
//! connection, and `run` returns once its tasks are gone.
//!
//! # Layout
//!
//! A connection's path through the modules, top to bottom; each module
//! uses only those below it (`python3 .ci/layout.py` checks there are no
//! import cycles).
//!
//! - `accept`: the accept loop; one task per connection, which takes a
//!   place among the unauthenticated (`admission`: bounded in all and per
//!   source, the stalest dropped first, failed proofs throttled), starts
//!   the connection (`conn`) and hands it on by its first message.
//! - `control`: a vnet's control session. `control::auth` is the token
//!   exchange after the hello, `control::requests` the answers to what
//!   the vnet asks (registry requests, unserve asks between vnets).
//! - `data`: data connections' tasks. `data::pairing` finds a visitor's
//!   serving half and bridges the two.
//! - `streams`: what those tasks share: `streams::tickets` holds visitors
//!   waiting for a dial-back; `streams::spares` each session's spare pool;
//!   `streams::counts` holds streams to the route's `max_connections`;
//!   `streams::traffic` counts each serve's streams and bytes.
//! - `status`: the status page, JSON and metrics (`status=`), rendered
//!   from one snapshot of the state; `counters` counts refusals and
//!   dropped peers by reason.
//! - `probes`: the UDP socket on the route's port where vnets' probes
//!   show the public address of their direct sockets; the registry keeps
//!   it with each vnet's card (`registry::direct`) for introductions.
//! - `link`: how the rest reaches a vnet's control connection (two
//!   queues: events it must not miss, best-effort requests) and the task
//!   that writes to it, so no session ever waits on a write.
//! - `state`: what all tasks share (the `Hub`): config, registry, asks,
//!   tickets, spare pools, stream counts, admission, shutdown token and
//!   task tracker.
//! - `registry`: pure state: groups, their vnets and serves, sessions and
//!   the passes that admit data connections. `asks`: open unserve asks.
//! - `conn`: a connection's start (TLS, preambles, first message), its
//!   framed type, and refusing it.
//! - [`config`] (with [`tls`]): what the route runs with, read from
//!   `[route]` or built in code; `reload` puts a config read again in
//!   force (SIGHUP).
#![forbid(unsafe_code)]

mod accept;
mod admission;
mod asks;
pub mod config;
mod conn;
mod control;
mod counters;
mod data;
mod link;
mod probes;
mod registry;
mod reload;
mod state;
mod status;
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
    let (_keep, reloads) = tokio::sync::mpsc::channel(1);
    run_reloading(listener, None, config, shutdown, reloads).await;
}

/// The UDP socket for probes, on the TCP listener's address.
fn probes_socket(listener: &TcpListener) -> std::io::Result<tokio::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(listener.local_addr()?)?;
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket)
}

/// A config read again, and whom to tell once it is in force.
pub type Reload = (RouteConfig, Option<tokio::sync::oneshot::Sender<()>>);

/// [`run`], serving the status page on `status` (bound where the config's
/// `status=` says) and putting in force each config that arrives on
/// `reloads` (what can change while running; see `reload`), with a log
/// line for each.
pub async fn run_reloading(
    listener: TcpListener,
    status: Option<TcpListener>,
    config: RouteConfig,
    shutdown: CancellationToken,
    mut reloads: tokio::sync::mpsc::Receiver<Reload>,
) {
    let hub = Arc::new(Hub::new(config, shutdown));
    match probes_socket(&listener) {
        Ok(socket) => {
            hub.tracker.spawn(probes::serve(socket, hub.clone()));
        }
        Err(err) => tracing::warn!(
            %err,
            "no UDP socket on the route's port: vnets behind NAT cannot go direct"
        ),
    }
    if let Some(status) = status {
        hub.tracker.spawn(status::serve(status, hub.clone()));
    }
    let reloading = hub.clone();
    tokio::spawn(async move {
        while let Some((config, applied)) = reloads.recv().await {
            reload::log(&reload::apply(&reloading, config));
            if let Some(applied) = applied {
                let _ = applied.send(());
            }
        }
    });
    accept::accept_loop(listener, hub.clone()).await;
    hub.tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, hub.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
}
