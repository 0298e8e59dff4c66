//! Where the direct link with each vnet stands: pure state, no I/O, kept
//! under one lock briefly.
//!
//! Vnet ids are the route's: after a reconnect (or a route restart) an
//! id may name another vnet. So links are kept by
//! the certificate at their other end, and the ids that lead to them are
//! forgotten when a new session starts; a link still up is taken again
//! without an attempt when the route introduces its vnet anew.
use proto::direct::Fingerprint;
use proto::{SessionId, VnetId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lane::LanePool;

/// The first wait after a failed attempt; it doubles up to [`BACKOFF_MAX`].
pub(crate) const BACKOFF_MIN: Duration = Duration::from_secs(5);
/// The longest wait between attempts for one pair.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How long asking the route for an introduction may stay unanswered.
const ASK_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the link with one vnet stands; `failures` counts the attempts
/// that failed in a row before this one.
enum Peer {
    /// We asked the route to introduce us.
    Asking { since: Instant, failures: u32 },
    /// Introduced; an attempt runs until `done` (a link, or given up).
    Trying {
        done: CancellationToken,
        failures: u32,
    },
    /// The link to the vnet with this certificate is up.
    Up { cert: Fingerprint },
    /// No link; no attempt before `until`.
    Waiting { until: Instant, failures: u32 },
}

impl Peer {
    fn failures(&self) -> u32 {
        match self {
            Peer::Asking { failures, .. }
            | Peer::Trying { failures, .. }
            | Peer::Waiting { failures, .. } => *failures,
            Peer::Up { .. } => 0,
        }
    }
}

/// A link that is up: the QUIC connection, and the other end's TCP lane
/// if it offered one.
#[derive(Clone)]
pub(crate) struct Link {
    pub conn: quinn::Connection,
    pub lane: Option<Arc<LanePool>>,
}

/// What a stream to a vnet finds.
pub(crate) enum Lookup {
    /// A link is up.
    Up(Link),
    /// None; ask the route to introduce us (now marked as asked).
    Ask,
    /// None, and an attempt is under way or waits out its backoff.
    Relay,
}

/// What an introduction leads to.
pub(crate) enum Introduced {
    /// A link to that certificate is up already: taken for the vnet.
    Adopted(quinn::Connection),
    /// An attempt, which ends when this token is cancelled.
    Attempt(CancellationToken),
}

/// Every vnet's link state, and the links up by certificate.
#[derive(Default)]
pub(crate) struct Links {
    session: Option<SessionId>,
    peers: HashMap<VnetId, Peer>,
    up: HashMap<Fingerprint, Link>,
}

impl Links {
    /// Forgets the ids of an earlier session when `session` is a new one
    /// (attempts under way end); links stay up. `true` if it was new.
    pub(crate) fn on_session(&mut self, session: Option<SessionId>) -> bool {
        if session.is_none() || session == self.session {
            return false;
        }
        self.session = session;
        for (_, peer) in self.peers.drain() {
            if let Peer::Trying { done, .. } = peer {
                done.cancel();
            }
        }
        true
    }

    /// The link to `peer`, or whether to ask for one (never when the
    /// route does not `introduce`).
    pub(crate) fn lookup(&mut self, peer: VnetId, now: Instant, introduce: bool) -> Lookup {
        match self.peers.get(&peer) {
            Some(Peer::Up { cert }) => {
                if let Some(link) = self.up.get(cert) {
                    return Lookup::Up(link.clone());
                }
            }
            Some(Peer::Trying { .. }) => return Lookup::Relay,
            Some(Peer::Asking { since, .. }) if now - *since < ASK_TIMEOUT => return Lookup::Relay,
            Some(Peer::Waiting { until, .. }) if now < *until => return Lookup::Relay,
            _ => {}
        }
        if !introduce {
            return Lookup::Relay;
        }
        let failures = self.failures(peer);
        self.peers.insert(
            peer,
            Peer::Asking {
                since: now,
                failures,
            },
        );
        Lookup::Ask
    }

    /// The route introduced `peer`, whose certificate is `cert`.
    pub(crate) fn introduced(&mut self, peer: VnetId, cert: Fingerprint) -> Introduced {
        if let Some(link) = self
            .up
            .get(&cert)
            .filter(|l| l.conn.close_reason().is_none())
        {
            let link = link.conn.clone();
            self.set(peer, Peer::Up { cert });
            return Introduced::Adopted(link);
        }
        let done = CancellationToken::new();
        let failures = self.failures(peer);
        self.set(
            peer,
            Peer::Trying {
                done: done.clone(),
                failures,
            },
        );
        Introduced::Attempt(done)
    }

    /// A link to `peer` (certificate `cert`) is up; an older link to the
    /// same certificate, if any, is returned to be closed.
    pub(crate) fn up(&mut self, peer: VnetId, cert: Fingerprint, link: Link) -> Option<Link> {
        self.set(peer, Peer::Up { cert });
        let id = link.conn.stable_id();
        self.up
            .insert(cert, link)
            .filter(|old| old.conn.stable_id() != id)
    }

    /// `link` (to `cert`) closed: the vnets that used it, now waiting a
    /// little before the next attempt. Nothing if a newer link replaced it.
    pub(crate) fn down(&mut self, cert: Fingerprint, link: &quinn::Connection) -> Vec<VnetId> {
        let current = self.up.get(&cert).map(|l| l.conn.stable_id()) == Some(link.stable_id());
        if !current {
            return Vec::new();
        }
        self.up.remove(&cert);
        let until = Instant::now() + BACKOFF_MIN;
        let gone = self.peers_on(cert);
        for id in &gone {
            self.peers.insert(*id, Peer::Waiting { until, failures: 0 });
        }
        gone
    }

    /// An attempt for `peer` failed: how long until the next, which grows
    /// with each failure in a row. `None` if a link is up meanwhile.
    pub(crate) fn failed(&mut self, peer: VnetId, now: Instant) -> Option<Duration> {
        if let Some(Peer::Up { .. }) = self.peers.get(&peer) {
            return None;
        }
        let failures = self.failures(peer) + 1;
        let wait = backoff(failures);
        let until = now + wait;
        self.peers.insert(peer, Peer::Waiting { until, failures });
        Some(wait)
    }

    /// The vnets whose link is the one to `cert`.
    pub(crate) fn peers_on(&self, cert: Fingerprint) -> Vec<VnetId> {
        self.peers
            .iter()
            .filter(|(_, p)| matches!(p, Peer::Up { cert: c } if *c == cert))
            .map(|(id, _)| *id)
            .collect()
    }

    fn failures(&self, peer: VnetId) -> u32 {
        self.peers.get(&peer).map_or(0, Peer::failures)
    }

    fn set(&mut self, peer: VnetId, state: Peer) {
        if let Some(Peer::Trying { done, .. }) = self.peers.insert(peer, state) {
            done.cancel();
        }
    }
}

/// The wait after `failures` failed attempts in a row.
fn backoff(failures: u32) -> Duration {
    let doubled = BACKOFF_MIN.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_between_attempts_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(7), Duration::from_secs(300));
        assert_eq!(backoff(40), Duration::from_secs(300));
    }

    #[test]
    fn a_vnet_is_asked_for_once_then_waits_out_each_failure() {
        let mut links = Links::default();
        let (peer, now) = (VnetId(2), Instant::now());
        assert!(matches!(links.lookup(peer, now, true), Lookup::Ask));
        assert!(matches!(links.lookup(peer, now, true), Lookup::Relay));
        assert_eq!(links.failed(peer, now), Some(BACKOFF_MIN));
        let later = now + BACKOFF_MIN - Duration::from_millis(1);
        assert!(matches!(links.lookup(peer, later, true), Lookup::Relay));
        assert!(matches!(
            links.lookup(peer, now + BACKOFF_MIN, true),
            Lookup::Ask
        ));
        assert_eq!(links.failed(peer, now), Some(2 * BACKOFF_MIN));
        // An ask the route never answers is asked again.
        let mut links = Links::default();
        assert!(matches!(links.lookup(peer, now, true), Lookup::Ask));
        assert!(matches!(
            links.lookup(peer, now + ASK_TIMEOUT, true),
            Lookup::Ask
        ));
    }

    #[test]
    fn a_new_session_forgets_ids_and_ends_attempts() {
        let mut links = Links::default();
        assert!(links.on_session(Some(SessionId(1))));
        let Introduced::Attempt(done) = links.introduced(VnetId(2), Fingerprint([1; 32])) else {
            panic!("no link yet, so an attempt");
        };
        assert!(!links.on_session(Some(SessionId(1))));
        assert!(
            !links.on_session(None),
            "the route away is not a new session"
        );
        assert!(!done.is_cancelled());
        assert!(links.on_session(Some(SessionId(2))));
        assert!(done.is_cancelled());
        assert!(matches!(
            links.lookup(VnetId(2), Instant::now(), true),
            Lookup::Ask
        ));
        let mut older_route = Links::default();
        assert!(
            matches!(
                older_route.lookup(VnetId(2), Instant::now(), false),
                Lookup::Relay
            ),
            "a route that does not introduce is never asked"
        );
    }
}
