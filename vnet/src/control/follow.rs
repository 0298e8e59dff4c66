//! One live control session: register the active serves, then follow the
//! route (answers, serve events, stream requests, unserve asks) and our
//! own commands until the link drops, a reconnect is asked for, or the
//! vnet stops. Pings every third of the heartbeat; a route silent for a
//! whole one is gone (cable pulled, process frozen).
//!
//! Each `select!` arm is one method of [`Follow`], which returns `Err`
//! with the reason when the session has to end.
use futures::{SinkExt, StreamExt};
use proto::codec::ProtoError;
use proto::message::{Request, Response, RouteMsg, VnetMsg};
use proto::ServeId;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, warn};

use super::asks::{StreamAsk, UnserveAsk};
use super::command::Command;
use super::parts::ControlParts;
use super::registrations::{registered, registration};
use super::requests::{InFlight, Requests};
use super::session::Session;
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

/// Serves one live control connection; returns why it ended.
pub(crate) async fn follow(
    parts: &ControlParts,
    link: FramedConn,
    session: Session,
    commands: &mut mpsc::Receiver<Command>,
) -> Ended {
    let heartbeat = session.heartbeat;
    let mut follow = Follow {
        parts,
        link,
        session,
        requests: Requests::default(),
    };
    if let Err(ended) = follow.register_all().await {
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
            _ = pings.tick() => follow.ping().await,
            Some(command) = commands.recv() => follow.on_command(command).await,
            frame = follow.link.next() => {
                if let Some(Ok(_)) = &frame {
                    silence.as_mut().reset(Instant::now() + heartbeat);
                }
                follow.on_frame(frame).await
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
    link: FramedConn,
    session: Session,
    requests: Requests,
}

impl Follow<'_> {
    /// Registers every active serve, in one flush.
    async fn register_all(&mut self) -> Result<(), Ended> {
        let keys: Vec<String> = self.parts.model.borrow().serves.keys().cloned().collect();
        for key in keys {
            let Some(body) = registration(&self.parts.model, &key) else {
                continue;
            };
            let id = self.requests.track(InFlight::Register(key, Vec::new()));
            self.link.feed(VnetMsg::Request { id, body }).await?;
        }
        self.link.flush().await?;
        Ok(())
    }

    async fn send(&mut self, msg: VnetMsg) -> Result<(), Ended> {
        Ok(self.link.send(msg).await?)
    }

    async fn ping(&mut self) -> Result<(), Ended> {
        let id = self.requests.track(InFlight::Heartbeat);
        self.send(VnetMsg::Request {
            id,
            body: Request::Ping,
        })
        .await
    }

    async fn on_command(&mut self, command: Command) -> Result<(), Ended> {
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
        };
        self.send(msg).await
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

    async fn on_frame(&mut self, frame: Option<Result<RouteMsg, ProtoError>>) -> Result<(), Ended> {
        let msg = match frame {
            None => return Err(Ended::Lost(LinkLost::Closed)),
            Some(frame) => frame?,
        };
        match msg {
            RouteMsg::Response { id, body } => self.on_response(id, body).await?,
            RouteMsg::ServeUp(entry) => {
                debug!(
                    serve = %entry.serve_id,
                    vnet = %entry.vnet_id,
                    name = %entry.spec.name,
                    "serve up"
                );
                self.parts.group.send_modify(|a| {
                    a.insert(entry.serve_id, entry);
                });
            }
            RouteMsg::ServeDown { serve_id } => {
                debug!(serve = %serve_id, "serve down");
                self.parts.group.send_modify(|a| {
                    a.remove(&serve_id);
                });
            }
            RouteMsg::OpenStream { ticket, serve_id } => {
                let session = self.session.clone();
                let ask = StreamAsk {
                    ticket,
                    serve_id,
                    session,
                };
                let _ = self.parts.asks.streams.send(ask).await;
            }
            RouteMsg::UnserveAsk {
                ask,
                from,
                from_name,
                ip,
                port,
            } => {
                let ask = UnserveAsk {
                    ask,
                    from,
                    from_name,
                    ip,
                    port,
                };
                let _ = self.parts.asks.unserve.send(ask).await;
            }
            other => return Err(Ended::Lost(LinkLost::Unexpected(Box::new(other)))),
        }
        Ok(())
    }

    async fn on_response(&mut self, id: u32, body: Response) -> Result<(), Ended> {
        match self.requests.answered(id) {
            Some(InFlight::Register(key, waiters)) => {
                if let Some(serve_id) = registered(self.parts, key, body, waiters) {
                    let withdraw = self.unregister(serve_id);
                    self.send(withdraw).await?;
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
