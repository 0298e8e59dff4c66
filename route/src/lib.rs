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

pub mod admission;
pub mod asks;
pub mod config;
pub mod forward;
pub mod hub;
pub mod registry;
pub mod session;
pub mod spare;
pub mod tls;

pub use config::RouteConfig;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long `run` waits for connection tasks after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How the route runs, beyond where it listens.
#[derive(Clone)]
pub struct Settings {
    /// Vnets must prove they know this token (empty: no token, and a vnet
    /// that has one is refused).
    pub token: proto::auth::Token,
    /// A vnet silent this long is dropped; vnets ping well within it.
    pub heartbeat: Duration,
    /// Most vnets connected at once, all groups.
    pub max_vnets: usize,
    /// Most serves one vnet may register.
    pub max_serves_per_vnet: usize,
    /// How long a new connection may take to send its preamble and hello
    /// (and a vnet its token proof): a peer that never finishes is dropped.
    pub handshake_timeout: Duration,
    /// TLS on every connection, when set.
    pub tls: Option<tls::ServerTls>,
}

/// A connection as the route handles it: plain or TLS.
pub type Conn = net::Transport<tokio::net::TcpStream>;

impl Default for Settings {
    fn default() -> Self {
        Self {
            token: proto::auth::Token::default(),
            heartbeat: Duration::from_secs(30),
            max_vnets: 1000,
            max_serves_per_vnet: 100,
            handshake_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

impl Settings {
    /// The settings a config asks for (TLS is set separately: it reads
    /// and may write files).
    pub fn from_config(config: &RouteConfig) -> Self {
        Self {
            token: config.basics.token.clone(),
            heartbeat: Duration::from_secs(u64::from(config.basics.heartbeat)),
            max_vnets: config.max_vnets as usize,
            max_serves_per_vnet: config.max_serves_per_vnet as usize,
            ..Self::default()
        }
    }
}

/// State shared by all of the route's tasks.
pub struct Hub {
    settings: Settings,
    registry: Mutex<registry::Registry>,
    asks: Mutex<asks::Asks>,
    pending: forward::Pending,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Hub {
    /// The registry, locked. Never hold the guard across an `.await`.
    pub fn registry(&self) -> MutexGuard<'_, registry::Registry> {
        self.registry.lock().expect("registry poisoned")
    }

    /// The open unserve asks, locked. Never hold the guard across an
    /// `.await`.
    pub fn asks(&self) -> MutexGuard<'_, asks::Asks> {
        self.asks.lock().expect("asks poisoned")
    }
}

/// Binds `addr` (IP or host name with port) for the route.
///
/// # Errors
/// The name does not resolve, or the address cannot be bound.
pub async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    net::listen::bind_host(addr).await
}

/// Serves on `listener` until `shutdown` is cancelled.
pub async fn run(listener: TcpListener, settings: Settings, shutdown: CancellationToken) {
    let hub = Arc::new(Hub {
        settings,
        registry: Mutex::default(),
        asks: Mutex::default(),
        pending: forward::Pending::default(),
        shutdown: shutdown.clone(),
        tracker: TaskTracker::new(),
    });
    hub::accept_loop(listener, hub.clone()).await;
    hub.tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, hub.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
}
