//! End to end with the other vnets of the group (`[vnet] secret=`): the
//! pair keys this vnet agreed on, and each stream's keys from them.
//!
//! A pair key is agreed the first time a use needs a serve of another
//! vnet, by the exchange of `proto::e2e::pairing`, relayed by the route
//! as `Peer` messages; the first stream waits for it (bounded), later
//! ones start at once. When both start at the same moment, the vnet with
//! the lower id keeps its offer and the other answers it. Agreed keys
//! outlive a reconnect to the route (the peers kept theirs, and a key is
//! bound to both names, not to ids); pairings under way do not. A peer
//! that left the route may come back as a new process without them, so
//! its key is forgotten when it leaves; one that refuses a key it lost
//! says so, and the key is forgotten then.
//!
//! A vnet with a secret seals every stream to and from the group's vnets
//! and refuses what it cannot pair with (no secret, another secret, an
//! older vnet), logging why with the peer's name.
mod asks;
pub mod identity;
pub(crate) mod link;
mod messages;
mod streams;

use crate::control::asks::PeerNote;

use proto::e2e::pairing::{Initiator, PairId, PairKey, Party, PublicKey, Responder};
use proto::e2e::{Cipher, GroupSecret};
use proto::message::{PeerMsg, VnetMsg};
use proto::pass::ReplayWindow;
use proto::text::Escaped;
use proto::{SessionId, VnetId};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::control::command::ControlSender;
use crate::control::session::Session;
use crate::current::Current;

/// How long a stream waits for its pair's key to be agreed.
const PAIR_TIMEOUT: Duration = Duration::from_secs(5);
/// How long after a failed pairing streams to that vnet are refused at
/// once, before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// Most vnets this one keeps pairing state for: offers from more (which
/// only a misbehaving route would relay) are refused.
pub(crate) const MAX_PEERS: usize = 1024;

/// Answers the other vnets' pairing messages as they come.
pub(crate) async fn run(e2e: E2e, mut notes: tokio::sync::mpsc::Receiver<PeerNote>) {
    while let Some(note) = notes.recv().await {
        match note {
            PeerNote::Message {
                from,
                from_name,
                msg,
            } => {
                if let Some(reply) = e2e.on_message(from, from_name, msg) {
                    e2e.0.control.send(reply).await;
                }
            }
            PeerNote::Left(vnet) => e2e.forget(vnet),
        }
    }
}

/// What this vnet knows of pairing with the group's vnets. Cheap to clone.
#[derive(Clone)]
pub(crate) struct E2e(Arc<Inner>);

struct Inner {
    secret: GroupSecret,
    key: PublicKey,
    cipher: Cipher,
    current: Current,
    control: ControlSender,
    sessions: watch::Receiver<Option<Session>>,
    state: Mutex<State>,
    /// Told of every pairing that succeeds or fails.
    paired: tokio::sync::Notify,
}

type Waiter = oneshot::Sender<Result<Arc<Paired>, String>>;

/// Why a stream or an ask sealed with a key this vnet does not hold is
/// refused; the peer forgets the key on hearing it.
pub(crate) const UNKNOWN_KEY: &str = "its pair key is not one this vnet holds";

/// Pairs agreed, and pairings under way in this session.
#[derive(Default)]
struct State {
    session: Option<SessionId>,
    peers: HashMap<VnetId, Pairing>,
    by_id: HashMap<PairId, Arc<Paired>>,
}

/// Where pairing with one vnet stands.
enum Pairing {
    /// We offered; streams wait in `waiters`.
    Offered {
        initiator: Box<Initiator>,
        name: String,
        waiters: Vec<Waiter>,
    },
    /// We answered its offer.
    Answered {
        responder: Responder,
        name: String,
        waiters: Vec<Waiter>,
    },
    Paired(Arc<Paired>),
    Failed {
        reason: String,
        at: Instant,
    },
}

/// An agreed pair key and its streams.
pub(crate) struct Paired {
    key: PairKey,
    /// The peer's name, as it paired.
    pub name: String,
    /// The number of our next stream to it.
    next: AtomicU64,
    /// Its streams' numbers seen (a replayed start is refused).
    seen: Mutex<ReplayWindow>,
    /// The number of our next unserve ask to it.
    asks_sent: AtomicU64,
    /// Its unserve asks' numbers seen.
    asks_seen: Mutex<ReplayWindow>,
}

impl E2e {
    pub(crate) fn new(
        secret: GroupSecret,
        key: PublicKey,
        current: Current,
        control: ControlSender,
        sessions: watch::Receiver<Option<Session>>,
    ) -> Self {
        Self(Arc::new(Inner {
            secret,
            key,
            cipher: Cipher::preferred(),
            current,
            control,
            sessions,
            state: Mutex::default(),
            paired: tokio::sync::Notify::new(),
        }))
    }

    /// The state; if the session changed since, only agreed keys are
    /// kept (pairings under way were relayed by the old session). Ids are
    /// the lowest free, so a key kept for a peer that left is replaced
    /// when its id is taken again: entries stay about as many as the
    /// group's vnets.
    fn state(&self) -> MutexGuard<'_, State> {
        let session = self.0.sessions.borrow().as_ref().map(|s| s.id);
        let mut state = self.0.state.lock().expect("e2e state poisoned");
        if state.session != session {
            state.session = session;
            state
                .peers
                .retain(|_, pairing| matches!(pairing, Pairing::Paired(_)));
        }
        state
    }

    /// Forgets the key agreed with `peer` (it says it has lost it): the
    /// next stream pairs again.
    pub(crate) fn forget(&self, peer: VnetId) {
        let mut state = self.state();
        if let Some(Pairing::Paired(old)) = state.peers.remove(&peer) {
            state.by_id.remove(&old.key.id);
            drop(state);
            let name = Escaped(&old.name);
            info!(vnet = %peer, %name, "end to end with this vnet: its key is forgotten; the next stream pairs again");
        }
    }

    fn my_id(&self) -> Option<VnetId> {
        self.0.sessions.borrow().as_ref().map(|s| s.vnet_id)
    }

    /// (name, group) as in force.
    fn me(&self) -> (String, String) {
        self.0
            .current
            .read(|c| (c.options.name.clone(), c.options.group.clone()))
    }

    async fn paired(&self, peer: VnetId, name: &str) -> Result<Arc<Paired>, String> {
        if self.my_id() == Some(peer) {
            return Ok(self.paired_with_self(peer, name));
        }
        let (tx, rx) = oneshot::channel();
        let offer = {
            let mut state = self.state();
            match state.peers.get_mut(&peer) {
                Some(Pairing::Paired(paired)) if paired.name == name => return Ok(paired.clone()),
                Some(Pairing::Failed { reason, at }) if at.elapsed() < RETRY_AFTER => {
                    return Err(reason.clone())
                }
                Some(Pairing::Offered { waiters, .. } | Pairing::Answered { waiters, .. }) => {
                    waiters.push(tx);
                    None
                }
                _ => {
                    let (my_name, group) = self.me();
                    let me = Party {
                        name: &my_name,
                        key: self.0.key,
                        cipher: self.0.cipher,
                    };
                    let (initiator, offer) = Initiator::start(&self.0.secret, &group, me, name);
                    let pairing = Pairing::Offered {
                        initiator: Box::new(initiator),
                        name: name.to_string(),
                        waiters: vec![tx],
                    };
                    state.peers.insert(peer, pairing);
                    Some(offer)
                }
            }
        };
        if let Some(offer) = offer {
            let msg = PeerMsg::Offer(offer);
            self.0.control.send(VnetMsg::Peer { to: peer, msg }).await;
        }
        match tokio::time::timeout(PAIR_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the session with the route ended while pairing".into()),
            Err(_) => {
                let reason = format!("vnet {peer} did not answer the pairing in {PAIR_TIMEOUT:?}");
                self.fail(peer, name, &reason);
                Err(reason)
            }
        }
    }

    /// A use of this vnet's own serve: both halves of the exchange here.
    fn paired_with_self(&self, me: VnetId, name: &str) -> Arc<Paired> {
        if let Some(Pairing::Paired(paired)) = self.state().peers.get(&me) {
            return paired.clone();
        }
        let (my_name, group) = self.me();
        let party = Party {
            name: &my_name,
            key: self.0.key,
            cipher: self.0.cipher,
        };
        let secret = &self.0.secret;
        let (initiator, offer) = Initiator::start(secret, &group, party, &my_name);
        let (responder, answer) = Responder::answer(secret, &group, party, &my_name, &offer)
            .expect("our own offer is well formed");
        let (confirm, key) = initiator
            .finish(&answer)
            .expect("the same secret on both halves");
        responder
            .check(&confirm)
            .expect("the same secret on both halves");
        self.paired_with(me, name.to_string(), key, Vec::new())
    }

    /// Marks pairing with `peer` failed, telling whoever waits.
    fn fail(&self, peer: VnetId, name: &str, reason: &str) {
        let mut state = self.state();
        let failed = Pairing::Failed {
            reason: reason.to_string(),
            at: Instant::now(),
        };
        if let Some(Pairing::Offered { waiters, .. } | Pairing::Answered { waiters, .. }) =
            state.peers.insert(peer, failed)
        {
            for waiter in waiters {
                let _ = waiter.send(Err(reason.to_string()));
            }
        }
        drop(state);
        self.0.paired.notify_waiters();
        let name = Escaped(name);
        warn!(vnet = %peer, %name, reason = %Escaped(reason), "no end-to-end pairing with this vnet; its streams are refused");
    }

    /// Keeps a pair key, telling whoever waits.
    fn paired_with(
        &self,
        peer: VnetId,
        name: String,
        key: PairKey,
        waiters: Vec<Waiter>,
    ) -> Arc<Paired> {
        let id = key.id;
        let fingerprint = proto::hex::encode(&key.peer_key.0[..8]);
        let cipher = key.cipher;
        let paired = Arc::new(Paired {
            key,
            name,
            next: AtomicU64::new(0),
            seen: Mutex::default(),
            asks_sent: AtomicU64::new(0),
            asks_seen: Mutex::default(),
        });
        let mut state = self.state();
        state.by_id.insert(id, paired.clone());
        // A pair key agreed again replaces the old one: its streams end.
        if let Some(Pairing::Paired(old)) =
            state.peers.insert(peer, Pairing::Paired(paired.clone()))
        {
            state.by_id.remove(&old.key.id);
        }
        drop(state);
        for waiter in waiters {
            let _ = waiter.send(Ok(paired.clone()));
        }
        self.0.paired.notify_waiters();
        let name = Escaped(&paired.name);
        info!(vnet = %peer, %name, ?cipher, peer_key = %fingerprint, "end to end with this vnet: paired");
        paired
    }

    /// Tells vnet `peer` why one of its streams was refused.
    pub(crate) async fn tell_refused(&self, peer: VnetId, reason: &str) {
        let msg = PeerMsg::Refused(reason.to_string());
        self.0.control.send(VnetMsg::Peer { to: peer, msg }).await;
    }

    /// How end to end stands with vnet `peer`, for `show vnets`: `yes`
    /// (paired), `no: why` (pairing failed), `-` (not tried yet).
    pub(crate) fn standing(&self, peer: VnetId) -> String {
        match self.state().peers.get(&peer) {
            Some(Pairing::Paired(_)) => "yes".into(),
            Some(Pairing::Failed { reason, .. }) => format!("no: {reason}"),
            Some(Pairing::Offered { .. } | Pairing::Answered { .. }) | None => "-".into(),
        }
    }

    /// Whether a stream from vnet `peer` can be sealed: it paired with us,
    /// or is pairing (a visitor pairs before its first stream).
    pub(crate) fn may_seal_from(&self, peer: VnetId) -> bool {
        matches!(
            self.state().peers.get(&peer),
            Some(Pairing::Paired(_) | Pairing::Offered { .. } | Pairing::Answered { .. })
        )
    }

    /// The pair key `id` names. The visitor starts streams once it has
    /// the key, and its confirmation (on the control connection) may come
    /// after the stream's first bytes (on a data connection): while a
    /// pairing we answered is unconfirmed, wait for it, bounded.
    async fn pair_of(&self, id: PairId) -> Result<Arc<Paired>, String> {
        let deadline = tokio::time::Instant::now() + PAIR_TIMEOUT;
        loop {
            let notified = self.0.paired.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.state();
                if let Some(paired) = state.by_id.get(&id) {
                    return Ok(paired.clone());
                }
                let answering = state
                    .peers
                    .values()
                    .any(|p| matches!(p, Pairing::Answered { .. }));
                if !answering {
                    return Err(UNKNOWN_KEY.into());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err("its pair key was not confirmed in time".into());
            }
        }
    }
}
