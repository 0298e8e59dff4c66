//! The vnet endpoint: registers local services with a route and maps
//! remote ones onto local ports.
//!
//! [`start`] spawns the tasks and returns a [`VnetHandle`]:
//! - [`control`]: the control connection to the route, reconnecting with
//!   backoff; registers serves, receives the group's serve events and
//!   stream requests, answers handle requests (ping, lists).
//! - [`serve`]: for each stream request, connect to the local service and
//!   dial the route back with the ticket.
//! - [`use_map`]: one listener per use; each accepted connection dials the
//!   route with a visit and is spliced onto it.
//!
//! Cancelling the shutdown token closes the control connection (the route
//! then withdraws our serves), the listeners and every stream.
#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod data;
pub mod serve;
pub mod status;
pub mod use_map;

pub use config::VnetConfig;
pub use status::{ServeState, Status, UseStatus};

use proto::config::RouteSection;
use proto::message::{Request, Response, ServeEntry};
use proto::{ServeId, SessionKey, VnetId};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use config::{ServeConfig, VnetSettings};

/// How long [`VnetHandle::stopped`] waits for tasks after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of handle requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VnetError {
    /// The control connection is down (reconnecting).
    #[error("not connected to the route")]
    NotConnected,
    /// The route refused the request.
    #[error("route: {0}")]
    Route(String),
    /// The vnet is shutting down.
    #[error("vnet is stopping")]
    Stopped,
}

/// The live control session, while connected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    pub vnet_id: VnetId,
    pub key: SessionKey,
    /// The route address that answered; data connections go there too.
    pub route: SocketAddr,
}

/// State shared by the vnet's tasks.
pub(crate) struct Shared {
    pub settings: VnetSettings,
    pub route: RouteSection,
    pub status: watch::Sender<Status>,
    /// The group's serves as the route last told us.
    pub available: watch::Sender<BTreeMap<ServeId, ServeEntry>>,
    pub session: watch::Sender<Option<Session>>,
    /// Our registered serves by id: where a stream request connects to.
    pub local: Mutex<HashMap<ServeId, ServeConfig>>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

impl Shared {
    pub fn local(&self) -> std::sync::MutexGuard<'_, HashMap<ServeId, ServeConfig>> {
        self.local.lock().expect("serve table poisoned")
    }
}

/// Something asked of the control task.
pub(crate) enum Command {
    Request(Request, oneshot::Sender<Result<Response, VnetError>>),
}

/// Starts a vnet from `config`. Must be called inside a tokio runtime.
pub fn start(config: VnetConfig, shutdown: CancellationToken) -> VnetHandle {
    let serves: Vec<ServeConfig> = config
        .serves
        .iter()
        .filter(|s| config.starts_serve(s))
        .cloned()
        .collect();
    let uses: Vec<_> = config
        .uses
        .iter()
        .filter(|u| config.starts_use(u))
        .cloned()
        .collect();
    let mut status = Status::default();
    for serve in &serves {
        status.serves.insert(serve.key.clone(), ServeState::Pending);
    }
    for use_ in &uses {
        let serve_id = use_.serve_id.expect("starts_use checks serve_id");
        status.uses.insert(
            use_.key.clone(),
            UseStatus {
                serve_id,
                local: None,
                open: false,
                error: None,
            },
        );
    }
    for use_ in config
        .uses
        .iter()
        .filter(|u| u.active && u.serve_id.is_none())
    {
        tracing::warn!(r#use = %use_.key, "use has no serveid (or 000); it stays off");
    }
    let shared = Arc::new(Shared {
        settings: config.vnet,
        route: config.route,
        status: watch::Sender::new(status),
        available: watch::Sender::new(BTreeMap::new()),
        session: watch::Sender::new(None),
        local: Mutex::default(),
        shutdown,
        tracker: TaskTracker::new(),
    });
    let (commands, command_rx) = mpsc::channel(64);
    shared
        .tracker
        .spawn(control::run(shared.clone(), serves, command_rx));
    for use_ in uses {
        shared.tracker.spawn(use_map::run(shared.clone(), use_));
    }
    VnetHandle { shared, commands }
}

/// Talks to a running vnet.
#[derive(Clone)]
pub struct VnetHandle {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

impl VnetHandle {
    /// The current state.
    pub fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    /// Waits until `ready` holds for the state, and returns that state.
    /// Wrap it in a timeout: it waits as long as it takes.
    pub async fn wait_for(&self, mut ready: impl FnMut(&Status) -> bool) -> Status {
        let mut rx = self.shared.status.subscribe();
        let seen = rx
            .wait_for(|s| ready(s))
            .await
            .expect("the handle keeps the sender alive");
        seen.clone()
    }

    /// Sends a request to the route and waits for the answer.
    ///
    /// # Errors
    /// Not connected, refused by the route, or stopping.
    pub async fn request(&self, request: Request) -> Result<Response, VnetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request(request, tx))
            .await
            .map_err(|_| VnetError::Stopped)?;
        match rx.await.map_err(|_| VnetError::Stopped)?? {
            Response::Error(reason) => Err(VnetError::Route(reason)),
            response => Ok(response),
        }
    }

    /// Round trip to the route over the control connection.
    ///
    /// # Errors
    /// As [`VnetHandle::request`].
    pub async fn ping(&self) -> Result<Duration, VnetError> {
        let sent = Instant::now();
        self.request(Request::Ping).await?;
        Ok(sent.elapsed())
    }

    /// The group's serves, as the route lists them.
    ///
    /// # Errors
    /// As [`VnetHandle::request`].
    pub async fn serves(&self) -> Result<Vec<ServeEntry>, VnetError> {
        match self.request(Request::ListServes).await? {
            Response::Serves(list) => Ok(list),
            _ => Err(VnetError::Route("unexpected answer".into())),
        }
    }

    /// Asks every task to stop.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Waits, after [`VnetHandle::shutdown`], until every task has ended
    /// (or a drain timeout passed). Returns whether all ended.
    pub async fn stopped(&self) -> bool {
        self.shared.tracker.close();
        tokio::time::timeout(DRAIN_TIMEOUT, self.shared.tracker.wait())
            .await
            .is_ok()
    }
}
