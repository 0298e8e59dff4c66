//! The model: what a running vnet knows about itself. Every serve and use
//! with its config and state, in one [`Status`] published on a `watch`
//! channel, so tests and the shell wait for a state instead of sleeping.
//! Byte and connection counters live in shared [`Traffic`] cells, updated
//! by the stream tasks without republishing the whole status; a
//! [`StreamGuard`] counts one stream in both.
use proto::message::ServeEntry;
use proto::{ServeId, VnetId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

use crate::config::{ServeConfig, UseConfig, VnetConfig};
use crate::traffic::Traffic;
use net::relay::Tallied;

/// The model's channel: every task that changes the state publishes here.
pub(crate) type Model = watch::Sender<Status>;

/// The group's serves by id, as the route last announced them, and which
/// of those gone were withdrawn by their vnet (rather than gone with it).
/// Reads as the map of serves.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupServes {
    serves: BTreeMap<ServeId, ServeEntry>,
    /// Serve id -> the vnet that withdrew it, until the id is announced
    /// again.
    withdrawn: BTreeMap<ServeId, VnetId>,
    /// Serves kept while the route does not list them (we lost it), as a
    /// direct link to their vnet is up.
    kept: std::collections::BTreeSet<ServeId>,
}

impl std::ops::Deref for GroupServes {
    type Target = BTreeMap<ServeId, ServeEntry>;

    fn deref(&self) -> &Self::Target {
        &self.serves
    }
}

impl GroupServes {
    /// A serve announced.
    pub(crate) fn up(&mut self, entry: ServeEntry) {
        self.withdrawn.remove(&entry.serve_id);
        self.kept.remove(&entry.serve_id);
        self.serves.insert(entry.serve_id, entry);
    }

    /// A serve gone: `withdrawn` by its vnet, or gone with it.
    pub(crate) fn down(&mut self, serve_id: ServeId, withdrawn: bool) {
        if let Some(entry) = self.serves.remove(&serve_id) {
            if withdrawn {
                self.withdrawn.insert(serve_id, entry.vnet_id);
            }
        }
    }

    /// Only the serves of vnets for which `keep` holds stay, as kept.
    pub(crate) fn keep_vnets(&mut self, keep: impl Fn(VnetId) -> bool) {
        self.serves.retain(|_, entry| keep(entry.vnet_id));
        self.kept = self.serves.keys().copied().collect();
        self.withdrawn.clear();
    }

    /// The direct link to `vnet` went down: its kept serves go.
    pub(crate) fn drop_kept(&mut self, vnet: VnetId) {
        let serves = &mut self.serves;
        self.kept.retain(|id| {
            let gone = serves.get(id).is_some_and(|e| e.vnet_id == vnet);
            if gone {
                serves.remove(id);
            }
            !gone
        });
    }

    /// Everything forgotten: the session ended.
    pub(crate) fn clear(&mut self) {
        self.serves.clear();
        self.withdrawn.clear();
        self.kept.clear();
    }

    /// The vnet that withdrew `serve_id` last, if it was withdrawn.
    pub(crate) fn withdrawn_by(&self, serve_id: ServeId) -> Option<VnetId> {
        self.withdrawn.get(&serve_id).copied()
    }
}

/// A snapshot of the vnet's state.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Our id at the route while the control connection is up.
    pub vnet_id: Option<VnetId>,
    /// Why the last attempt to reach the route failed, until one succeeds.
    pub route_error: Option<String>,
    /// Control connections established so far; grows by one per
    /// (re)connect.
    pub connects: u64,
    /// Serves by key (the part after `serve.`).
    pub serves: BTreeMap<String, ServeStatus>,
    /// Uses by key.
    pub uses: BTreeMap<String, UseStatus>,
    /// Mapped connections open right now, as visitor and as server.
    /// Returns to 0 when every connection has been torn down.
    pub streams: usize,
    /// Spare data connections to the route (`[vnet] spares`).
    pub spares: SpareCounts,
    /// Where direct links stand, by the vnet at their other end (every
    /// vnet this one asked for a link or was introduced to).
    pub direct: BTreeMap<VnetId, DirectState>,
    /// Streams our uses started on a direct link so far.
    pub direct_streams: u64,
    /// Of those, the ones on the link's TCP lane.
    pub lane_streams: u64,
    /// The direct socket's address, when this vnet makes direct links.
    pub direct_socket: Option<SocketAddr>,
    /// The port of its TCP lane listener, when it offers lanes.
    pub lane_port: Option<u16>,
}

/// Where the direct link with one vnet stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectState {
    /// The route was asked to introduce the two.
    Asking,
    /// Introduced; an attempt is under way.
    Trying,
    /// A link is up.
    Up {
        /// The other vnet's address on the link.
        addr: SocketAddr,
        /// Its round trip, as last measured.
        rtt: std::time::Duration,
    },
    /// No link: streams go through the route, for this reason.
    Relay(String),
}

impl DirectState {
    /// Whether a link is up.
    pub fn is_up(&self) -> bool {
        matches!(self, DirectState::Up { .. })
    }
}

/// Spare data connections idle now, and streams started on one so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SpareCounts {
    /// Idle, for our uses.
    pub idle_visit: usize,
    /// Idle, for our serves.
    pub idle_serve: usize,
    /// Streams our uses started on a spare.
    pub used_visit: u64,
    /// Streams to our serves the route asked for on a spare (including
    /// any this vnet then refused).
    pub used_serve: u64,
}

/// A serve and where its registration stands.
#[derive(Debug, Clone)]
pub struct ServeStatus {
    /// As configured (or created from the shell); `active` says whether it
    /// should be registered.
    pub config: ServeConfig,
    /// Registration state.
    pub state: ServeState,
    /// The id last granted by the route; asked for again after a
    /// reconnect, so users of a dynamic id keep reaching it.
    pub last_id: Option<ServeId>,
    /// A time-limited grant made for another vnet (unserve).
    pub grant: Option<String>,
    /// Made in the shell (`serve new` or `run`), not read from the file:
    /// a reload keeps it unless the file now defines the same name.
    pub from_shell: bool,
    /// Connections and bytes.
    pub traffic: Arc<Traffic>,
}

/// Where a serve's registration stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "detail")]
pub enum ServeState {
    /// Not active: not registered.
    Inactive,
    /// Waiting for the route (not connected, or request in flight).
    Pending,
    /// Registered under this id.
    Registered(ServeId),
    /// The route refused it; the text says why.
    Refused(String),
}

/// A use and where it stands.
#[derive(Debug, Clone)]
pub struct UseStatus {
    /// As configured; `active` says whether it should listen.
    pub config: UseConfig,
    /// The local address it listens on, once bound.
    pub local: Option<SocketAddr>,
    /// Whether the serve is available, so connections are carried.
    /// Otherwise an active use is in standby and refuses connections.
    pub open: bool,
    /// Why the use cannot work (for example, its port is taken).
    pub error: Option<String>,
    /// For the mapping of a grant received by unserve: the vnet that
    /// granted it. The mapping is removed when the grant is withdrawn, and
    /// never reaches a serve of another vnet under the same id.
    pub grant: Option<VnetId>,
    /// Made in the shell (`use new` or `run`), not read from the file: a
    /// reload keeps it unless the file now defines the same name.
    pub from_shell: bool,
    /// Connections and bytes.
    pub traffic: Arc<Traffic>,
}

impl ServeStatus {
    /// A serve not yet registered.
    pub fn new(config: ServeConfig) -> Self {
        let state = if config.active {
            ServeState::Pending
        } else {
            ServeState::Inactive
        };
        Self {
            config,
            state,
            last_id: None,
            grant: None,
            from_shell: false,
            traffic: Arc::default(),
        }
    }
}

impl UseStatus {
    /// A use not yet started.
    pub fn new(config: UseConfig) -> Self {
        Self {
            config,
            local: None,
            open: false,
            error: None,
            grant: None,
            from_shell: false,
            traffic: Arc::default(),
        }
    }

    /// One word for people: off, failed, waiting, standby or open.
    pub fn state(&self) -> &'static str {
        match (self.config.active, &self.error, self.local, self.open) {
            (false, _, _, _) => "off",
            (true, Some(_), _, _) => "failed",
            (true, None, None, _) => "waiting",
            (true, None, Some(_), false) => "standby",
            (true, None, Some(_), true) => "open",
        }
    }
}

impl Status {
    /// The state at start: the config's serves and uses, each active as
    /// the start flags say, nothing registered or listening yet.
    pub(crate) fn at_start(config: &VnetConfig) -> Self {
        let mut status = Status::default();
        for serve in config.wanted_serves() {
            status
                .serves
                .insert(serve.key.clone(), ServeStatus::new(serve));
        }
        for use_ in &config.uses {
            if use_.active && use_.serve_id.is_none() {
                tracing::warn!(r#use = %use_.key, "use has no serveid (or 000); it stays off");
            }
        }
        for use_ in config.wanted_uses() {
            status.uses.insert(use_.key.clone(), UseStatus::new(use_));
        }
        status
    }

    /// The id a serve is registered under, if it is.
    pub fn serve_id(&self, key: &str) -> Option<ServeId> {
        match self.serves.get(key).map(|s| &s.state) {
            Some(ServeState::Registered(id)) => Some(*id),
            _ => None,
        }
    }

    /// The local address of a use that is open, if it is.
    pub fn open_use(&self, key: &str) -> Option<SocketAddr> {
        self.uses.get(key).filter(|u| u.open).and_then(|u| u.local)
    }
}

/// Counts one open stream while it lives: in [`Status::streams`] and in
/// its serve's or use's [`Traffic`].
pub(crate) struct StreamGuard<'a> {
    status: &'a watch::Sender<Status>,
    traffic: Arc<Traffic>,
}

impl<'a> StreamGuard<'a> {
    pub(crate) fn new(status: &'a watch::Sender<Status>, traffic: Arc<Traffic>) -> Self {
        status.send_modify(|s| s.streams += 1);
        traffic.stream_opened();
        Self { status, traffic }
    }

    /// Wraps the local side of the stream so its bytes are counted.
    pub(crate) fn count<S>(&self, stream: S) -> Tallied<S> {
        self.traffic.count(stream)
    }
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.traffic.stream_closed();
        self.status.send_modify(|s| s.streams -= 1);
    }
}
