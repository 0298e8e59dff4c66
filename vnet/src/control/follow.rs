//! One live control session: register the active serves, then follow the
//! route (answers, serve events, stream requests, unserve asks) and our
//! own commands until the link drops, a reconnect is asked for, or the
//! vnet stops. Pings every third of the heartbeat; a route silent for a
//! whole one is gone (cable pulled, process frozen).
//!
//! Each `select!` arm is one method of [`Follow`], which returns `Err`
//! with the reason when the session has to end.
use futures::stream::SplitStream;
use futures::StreamExt;
use proto::codec::ProtoError;
use proto::message::{PeerMsg, Request, Response, RouteMsg, VnetMsg};
use proto::{Refusal, RefusalCode, ServeId};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use super::asks::{PeerNote, StreamAsk, UnserveAsk};
use super::command::Command;
use super::parts::ControlParts;
use super::registrations::{registered, registration};
use super::requests::{InFlight, Requests};
use super::session::Session;
use super::writer::Writer;
use crate::error::{LinkLost, VnetError};
use crate::link::FramedConn;

/// Why a session ended.
pub(crate) enum Ended {
    /// The link failed or the route went silent: reconnect with backoff.
    Lost(LinkLost),
    /// Asked to reconnect (new settings): at once.
    Reconnect,
    /// The vnet is stopping.
    Shutdown,
}

impl From<ProtoError> for Ended {
    fn from(err: ProtoError) -> Self {
        Ended::Lost(LinkLost::Broken(err))
    }
}

impl From<LinkLost> for Ended {
    fn from(why: LinkLost) -> Self {
        Ended::Lost(why)
    }
}

/// Serves one live control connection; returns why it ended.
pub(crate) async fn follow(
    parts: &ControlParts,
    link: FramedConn,
    session: Session,
    commands: &mut mpsc::Receiver<Command>,
) -> Ended {
    let heartbeat = session.heartbeat;
    let (sink, link) = link.split();
    let mut follow = Follow {
        parts,
        link,
        writer: Writer::spawn(sink, heartbeat),
        session,
        requests: Requests::default(),
    };
    if let Err(ended) = follow.register_all() {
        return ended;
    }
    let mut pings = tokio::time::interval_at(Instant::now() + heartbeat / 3, heartbeat / 3);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let silence = tokio::time::sleep(heartbeat);
    tokio::pin!(silence);
    loop {
        let step = tokio::select! {
            _ = parts.shutdown.cancelled() => Err(Ended::Shutdown),
            _ = &mut silence => Err(Ended::Lost(LinkLost::Silent(heartbeat))),
            why = follow.writer.ended() => Err(Ended::Lost(why)),
            _ = pings.tick() => follow.ping(),
            Some(command) = commands.recv() => follow.on_command(command),
            frame = follow.link.next() => {
                if let Some(Ok(_)) = &frame {
                    silence.as_mut().reset(Instant::now() + heartbeat);
                }
                follow.on_frame(frame)
            }
        };
        if let Err(ended) = step {
            return ended;
        }
    }
}

/// The state of one live session.
struct Follow<'a> {
    parts: &'a ControlParts,
    /// What the route sends; what we send goes through `writer`.
    link: SplitStream<FramedConn>,
    writer: Writer,
    session: Session,
    requests: Requests,
}

impl Follow<'_> {
    /// Registers every active serve (the writer sends them in one flush).
    fn register_all(&mut self) -> Result<(), Ended> {
        let keys: Vec<String> = self.parts.model.borrow().serves.keys().cloned().collect();
        for key in keys {
            let Some(body) = registration(&self.parts.model, &key) else {
                continue;
            };
            let id = self.requests.track(InFlight::Register(key, Vec::new()));
            self.send(VnetMsg::Request { id, body })?;
        }
        Ok(())
    }

    fn send(&mut self, msg: VnetMsg) -> Result<(), Ended> {
        Ok(self.writer.send(msg)?)
    }

    fn ping(&mut self) -> Result<(), Ended> {
        let id = self.requests.track(InFlight::Heartbeat);
        self.send(VnetMsg::Request {
            id,
            body: Request::Ping,
        })
    }

    fn on_command(&mut self, command: Command) -> Result<(), Ended> {
        let msg = match command {
            Command::Reconnect => return Err(Ended::Reconnect),
            Command::Request(body, reply) => {
                let id = self.requests.track(InFlight::Reply(reply));
                VnetMsg::Request { id, body }
            }
            Command::Register(key, reply) => match self.register(key, reply) {
                Some(msg) => msg,
                None => return Ok(()),
            },
            Command::Unregister(serve_id) => self.unregister(serve_id),
            Command::Send(msg) => msg,
            Command::SendIn(session, msg) if session == self.session.id => msg,
            Command::SendIn(..) => return Ok(()),
            Command::DirectDown(vnet) => {
                self.parts.group.send_modify(|a| a.drop_kept(vnet));
                return Ok(());
            }
        };
        self.send(msg)
    }

    /// The request registering serve `key`, unless it is registered or
    /// on its way already (then `reply` joins that outcome).
    fn register(
        &mut self,
        key: String,
        reply: Option<oneshot::Sender<Result<ServeId, VnetError>>>,
    ) -> Option<VnetMsg> {
        // Queued while connecting, this serve may already be registered
        // (or on its way) by the connect-time sweep: join that outcome
        // instead of registering twice.
        let registered = self.parts.model.borrow().serve_id(&key);
        if let Some(id) = registered {
            if let Some(reply) = reply {
                let _ = reply.send(Ok(id));
            }
            return None;
        }
        if let Some(waiters) = self.requests.registering(&key) {
            waiters.extend(reply);
            return None;
        }
        let Some(body) = registration(&self.parts.model, &key) else {
            let not_active = VnetError::Invalid("serve is not active".into());
            Command::Register(key, reply).refuse(not_active);
            return None;
        };
        let id = self
            .requests
            .track(InFlight::Register(key, reply.into_iter().collect()));
        Some(VnetMsg::Request { id, body })
    }

    fn unregister(&mut self, serve_id: ServeId) -> VnetMsg {
        let id = self.requests.track(InFlight::Unregister);
        VnetMsg::Request {
            id,
            body: Request::UnregisterServe { serve_id },
        }
    }

    /// The vnet of `serve_id` left the route: whoever pairs with it hears
    /// so before the serve can come back (with a new process, say).
    fn vnet_left(&self, serve_id: ServeId) {
        let Some(peers) = &self.parts.asks.peers else {
            return;
        };
        let vnet = self.parts.group.borrow().get(&serve_id).map(|e| e.vnet_id);
        if let Some(vnet) = vnet {
            if peers.try_send(PeerNote::Left(vnet)).is_err() {
                debug!("a vnet's leaving not passed on: pairing is not keeping up");
            }
        }
    }

    fn on_frame(&mut self, frame: Option<Result<RouteMsg, ProtoError>>) -> Result<(), Ended> {
        let msg = match frame {
            None => return Err(Ended::Lost(LinkLost::Closed)),
            Some(frame) => frame?,
        };
        match msg {
            RouteMsg::Response { id, body } => self.on_response(id, body)?,
            RouteMsg::ServeUp(entry) => {
                debug!(
                    serve = %entry.serve_id,
                    vnet = %entry.vnet_id,
                    name = %proto::text::Escaped(&entry.spec.name),
                    "serve up"
                );
                self.parts.group.send_modify(|a| a.up(entry));
            }
            RouteMsg::ServeDown {
                serve_id,
                withdrawn,
            } => {
                debug!(serve = %serve_id, withdrawn, "serve down");
                if !withdrawn {
                    self.vnet_left(serve_id);
                }
                self.parts
                    .group
                    .send_modify(|a| a.down(serve_id, withdrawn));
            }
            RouteMsg::OpenStream {
                ticket,
                serve_id,
                from,
            } => {
                let session = self.session.clone();
                let ask = StreamAsk {
                    ticket,
                    serve_id,
                    session,
                    from,
                };
                // Never waits: a serving side that is not keeping up
                // leaves the route to time the visitor out.
                if self.parts.asks.streams.try_send(ask).is_err() {
                    debug!("stream request dropped: the serving side is not keeping up");
                }
            }
            RouteMsg::Peer {
                from,
                from_name,
                msg,
            } => {
                match &self.parts.asks.peers {
                    Some(peers) => {
                        let note = PeerNote::Message {
                            from,
                            from_name,
                            msg,
                        };
                        if peers.try_send(note).is_err() {
                            debug!(
                                "a message from another vnet dropped: pairing is not keeping up"
                            );
                        }
                    }
                    // Say so, so the other vnet can log why.
                    None if matches!(msg, PeerMsg::Offer(_)) => {
                        let name = proto::text::Escaped(&from_name);
                        info!(vnet = %from, %name, "a vnet asked to pair end to end; this vnet has no secret=, so it was refused");
                        self.send(VnetMsg::Peer {
                            to: from,
                            msg: PeerMsg::Refused("this vnet has no end-to-end secret".into()),
                        })?
                    }
                    None => {
                        if let PeerMsg::Refused(reason) = msg {
                            let (name, reason) = (
                                proto::text::Escaped(&from_name),
                                proto::text::Escaped(&reason),
                            );
                            warn!(vnet = %from, %name, %reason, "a vnet refuses this vnet's streams");
                        }
                    }
                }
            }
            RouteMsg::Introduce(intro) => match &self.parts.asks.introductions {
                Some(direct) => {
                    if direct.try_send(intro).is_err() {
                        debug!("an introduction dropped: the direct path is not keeping up");
                    }
                }
                None => debug!(vnet = %intro.peer, "an introduction, and no direct path here"),
            },
            RouteMsg::UnserveAsk {
                ask,
                from,
                from_name,
                ip,
                port,
                proof,
            } => {
                let id = ask;
                let ask = UnserveAsk {
                    ask,
                    from,
                    from_name,
                    ip,
                    port,
                    proof,
                };
                if self.parts.asks.unserve.try_send(ask).is_err() {
                    let busy =
                        Refusal::new(RefusalCode::Busy, "too many unserve asks waiting here");
                    self.send(VnetMsg::UnserveAnswer {
                        ask: id,
                        result: Err(busy),
                    })?;
                }
            }
            other => return Err(Ended::Lost(LinkLost::Unexpected(Box::new(other)))),
        }
        Ok(())
    }

    fn on_response(&mut self, id: u32, body: Response) -> Result<(), Ended> {
        match self.requests.answered(id) {
            Some(InFlight::Register(key, waiters)) => {
                if let Some(serve_id) = registered(self.parts, key, body, waiters) {
                    let withdraw = self.unregister(serve_id);
                    self.send(withdraw)?;
                }
            }
            Some(InFlight::Heartbeat) => {}
            Some(InFlight::Unregister) => {
                if let Response::Error(reason) = body {
                    debug!(%reason, "unregister");
                }
            }
            Some(InFlight::Reply(reply)) => {
                let _ = reply.send(Ok(body));
            }
            None => warn!(id, "response to no request"),
        }
        Ok(())
    }
}
