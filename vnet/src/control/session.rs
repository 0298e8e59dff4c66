//! The live control session: our vnet id, the session's id and secret
//! (which make the passes of its data connections), the route that
//! answered and the heartbeat in force. Published on a `watch` channel
//! while connected (`None` otherwise). Work that belongs to one session,
//! such as its spares, ends when [`Session::ended`] is cancelled.
use proto::auth::SessionSecret;
use proto::pass::{DataPass, Purpose};
use proto::{SessionId, VnetId};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::link::RouteTarget;

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
    pub route: RouteTarget,
    /// Silence after which the link counts as dead: the smaller of ours
    /// and the route's. We ping every third of it.
    pub heartbeat: Duration,
    /// Cancelled as soon as the control connection of this session ends
    /// (a child of the vnet's shutdown).
    pub ended: CancellationToken,
    /// Cancelled when the route is lost (silent, or not taking what we
    /// send, for a heartbeat): the session's streams end in a reset then,
    /// as their own connections may be silently dead too. A reconnect
    /// for new settings leaves them running.
    pub lost: CancellationToken,
    /// The route relays messages between vnets (feature `e2e`), so
    /// pairing for end to end is possible.
    pub e2e: bool,
    /// The route introduces vnets for direct links (feature `direct`).
    pub direct: bool,
}

impl Session {
    /// A session of vnet `vnet_id` with a route that is never dialed, for
    /// unit tests; `e2e` as the route's features would say.
    #[cfg(test)]
    pub(crate) fn for_test(vnet_id: VnetId, e2e: bool) -> Self {
        Self {
            vnet_id,
            id: SessionId(1),
            secret: SessionSecret::from_bytes([0; 32]),
            passes: Arc::default(),
            route: RouteTarget {
                addr: "127.0.0.1:1".parse().expect("an address"),
                tls: None,
                heartbeat: Duration::from_secs(30),
            },
            heartbeat: Duration::from_secs(30),
            ended: CancellationToken::new(),
            lost: CancellationToken::new(),
            e2e,
            direct: false,
        }
    }

    /// A fresh pass for one data connection of this session.
    pub(crate) fn pass(&self, purpose: Purpose) -> DataPass {
        let counter = self.passes.fetch_add(1, Ordering::Relaxed);
        self.secret.pass(self.id, counter, purpose)
    }
}
