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
                if state.peers.len() >= super::MAX_PEERS && !state.peers.contains_key(&from) {
                    let why = format!("this vnet pairs with at most {} vnets", super::MAX_PEERS);
                    return reply(PeerMsg::Refused(why));
                }
                let waiters = match state.peers.remove(&from) {
                    // Both offered: the lower id's offer stands.
                    Some(ours @ Pairing::Offered { .. }) if self.my_id() < Some(from) => {
                        state.peers.insert(from, ours);
                        return None;
                    }
                    Some(Pairing::Offered { waiters, .. } | Pairing::Answered { waiters, .. }) => {
                        waiters
                    }
                    // It pairs again (it restarted, say): the old key goes.
                    Some(Pairing::Paired(old)) => {
                        state.by_id.remove(&old.key.id);
                        Vec::new()
                    }
                    Some(Pairing::Failed { .. }) | None => Vec::new(),
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
                    // About a stream, after pairing: say so, and forget a
                    // key the peer no longer holds.
                    None => {
                        let (name, why) = (Escaped(&name), Escaped(&reason));
                        warn!(vnet = %from, %name, reason = %why, "a vnet refused one of this vnet's streams");
                        if reason.contains(super::UNKNOWN_KEY) {
                            self.forget(from);
                        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VnetConfig;
    use crate::control::command::ControlSender;
    use crate::control::session::Session;
    use crate::current::{Current, InForce};
    use proto::e2e::pairing::{Initiator, Party, PublicKey};
    use proto::e2e::{Cipher, GroupSecret};

    const SECRET: &str = "a secret of the group";

    /// This vnet as vnet 1 of a session, with the secret.
    fn e2e() -> E2e {
        // The receiver keeps the last value after the sender is gone.
        e2e_and_sessions().0
    }

    /// [`e2e`], and the sessions it follows.
    fn e2e_and_sessions() -> (E2e, tokio::sync::watch::Sender<Option<Session>>) {
        let text = format!("[route]\nip=127.0.0.1\nport=1\n[vnet]\nname=me\nsecret={SECRET}\n");
        let config = VnetConfig::parse("t.ini", &text).unwrap();
        let session = Session::for_test(VnetId(1), true);
        let (sender, sessions) = tokio::sync::watch::channel(Some(session));
        let (control, _commands) = ControlSender::channel();
        let e2e = E2e::new(
            GroupSecret::new(SECRET),
            PublicKey([1; 32]),
            Current::new(InForce::new(&config)),
            control,
            sessions,
        );
        (e2e, sender)
    }

    /// Vnet `name`'s offer to "me".
    fn offer(name: &str) -> (Initiator, proto::e2e::pairing::Offer) {
        let party = Party {
            name,
            key: PublicKey([2; 32]),
            cipher: Cipher::preferred(),
        };
        Initiator::start(&GroupSecret::new(SECRET), "default", party, "me")
    }

    /// Pairs "other" (vnet `id`) with "me" through `on_message`.
    fn pair(e2e: &E2e, id: u16) {
        let (initiator, offer) = offer("other");
        let Some(VnetMsg::Peer {
            msg: PeerMsg::Answer(answer),
            ..
        }) = e2e.on_message(VnetId(id), "other".into(), PeerMsg::Offer(offer))
        else {
            panic!("no answer to a good offer");
        };
        let (confirm, _) = initiator.finish(&answer).unwrap();
        assert!(e2e
            .on_message(VnetId(id), "other".into(), PeerMsg::Confirm(confirm))
            .is_none());
        assert_eq!(e2e.standing(VnetId(id)), "yes");
    }

    #[test]
    fn pairing_again_replaces_the_old_key() {
        let e2e = e2e();
        pair(&e2e, 2);
        pair(&e2e, 2);
        pair(&e2e, 3);
        assert_eq!(e2e.state().by_id.len(), 2, "one key per vnet");
    }

    #[test]
    fn offers_from_more_vnets_than_the_bound_are_refused() {
        let e2e = e2e();
        let (_, one_offer) = offer("other");
        for id in 2..(2 + super::super::MAX_PEERS as u16) {
            let msg = PeerMsg::Offer(one_offer.clone());
            let reply = e2e.on_message(VnetId(id), "other".into(), msg);
            assert!(
                matches!(
                    reply,
                    Some(VnetMsg::Peer {
                        msg: PeerMsg::Answer(_),
                        ..
                    })
                ),
                "offer {id} not answered"
            );
        }
        let msg = PeerMsg::Offer(one_offer);
        let reply = e2e.on_message(VnetId(5000), "other".into(), msg);
        assert!(
            matches!(&reply, Some(VnetMsg::Peer { msg: PeerMsg::Refused(why), .. }) if why.contains("at most")),
            "{reply:?}"
        );
    }

    #[test]
    fn agreed_keys_outlive_a_reconnect_pairings_under_way_do_not() {
        let (e2e, sessions) = e2e_and_sessions();
        pair(&e2e, 2);
        let (_, offer) = offer("third");
        e2e.on_message(VnetId(3), "third".into(), PeerMsg::Offer(offer));
        assert_eq!(e2e.state().peers.len(), 2);
        let mut next = Session::for_test(VnetId(1), true);
        next.id = proto::SessionId(2);
        sessions.send_replace(Some(next));
        assert_eq!(e2e.standing(VnetId(2)), "yes", "the agreed key went");
        let state = e2e.state();
        assert_eq!((state.peers.len(), state.by_id.len()), (1, 1));
    }

    #[test]
    fn a_peer_that_lost_our_key_makes_us_forget_it() {
        let e2e = e2e();
        pair(&e2e, 2);
        let other = PeerMsg::Refused("its stream to serve 700 was refused: a replay".into());
        e2e.on_message(VnetId(2), "other".into(), other);
        assert_eq!(e2e.standing(VnetId(2)), "yes", "forgot on another refusal");
        let lost = format!(
            "its stream to serve 700 was refused: {}",
            super::super::UNKNOWN_KEY
        );
        e2e.on_message(VnetId(2), "other".into(), PeerMsg::Refused(lost));
        assert_ne!(e2e.standing(VnetId(2)), "yes");
        assert!(e2e.state().by_id.is_empty());
    }
}
