//! The vnet endpoint: registers local services with a route and maps
//! remote ones onto local ports.
//!
//! [`start`] spawns the tasks and returns a [`VnetHandle`]:
//! - [`control`]: the control connection to the route, reconnecting with
//!   backoff; registers the active serves, follows the group's serve
//!   events, stream requests and unserve asks, and answers requests.
//! - [`serve`]: for each stream request, connect to the local service and
//!   dial the route back with the ticket.
//! - [`use_map`]: one listener per active use; each accepted connection
//!   dials the route with a visit and is spliced onto it.
//! - [`manage`]: opening, closing, creating and deleting serves and uses,
//!   and applying a reloaded config as a difference.
//! - [`unserve`]: time-limited grants to unregistered services.
//!
//! The [`Status`] on a watch channel is the model: every serve and use
//! with its config and state. Cancelling the shutdown token closes the
//! control connection (the route then withdraws our serves), the
//! listeners and every stream.
#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod data;
pub mod error;
pub mod manage;
pub mod model;
pub mod serve;
pub mod shell;
pub mod spare;
pub mod tls;
pub mod traffic;
pub mod unserve;
pub mod use_map;
mod visit;

pub use config::VnetConfig;
pub use error::VnetError;
pub use model::{ServeState, ServeStatus, SpareCounts, Status, UseStatus};
pub use traffic::Traffic;

use config::RouteLink;
use model::{GroupServes, Model};
use proto::auth::SessionSecret;
use proto::message::{Request, Response, ServeEntry, VnetEntry, VnetMsg};
use proto::pass::{DataPass, Purpose};
use proto::{ServeId, SessionId, VnetId};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use config::{ServeConfig, VnetOptions};

/// How long [`VnetHandle::stopped`] waits for tasks after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request to the route may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The live control session, while connected.
#[derive(Clone)]
pub(crate) struct Session {
    pub vnet_id: VnetId,
    /// Names this session in data connections' passes.
    pub id: SessionId,
    /// Makes those passes; never sent.
    pub secret: SessionSecret,
    /// Counter of passes made, shared by the session's clones.
    pub passes: Arc<AtomicU64>,
    /// The route that answered; data connections go there too.
    pub route: data::RouteTarget,
    /// Silence after which the link counts as dead: the smaller of ours
    /// and the route's. We ping every third of it.
    pub heartbeat: Duration,
}

impl Session {
    /// A fresh pass for one data connection of this session.
    pub fn pass(&self, purpose: Purpose) -> DataPass {
        let counter = self.passes.fetch_add(1, Ordering::Relaxed);
        self.secret.pass(self.id, counter, purpose)
    }
}

/// A registered serve, as stream requests find it.
#[derive(Clone)]
pub(crate) struct LocalServe {
    pub config: ServeConfig,
    /// Cancelled when the serve is closed: its streams end.
    pub cancel: CancellationToken,
    pub traffic: Arc<Traffic>,
}

/// Settings that a reload may change.
#[derive(Clone)]
pub(crate) struct Settings {
    pub vnet: VnetOptions,
    pub route: RouteLink,
    pub tls: Option<data::TlsClient>,
}

/// State shared by the vnet's tasks.
pub(crate) struct Shared {
    pub settings: Mutex<Settings>,
    pub status: Model,
    /// The group's serves as the route last told us.
    pub available: watch::Sender<GroupServes>,
    pub session: watch::Sender<Option<Session>>,
    /// Our registered serves by id: where a stream request connects to.
    pub local: Mutex<HashMap<ServeId, LocalServe>>,
    /// Running use tasks by key.
    pub use_tasks: Mutex<HashMap<String, use_map::UseTask>>,
    pub commands: mpsc::Sender<Command>,
    /// Live unserve grants by serve key: notified when a grant is asked
    /// for again, so its expiry starts over.
    pub grants: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Idle spare data connections for our uses.
    pub visiting_spares: spare::VisitingSpares,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("vnet state poisoned")
}

impl Shared {
    pub fn local(&self) -> MutexGuard<'_, HashMap<ServeId, LocalServe>> {
        locked(&self.local)
    }

    pub fn use_tasks(&self) -> MutexGuard<'_, HashMap<String, use_map::UseTask>> {
        locked(&self.use_tasks)
    }

    pub fn grants(&self) -> MutexGuard<'_, HashMap<String, Arc<tokio::sync::Notify>>> {
        locked(&self.grants)
    }

    pub fn settings(&self) -> Settings {
        locked(&self.settings).clone()
    }

    pub fn set_settings(&self, settings: Settings) {
        *locked(&self.settings) = settings;
    }

    /// Sends a request to the route and waits (bounded) for the answer.
    pub async fn request(&self, request: Request) -> Result<Response, VnetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request(request, tx))
            .await
            .map_err(|_| VnetError::Stopped)?;
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, rx)
            .await
            .map_err(|_| VnetError::Timeout(REQUEST_TIMEOUT))?
            .map_err(|_| VnetError::Stopped)??;
        match answer {
            Response::Error(refusal) => Err(VnetError::Refused(refusal)),
            answer => Ok(answer),
        }
    }
}

/// Something asked of the control task.
pub(crate) enum Command {
    /// A request; the answer goes to the sender.
    Request(Request, oneshot::Sender<Result<Response, VnetError>>),
    /// Register the serve with this key (as the status has it); the id or
    /// the refusal goes to the sender, if any.
    Register(String, Option<oneshot::Sender<Result<ServeId, VnetError>>>),
    /// Withdraw a registration; nobody waits for the answer.
    Unregister(ServeId),
    /// Send a message that is not a request.
    Send(VnetMsg),
    /// Drop the control connection and connect again with the current
    /// settings.
    Reconnect,
}

/// Starts a vnet from `config`. Must be called inside a tokio runtime.
pub fn start(config: VnetConfig, shutdown: CancellationToken) -> VnetHandle {
    let status = Status::at_start(&config);
    let (commands, command_rx) = mpsc::channel(64);
    let shared = Arc::new(Shared {
        settings: Mutex::new(Settings {
            vnet: config.vnet,
            tls: config.route.tls.as_ref().map(data::TlsClient::new),
            route: config.route,
        }),
        status: watch::Sender::new(status),
        available: watch::Sender::new(BTreeMap::new()),
        session: watch::Sender::new(None),
        local: Mutex::default(),
        use_tasks: Mutex::default(),
        commands,
        grants: Mutex::default(),
        visiting_spares: spare::VisitingSpares::default(),
        shutdown,
        tracker: TaskTracker::new(),
    });
    shared
        .tracker
        .spawn(control::run(shared.clone(), command_rx));
    let active_uses: Vec<String> = shared
        .status
        .borrow()
        .uses
        .values()
        .filter(|u| u.config.active)
        .map(|u| u.config.key.clone())
        .collect();
    for key in active_uses {
        use_map::spawn(&shared, &key);
    }
    VnetHandle { shared }
}

/// Talks to a running vnet. Cheap to clone.
#[derive(Clone)]
pub struct VnetHandle {
    shared: Arc<Shared>,
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

    /// Waits until the group's serves, as the route last announced them
    /// to this vnet, satisfy `ready`; returns them then.
    pub async fn wait_for_serves(
        &self,
        mut ready: impl FnMut(&BTreeMap<ServeId, ServeEntry>) -> bool,
    ) -> BTreeMap<ServeId, ServeEntry> {
        let mut rx = self.shared.available.subscribe();
        let seen = rx
            .wait_for(|a| ready(a))
            .await
            .expect("the handle keeps the sender alive");
        seen.clone()
    }

    /// This vnet's settings and route, as in force now.
    pub fn settings(&self) -> (VnetOptions, RouteLink) {
        let s = self.shared.settings();
        (s.vnet, s.route)
    }

    /// Sends a request to the route and waits for the answer.
    ///
    /// # Errors
    /// Not connected, refused, timed out, or stopping.
    pub async fn request(&self, request: Request) -> Result<Response, VnetError> {
        self.shared.request(request).await
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
            other => Err(VnetError::Protocol(format!("unexpected answer {other:?}"))),
        }
    }

    /// The group's vnets, as the route lists them.
    ///
    /// # Errors
    /// As [`VnetHandle::request`].
    pub async fn vnets(&self) -> Result<Vec<VnetEntry>, VnetError> {
        match self.request(Request::ListVnets).await? {
            Response::Vnets(list) => Ok(list),
            other => Err(VnetError::Protocol(format!("unexpected answer {other:?}"))),
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

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}
