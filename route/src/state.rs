//! The state every task of the route shares, made once by [`crate::run`]
//! and handed to each connection's task behind an `Arc`.
//!
//! It owns the config, the registry and open unserve asks (each behind a
//! std `Mutex`, never held across an `.await`), the data connections
//! waiting for their other half, and the shutdown token and task tracker
//! that let `run` stop everything and wait for it.
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::Admission;
use crate::asks::Asks;
use crate::config::RouteConfig;
use crate::counters::Counters;
use crate::registry::Registry;
use crate::streams::counts::StreamCounts;
use crate::streams::spares::SparePools;
use crate::streams::tickets::Pending;
use crate::streams::traffic::Traffic;

/// State shared by all of the route's tasks.
pub struct Hub {
    /// What the route runs with; a reload swaps it (see `reload`).
    config: RwLock<Arc<RouteConfig>>,
    registry: Mutex<Registry>,
    asks: Mutex<Asks>,
    /// Visitors waiting for a dialed-back serving half, by ticket.
    pub tickets: Pending,
    /// Each live session's idle spare data connections.
    pub spares: SparePools,
    /// Streams open now, per serve and per visitor.
    pub streams: StreamCounts,
    /// Each serve's streams and bytes, for the status page.
    pub traffic: Traffic,
    /// Peers refused and dropped, by reason.
    pub counters: Counters,
    /// When the route started.
    pub started: std::time::SystemTime,
    /// Connections that have not proved the token, held to bounds.
    pub admission: Arc<Admission>,
    /// Cancelled to stop the route: every task watches it.
    pub shutdown: CancellationToken,
    /// Every connection's task, so `run` can wait for them.
    pub tracker: TaskTracker,
}

impl Hub {
    /// Empty state for a route that stops when `shutdown` is cancelled.
    pub fn new(config: RouteConfig, shutdown: CancellationToken) -> Self {
        Self {
            admission: Arc::new(Admission::new(config.admission.clone())),
            config: RwLock::new(Arc::new(config)),
            registry: Mutex::default(),
            asks: Mutex::default(),
            tickets: Pending::default(),
            spares: SparePools::default(),
            streams: StreamCounts::default(),
            traffic: Traffic::default(),
            counters: Counters::default(),
            started: std::time::SystemTime::now(),
            shutdown,
            tracker: TaskTracker::new(),
        }
    }

    /// The config as it is now. A task reads it when it needs a setting,
    /// so a reload reaches every new connection and request.
    pub fn config(&self) -> Arc<RouteConfig> {
        self.config.read().expect("config poisoned").clone()
    }

    /// Puts `config` in place of the current one.
    pub fn replace_config(&self, config: RouteConfig) {
        *self.config.write().expect("config poisoned") = Arc::new(config);
    }

    /// The registry, locked. Never hold the guard across an `.await`.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().expect("registry poisoned")
    }

    /// The open unserve asks, locked. Never hold the guard across an
    /// `.await`.
    pub fn asks(&self) -> MutexGuard<'_, Asks> {
        self.asks.lock().expect("asks poisoned")
    }
}
