//! What a joined vnet sends on its control connection, and the route's
//! answers: registry requests answered at once, unserve asks forwarded to
//! the vnet asked, and its answers passed back to the asker.
//!
//! All of it is synchronous: the registry and the asks are locked briefly,
//! and anything for another vnet goes on that vnet's bounded queue
//! (`try_send`, never waiting on a slow reader).
use proto::message::{PeerMsg, Request, Response, RouteMsg, VnetMsg};
use proto::text::Escaped;
use proto::validate::Invalid;
use proto::{AskId, Refusal, RefusalCode, ServeId, VnetId};
use std::time::Instant;
use tracing::{debug, info};

use crate::asks::{OpenAsk, MAX_OPEN_PER_VNET};
use crate::registry::direct::CardTaken;
use crate::state::Hub;

/// A message that has no place on a control connection: the vnet is
/// dropped.
#[derive(Debug, thiserror::Error)]
pub enum Violation {
    /// A message that breaks the protocol's limits.
    #[error("invalid message: {0}")]
    Invalid(Invalid),
    /// A message of a handshake or a data connection.
    #[error("unexpected message")]
    Unexpected,
    /// An unserve answer to no ask this vnet was sent (or to one answered
    /// already).
    #[error("an unserve answer to no open ask")]
    ForgedAnswer,
}

/// One joined vnet, as its control session sees it.
pub struct Peer<'a> {
    /// The route's state.
    pub hub: &'a Hub,
    /// The vnet's group.
    pub group: &'a str,
    /// Its name, shown to a vnet it asks for an unserve.
    pub name: &'a str,
    /// Its id in the group.
    pub vnet_id: VnetId,
}

impl Peer<'_> {
    /// Handles one message; returns what to send back, if anything now.
    ///
    /// # Errors
    /// The message has no place on a control connection.
    pub fn handle(&self, msg: VnetMsg) -> Result<Option<RouteMsg>, Violation> {
        if let Err(invalid) = msg.validate() {
            return match msg {
                VnetMsg::Request { id, .. } => {
                    let refusal = Refusal::new(RefusalCode::Protocol, invalid.to_string());
                    Ok(Some(error_response(id, refusal)))
                }
                _ => Err(Violation::Invalid(invalid)),
            };
        }
        match msg {
            VnetMsg::Request {
                id,
                body:
                    Request::Unserve {
                        vnet_id,
                        ip,
                        port,
                        proof,
                    },
            } => {
                // Answered later, when the other vnet decides.
                let asked = self.ask_unserve(id, vnet_id, ip, port, proof);
                Ok(asked.err().map(|refusal| error_response(id, refusal)))
            }
            VnetMsg::Request {
                id,
                body: Request::Introduce { vnet_id },
            } => {
                let body = match self.introduce(vnet_id) {
                    Ok(()) => Response::Done,
                    Err(refusal) => Response::Error(refusal),
                };
                Ok(Some(RouteMsg::Response { id, body }))
            }
            VnetMsg::Request { id, body } => {
                let body = self.answer(body);
                Ok(Some(RouteMsg::Response { id, body }))
            }
            VnetMsg::UnserveAnswer { ask, result } => {
                self.pass_unserve_answer(ask, result)?;
                Ok(None)
            }
            VnetMsg::Peer { to, msg } => Ok(self.pass_to_peer(to, msg)),
            VnetMsg::Direct(card) => {
                debug!(vnet = %self.vnet_id, addrs = ?card.addrs, "direct card");
                match (self.hub.registry()).set_card(self.group, self.vnet_id, card) {
                    CardTaken::Refused => {
                        info!(vnet = %self.vnet_id, "direct card refused: another vnet of the group shows its certificate")
                    }
                    CardTaken::Recorded { left_out: 0 } => {}
                    CardTaken::Recorded { left_out } => {
                        info!(vnet = %self.vnet_id, left_out, "direct card: addresses no peer may be sent to (loopback, multicast, ...) left out")
                    }
                }
                Ok(None)
            }
            _ => Err(Violation::Unexpected),
        }
    }

    /// Answers a request about the registry.
    fn answer(&self, request: Request) -> Response {
        let (hub, group, vnet) = (self.hub, self.group, self.vnet_id);
        debug!(%vnet, ?request, "request");
        match request {
            Request::RegisterServe(spec) if spec.kind != "tcp" => {
                hub.counters.refused(RefusalCode::Unsupported);
                Response::Error(Refusal::new(
                    RefusalCode::Unsupported,
                    format!("type {:?} is not supported; only tcp", spec.kind),
                ))
            }
            Request::RegisterServe(spec) => {
                let name = spec.name.clone();
                let wanted = spec.serve_id;
                let max_serves = hub.config().max_serves_per_vnet;
                let mut registry = hub.registry();
                let registered = registry.register(group, vnet, spec, max_serves);
                if let Ok(serve) = registered {
                    hub.traffic.registered(group, serve);
                }
                drop(registry);
                let name = Escaped(&name);
                match registered {
                    Ok(serve) => {
                        info!(%vnet, %serve, %name, "serve registered");
                        if wanted.is_some_and(|w| w != serve) {
                            info!(%vnet, %serve, %name, "dynamic id was taken; reassigned");
                        }
                        Response::Registered { serve_id: serve }
                    }
                    Err(refusal) => {
                        hub.counters.refused(refusal.code);
                        info!(%vnet, %name, reason = %refusal, "serve refused");
                        Response::Error(refusal)
                    }
                }
            }
            Request::UnregisterServe { serve_id } => {
                let mut registry = hub.registry();
                let unregistered = registry.unregister(group, vnet, serve_id);
                if unregistered.is_ok() {
                    hub.traffic.withdrawn(group, serve_id);
                }
                drop(registry);
                match unregistered {
                    Ok(()) => {
                        info!(%vnet, serve = %serve_id, "serve withdrawn");
                        Response::Done
                    }
                    Err(refusal) => Response::Error(refusal),
                }
            }
            Request::Ping => Response::Pong,
            Request::ListServes => Response::Serves(hub.registry().serves(group)),
            Request::ListVnets => Response::Vnets(hub.registry().vnets(group)),
            Request::Unserve { .. } | Request::Introduce { .. } => {
                Response::Error(Refusal::new(RefusalCode::Protocol, "answered elsewhere"))
            }
        }
    }

    /// Forwards an unserve request to the vnet that has the service, under
    /// an ask id of the route's own (see [`crate::asks`]).
    fn ask_unserve(
        &self,
        request: u32,
        to: VnetId,
        ip: String,
        port: u16,
        proof: Option<proto::e2e::ask::AskProof>,
    ) -> Result<(), Refusal> {
        let (hub, group, from) = (self.hub, self.group, self.vnet_id);
        let (link, to_name) = hub.registry().vnet(group, to).ok_or_else(|| {
            Refusal::new(RefusalCode::NotFound, format!("no vnet {to} in this group"))
        })?;
        let open = OpenAsk {
            group: group.to_string(),
            asker: from,
            request,
            asked: to,
            since: Instant::now(),
        };
        let ask = hub.asks().open(open).ok_or_else(|| {
            Refusal::new(
                RefusalCode::Limit,
                format!("too many unserve asks waiting (at most {MAX_OPEN_PER_VNET})"),
            )
        })?;
        let (to_name, shown_ip) = (Escaped(&to_name), Escaped(&ip));
        info!(%from, %to, %to_name, ip = %shown_ip, port, "unserve asked");
        let msg = RouteMsg::UnserveAsk {
            ask,
            from,
            from_name: self.name.to_string(),
            ip,
            port,
            proof,
        };
        link.aside(msg).map_err(|_| {
            hub.asks().answered(ask, group, to);
            Refusal::new(RefusalCode::Busy, format!("vnet {to} is not answering"))
        })
    }

    /// Introduces this vnet and `other` to each other for a direct link:
    /// both are sent the other's addresses and certificate.
    fn introduce(&self, other: VnetId) -> Result<(), Refusal> {
        let (group, asker) = (self.group, self.vnet_id);
        let now = Instant::now();
        let pair = self.hub.registry().introduce(group, (asker, other), now)?;
        for (link, intro) in pair {
            debug!(to = %intro.peer, addrs = ?intro.addrs, "introduction");
            link.aside(RouteMsg::Introduce(intro)).map_err(|_| {
                Refusal::new(RefusalCode::Busy, format!("vnet {other} is not answering"))
            })?;
        }
        info!(%asker, %other, "vnets introduced for a direct link");
        Ok(())
    }

    /// Passes a message on to another vnet of the group; if it cannot
    /// take it, the sender is told why, as if from that vnet. The route
    /// reads none of it: the vnets seal what matters.
    fn pass_to_peer(&self, to: VnetId, msg: PeerMsg) -> Option<RouteMsg> {
        let refused = |why: String| RouteMsg::Peer {
            from: to,
            from_name: String::new(),
            msg: PeerMsg::Refused(why),
        };
        let link = match self.hub.registry().peer(self.group, to) {
            Ok(link) => link,
            Err(true) => {
                let why =
                    format!("vnet {to} does not support end-to-end encryption (an older version)");
                return Some(refused(why));
            }
            Err(false) => return Some(refused(format!("no vnet {to} in this group"))),
        };
        let msg = RouteMsg::Peer {
            from: self.vnet_id,
            from_name: self.name.to_string(),
            msg,
        };
        link.aside(msg)
            .err()
            .map(|_| refused(format!("vnet {to} is not answering")))
    }

    /// Passes an answer on to the vnet that asked, if this vnet was really
    /// asked and the ask is still open.
    ///
    /// # Errors
    /// It was not: the vnet answers what nobody asked it.
    fn pass_unserve_answer(
        &self,
        ask: AskId,
        result: Result<ServeId, Refusal>,
    ) -> Result<(), Violation> {
        let (hub, group, from) = (self.hub, self.group, self.vnet_id);
        let open = hub
            .asks()
            .answered(ask, group, from)
            .ok_or(Violation::ForgedAnswer)?;
        let to = open.asker;
        let Some((link, _)) = hub.registry().vnet(group, to) else {
            debug!(%from, %to, "unserve answer for a vnet that left");
            return Ok(());
        };
        info!(%from, %to, result = ?result.as_ref().map_err(|r| r.code), "unserve answered");
        let body = match result {
            Ok(serve_id) => Response::Unserved { serve_id },
            Err(refusal) => Response::Error(refusal),
        };
        let answer = RouteMsg::Response {
            id: open.request,
            body,
        };
        if link.aside(answer).is_err() {
            debug!(%from, %to, "unserve answer dropped: the asker is not keeping up");
        }
        Ok(())
    }
}

fn error_response(id: u32, refusal: Refusal) -> RouteMsg {
    RouteMsg::Response {
        id,
        body: Response::Error(refusal),
    }
}
