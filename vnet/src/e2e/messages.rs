//! The other vnets' pairing messages: an offer answered (or, when both
//! offered at once, the lower id's offer kept), an answer checked and
//! confirmed, a confirmation checked, a refusal logged.
use proto::e2e::pairing::{PairError, Party, Responder};
use proto::message::{PeerMsg, VnetMsg};
use proto::text::Escaped;
use proto::VnetId;
use tracing::warn;

use super::{E2e, Pairing, Waiter};

impl E2e {
    /// Handles a message from vnet `from` (named `name`); returns the
    /// reply to send, if any.
    pub(crate) fn on_message(&self, from: VnetId, name: String, msg: PeerMsg) -> Option<VnetMsg> {
        let reply = |msg| Some(VnetMsg::Peer { to: from, msg });
        match msg {
            PeerMsg::Offer(offer) => {
                let mut state = self.state();
                let waiters = match state.peers.remove(&from) {
                    // Both offered: the lower id's offer stands.
                    Some(ours @ Pairing::Offered { .. }) if self.my_id() < Some(from) => {
                        state.peers.insert(from, ours);
                        return None;
                    }
                    Some(Pairing::Offered { waiters, .. } | Pairing::Answered { waiters, .. }) => {
                        waiters
                    }
                    _ => Vec::new(),
                };
                let (my_name, group) = self.me();
                let me = Party {
                    name: &my_name,
                    key: self.0.key,
                    cipher: self.0.cipher,
                };
                match Responder::answer(&self.0.secret, &group, me, &name, &offer) {
                    Ok((responder, answer)) => {
                        let answered = Pairing::Answered {
                            responder,
                            name,
                            waiters,
                        };
                        state.peers.insert(from, answered);
                        reply(PeerMsg::Answer(answer))
                    }
                    Err(err) => {
                        drop(state);
                        self.fail(from, &name, &err.to_string());
                        reply(PeerMsg::Refused(err.to_string()))
                    }
                }
            }
            PeerMsg::Answer(answer) => {
                let Some(Pairing::Offered {
                    initiator,
                    name,
                    waiters,
                }) = self.state().peers.remove(&from)
                else {
                    return None;
                };
                match initiator.finish(&answer) {
                    Ok((confirm, key)) => {
                        self.paired_with(from, name, key, waiters);
                        reply(PeerMsg::Confirm(confirm))
                    }
                    Err(err) => self.refuse(from, &name, err, waiters),
                }
            }
            PeerMsg::Confirm(confirm) => {
                let Some(Pairing::Answered {
                    responder,
                    name,
                    waiters,
                }) = self.state().peers.remove(&from)
                else {
                    return None;
                };
                match responder.check(&confirm) {
                    Ok(key) => {
                        self.paired_with(from, name, key, waiters);
                        None
                    }
                    Err(err) => self.refuse(from, &name, err, waiters),
                }
            }
            PeerMsg::Refused(reason) => {
                let known = match self.state().peers.get(&from) {
                    Some(Pairing::Offered { name, .. } | Pairing::Answered { name, .. }) => {
                        Some(name.clone())
                    }
                    _ => None,
                };
                match known {
                    Some(known) => self.fail(from, &known, &format!("it says: {reason}")),
                    // About a stream, after pairing: say so.
                    None => {
                        let (name, reason) = (Escaped(&name), Escaped(&reason));
                        warn!(vnet = %from, %name, %reason, "a vnet refused one of this vnet's streams");
                    }
                }
                None
            }
        }
    }

    /// A pairing that failed its check: logged, waiters told, and the
    /// peer told too.
    fn refuse(
        &self,
        from: VnetId,
        name: &str,
        err: PairError,
        waiters: Vec<Waiter>,
    ) -> Option<VnetMsg> {
        for waiter in waiters {
            let _ = waiter.send(Err(err.to_string()));
        }
        self.fail(from, name, &err.to_string());
        Some(VnetMsg::Peer {
            to: from,
            msg: PeerMsg::Refused(err.to_string()),
        })
    }
}
