//! What a running vnet reports about itself, published on a `watch`
//! channel so tests (and the shell) can wait for a state instead of
//! sleeping.
use proto::{ServeId, VnetId};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A snapshot of the vnet's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Our id at the route while the control connection is up.
    pub vnet_id: Option<VnetId>,
    /// Serves by config key.
    pub serves: BTreeMap<String, ServeState>,
    /// Uses by config key.
    pub uses: BTreeMap<String, UseStatus>,
    /// Mapped connections open right now, both as visitor and as server.
    /// Returns to 0 when every connection has been torn down.
    pub streams: usize,
}

/// Where a serve's registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeState {
    /// Waiting for the route (not connected, or request in flight).
    Pending,
    /// Registered under this id.
    Registered(ServeId),
    /// The route refused it; the text says why.
    Refused(String),
}

/// Where a use stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseStatus {
    /// The serve it maps.
    pub serve_id: ServeId,
    /// The local address it listens on, once bound.
    pub local: Option<SocketAddr>,
    /// Whether the serve is available, so connections are carried.
    /// Otherwise the use is in standby and refuses connections.
    pub open: bool,
    /// Why the use cannot work (for example, its port is taken).
    pub error: Option<String>,
}

impl Status {
    /// The id a serve is registered under, if it is.
    pub fn serve_id(&self, key: &str) -> Option<ServeId> {
        match self.serves.get(key) {
            Some(ServeState::Registered(id)) => Some(*id),
            _ => None,
        }
    }

    /// The local address of a use that is open, if it is.
    pub fn open_use(&self, key: &str) -> Option<SocketAddr> {
        self.uses.get(key).filter(|u| u.open).and_then(|u| u.local)
    }
}

/// Counts one open stream in [`Status::streams`] while it lives.
pub(crate) struct StreamGuard<'a> {
    status: &'a tokio::sync::watch::Sender<Status>,
}

impl<'a> StreamGuard<'a> {
    pub(crate) fn new(status: &'a tokio::sync::watch::Sender<Status>) -> Self {
        status.send_modify(|s| s.streams += 1);
        Self { status }
    }
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.status.send_modify(|s| s.streams -= 1);
    }
}
