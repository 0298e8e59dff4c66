//! The vnet endpoint: registers local services with a route and maps
//! remote ones onto local ports.
//!
//! [`start`] builds the parts below, spawns their tasks and returns a
//! [`VnetHandle`]. Each task gets only the parts it uses, and imports
//! between modules point one way (no module imports one that imports it).
//!
//! # Layout
//! - `handle`: [`VnetHandle`], the whole API (status, requests, serve and
//!   use actions, reload, unserve, shutdown).
//! - [`config`] (+ [`tls`]): the file, parsed once into a validated
//!   [`VnetConfig`]; `current` holds what a reload may change.
//! - `model` (+ `traffic`): the [`Status`] on a `watch` channel, and the
//!   live counters of each serve and use.
//! - `control`: the control connection to the route, its handshake,
//!   request bookkeeping and the live session. It publishes the session
//!   and the group's serves, records registrations, and hands the route's
//!   asks on over channels whose readers it does not know.
//! - `paths`: how a stream travels. `paths::relay` goes through the route:
//!   data connections, spares, the visiting start and the serving answers.
//!   A direct path between vnets will be its sibling.
//! - `visiting`, `serving`: one mapped connection's two sides, a use's
//!   client (count, start on a path, carry) and a serve's local service
//!   (admit, reach the service, carry). The visiting side calls a path;
//!   a path hands the serving side what the route asks for, so imports
//!   run visiting -> paths -> serving.
//! - `serves`, `uses`: our serves and uses and the actions on them; `local`
//!   is the table of registered serves the serving side reads.
//! - `grants`: unserve grants, decided, registered and expired.
//! - `reload`: a reloaded config applied as a difference.
//! - `link`: opening any connection to the route (TCP, TLS, preamble);
//!   `error`: the error types at these boundaries.
//! - [`shell`]: the interactive shell (`terminal=true`); `outcome`: the
//!   log targets of the lines its answers restate.
//! - [`ctl`]: the shell's commands from another process (`vnet ctl`), over
//!   a Unix socket beside the config.
//!
//! Cancelling the shutdown token closes the control connection (the
//! route then withdraws our serves), the listeners and every stream.
#![forbid(unsafe_code)]

pub mod config;
mod control;
#[cfg(unix)]
pub mod ctl;
mod current;
pub mod e2e;
mod error;
mod grants;
mod handle;
mod link;
mod local;
mod model;
mod outcome;
mod paths;
mod reload;
mod serves;
mod serving;
pub mod shell;
pub mod tls;
mod traffic;
mod uses;
mod visiting;

pub use config::VnetConfig;
pub use control::command::REQUEST_TIMEOUT;
pub use error::VnetError;
pub use handle::VnetHandle;
pub use model::{DirectState, ServeState, ServeStatus, SpareCounts, Status, UseStatus};
pub use reload::ReloadSummary;
pub use traffic::Traffic;
pub use uses::UseOpened;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use config::DirectMode;
use control::asks::AskSenders;
use control::command::ControlSender;
use control::parts::ControlParts;
use control::session::Session;
use current::{Current, InForce};
use e2e::E2e;
use grants::Grants;
use local::LocalServes;
use model::GroupServes;
use paths::direct::Direct;
use paths::relay::spares::{Keeper, VisitingSpares};
use serves::Serves;
use serving::Serving;
use uses::Uses;
use visiting::Visiting;

/// The direct path, if `direct=auto` for the vnet or any of its uses and
/// its socket can be made (otherwise streams go through the route, with a
/// log line saying why).
fn direct_path(
    config: &VnetConfig,
    control: &ControlSender,
    (serving, sessions): (&Serving, &watch::Receiver<Option<Session>>),
    shutdown: &CancellationToken,
    e2e: &Option<E2e>,
) -> Option<Direct> {
    let wanted = config.vnet.direct == DirectMode::Auto
        || config
            .uses
            .iter()
            .any(|u| u.direct == Some(DirectMode::Auto));
    if !wanted {
        return None;
    }
    let made = paths::direct::identity::Identity::generate()
        .map_err(|e| e.to_string())
        .and_then(|identity| {
            let port = config.vnet.direct_port;
            let socket = paths::direct::socket::DirectSocket::bind(port).map_err(|e| {
                let setting = if port == 0 { "" } else { " (direct_port)" };
                format!("{e}{setting}")
            })?;
            let sides = (serving.clone(), sessions.clone());
            // No TCP lane beside a TLS route: it would carry in the clear
            // what the route's TLS protects (the QUIC link is TLS).
            let lane = config.route.tls.is_none();
            let ends = (shutdown.clone(), lane);
            Direct::new(socket, identity, control.clone(), sides, ends, e2e.clone())
                .map_err(|e| e.to_string())
        });
    match made {
        Ok(direct) => {
            tracing::debug!(socket = ?direct.local_addr(), "direct path ready");
            Some(direct)
        }
        Err(err) => {
            tracing::warn!(%err, "no direct path; streams go through the route");
            None
        }
    }
}

/// Starts a vnet from `config`. Must be called inside a tokio runtime.
/// With `secret=`, its key pair lives as long as the process (see
/// [`start_with_identity`] for one kept in a file).
pub fn start(config: VnetConfig, shutdown: CancellationToken) -> VnetHandle {
    start_with_identity(config, shutdown, None)
}

/// [`start`], with the vnet's long-term key pair for `secret=` (made
/// for the process when `None`).
pub fn start_with_identity(
    config: VnetConfig,
    shutdown: CancellationToken,
    identity: Option<e2e::identity::Identity>,
) -> VnetHandle {
    let model = watch::Sender::new(Status::at_start(&config));
    let group = watch::Sender::new(GroupServes::default());
    let session = watch::Sender::new(None);
    let current = Current::new(InForce::new(&config));
    let local = LocalServes::default();
    let tracker = TaskTracker::new();
    let (control, commands) = ControlSender::channel();
    let (mut asks, stream_asks, unserve_asks) = AskSenders::channel();
    let e2e = config.vnet.secret.clone().map(|secret| {
        let identity = identity.unwrap_or_else(e2e::identity::Identity::ephemeral);
        E2e::new(
            secret,
            identity.public_key(),
            current.clone(),
            control.clone(),
            session.subscribe(),
        )
    });
    // Pairing messages go to the e2e task; none without a secret.
    let (peers, peer_notes) = tokio::sync::mpsc::channel(64);
    asks.peers = e2e.as_ref().map(|_| peers);

    let serving = Serving {
        model: model.clone(),
        local: local.clone(),
        current: current.clone(),
        tracker: tracker.clone(),
        e2e: e2e.clone(),
    };
    let (introductions, introduced) = tokio::sync::mpsc::channel(64);
    let direct = direct_path(
        &config,
        &control,
        (&serving, &session.subscribe()),
        &shutdown,
        &e2e,
    );
    asks.introductions = direct.as_ref().map(|_| introductions);
    let visiting = Visiting {
        model: model.clone(),
        sessions: session.subscribe(),
        spares: VisitingSpares::new(model.clone()),
        group: group.subscribe(),
        e2e: e2e.clone(),
        direct: direct.clone(),
    };
    let keeper = Keeper {
        visiting: visiting.spares.clone(),
        serving: serving.clone(),
    };
    let serves = Serves {
        model: model.clone(),
        local: local.clone(),
        control: control.clone(),
    };
    let uses = Uses::new(
        model.clone(),
        group.subscribe(),
        visiting,
        current.clone(),
        tracker.clone(),
        shutdown.clone(),
    );
    let grants = Grants::new(
        serves.clone(),
        current.clone(),
        control.clone(),
        tracker.clone(),
        shutdown.clone(),
        e2e.clone(),
    );

    let sessions = session.subscribe();
    if let Some(direct) = direct {
        tracker.spawn(direct.run(introduced));
    }
    let parts = ControlParts {
        current: current.clone(),
        model: model.clone(),
        group: group.clone(),
        session,
        local,
        asks,
        shutdown: shutdown.clone(),
    };
    tracker.spawn(control::run(parts, commands));
    let answering = paths::relay::answer::run(stream_asks, serving, shutdown.clone());
    tracker.spawn(answering);
    tracker.spawn(paths::relay::spares::run(
        keeper,
        sessions,
        shutdown.clone(),
    ));
    tracker.spawn(grants::run(grants, unserve_asks));
    let e2e_for_handle = e2e.clone();
    if let Some(e2e) = e2e {
        tracker.spawn(e2e::run(e2e, peer_notes));
    }
    let active_uses: Vec<String> = model
        .borrow()
        .uses
        .values()
        .filter(|u| u.config.active)
        .map(|u| u.config.key.clone())
        .collect();
    for key in active_uses {
        uses.spawn(&key);
    }
    VnetHandle {
        model,
        group,
        current,
        control,
        serves,
        uses,
        shutdown,
        tracker,
        e2e: e2e_for_handle,
    }
}
