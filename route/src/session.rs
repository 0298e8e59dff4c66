//! One vnet's control connection: registration requests in, events out.
//!
//! The task owns the framed socket. Events for this vnet arrive on a
//! bounded queue filled by the registry; requests are answered in order.
//! When the task ends, for whatever reason, the vnet and its serves leave
//! the registry.
use futures::{SinkExt, StreamExt};
use proto::message::{Request, Response, RouteMsg, VnetMsg};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::asks::{OpenAsk, MAX_OPEN_PER_VNET};
use crate::conn::{refuse, Half};
use crate::registry::VnetLink;
use crate::state::Hub;
use proto::auth::{PakeMsg, RouteExchange, SessionSecret, Token};
use proto::features::Features;
use proto::text::Escaped;
use proto::{AskId, Refusal, RefusalCode, VnetId, MAX_FRAME_LEN};

/// Events queued for one vnet before it counts as not reading.
const CONTROL_QUEUE: usize = 1024;

/// Runs the route's side of the token exchange (see `proto::auth`) with a
/// vnet whose hello has been read. Nothing about the registry is said
/// before this succeeds.
///
/// # Errors
/// The refusal to give the vnet (and log).
pub async fn authenticate(
    conn: &mut Half,
    token: &Token,
    name: &str,
    group: &str,
    pake: PakeMsg,
) -> Result<SessionSecret, Refusal> {
    let auth = |text: &str| Refusal::new(RefusalCode::Auth, text);
    let (exchange, ours, confirm) = RouteExchange::answer(token, name, group, &pake)
        .map_err(|err| Refusal::new(RefusalCode::Protocol, err.to_string()))?;
    let challenge = RouteMsg::Challenge {
        pake: ours,
        confirm,
        token: token.is_set(),
    };
    conn.send(challenge)
        .await
        .map_err(|e| Refusal::new(RefusalCode::Protocol, e.to_string()))?;
    match net::handshake::next_message(conn).await {
        Ok(VnetMsg::Auth { confirm }) => exchange
            .check(&confirm)
            .map_err(|_| auth("authentication failed: wrong or missing token")),
        Ok(_) => Err(Refusal::new(RefusalCode::Protocol, "expected the token confirmation")),
        Err(net::HandshakeError::Closed) => Err(auth("the vnet left without confirming: it did not accept the route's confirmation (tokens differ, or only the route has one)")),
        Err(err) => Err(Refusal::new(RefusalCode::Protocol, err.to_string())),
    }
}

/// A vnet's hello: who it says it is, and its first token-exchange move.
pub struct Hello {
    /// The vnet's name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its opening message of the token exchange.
    pub pake: PakeMsg,
    /// The features it announced.
    pub features: Features,
}

/// Takes a control connection whose hello has been read: the token
/// exchange (under the handshake timeout), then the session.
pub async fn join(mut conn: Half, hello: Hello, hub: Arc<Hub>) {
    let Hello {
        name,
        group,
        pake,
        features,
    } = hello;
    let proof = authenticate(&mut conn, &hub.config.token, &name, &group, pake);
    let proof = tokio::time::timeout(hub.config.handshake_timeout, proof);
    let Some(proved) = hub.shutdown.run_until_cancelled(proof).await else {
        return;
    };
    match proved {
        Ok(Ok(secret)) => {
            // Proved: now the larger frames of a control connection.
            conn.codec_mut().set_limit(MAX_FRAME_LEN);
            let joining = Joining {
                name,
                group,
                secret,
                features,
            };
            run(conn, joining, hub).await
        }
        Ok(Err(refusal)) => {
            let (name, group) = (Escaped(&name), Escaped(&group));
            warn!(%name, %group, reason = %refusal, "vnet refused");
            refuse(conn, refusal).await;
        }
        Err(_) => {
            let name = Escaped(&name);
            warn!(%name, "dropped peer: authentication not finished in time")
        }
    }
}

/// What a control connection's authenticated hello established.
pub struct Joining {
    /// The vnet's name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// The secret from the token exchange: admits its data connections.
    pub secret: SessionSecret,
    /// The features it announced.
    pub features: Features,
}

/// Runs a control connection whose hello has been read and checked.
pub async fn run(mut framed: Half, joining: Joining, hub: Arc<Hub>) {
    let Joining {
        name,
        group,
        secret,
        features,
    } = joining;
    let features = Features::ours().common(&features);
    let (tx, mut events) = mpsc::channel(CONTROL_QUEUE);
    let cancel = hub.shutdown.child_token();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Visiting spares wait on this token, so they close with this
    // connection; idle serving spares are closed below.
    let _close_spares = cancel.clone().drop_guard();
    let link = VnetLink::new(tx, cancel.clone());
    let joined = hub
        .registry()
        .join(&group, &name, link, secret, now, hub.config.max_vnets);
    let (vnet_id, session, snapshot) = match joined {
        Ok(joined) => joined,
        Err(refusal) => {
            warn!(name = %Escaped(&name), group = %Escaped(&group), reason = %refusal, "vnet refused");
            let _ = framed.send(RouteMsg::Refused(refusal)).await;
            return;
        }
    };
    hub.spares.open(session);
    info!(vnet = %vnet_id, name = %Escaped(&name), group = %Escaped(&group), "vnet joined");
    let heartbeat = hub.config.heartbeat;
    let me = Peer {
        hub: &hub,
        group: &group,
        name: &name,
        vnet_id,
    };

    let ended = async {
        let heartbeat_secs = u32::try_from(heartbeat.as_secs()).unwrap_or(u32::MAX);
        framed
            .feed(RouteMsg::Welcome {
                vnet_id,
                session,
                heartbeat_secs,
                features,
            })
            .await?;
        for msg in snapshot {
            framed.feed(msg).await?;
        }
        framed.flush().await?;
        // A vnet pings well within the heartbeat; silence this long means
        // it is gone (cable pulled, process frozen).
        let silence = tokio::time::sleep(heartbeat);
        tokio::pin!(silence);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok("dropped by the route"),
                _ = &mut silence => return Ok("heartbeat missed"),
                Some(event) = events.recv() => framed.send(event).await?,
                frame = framed.next() => match frame {
                    None => return Ok("connection closed"),
                    Some(Err(err)) => return Err(err),
                    Some(Ok(msg)) => {
                        silence.as_mut().reset(tokio::time::Instant::now() + heartbeat);
                        match me.handle(msg) {
                            Ok(Some(reply)) => framed.send(reply).await?,
                            Ok(None) => {}
                            Err(why) => return Ok(why),
                        }
                    }
                },
            }
        }
    }
    .await;

    hub.registry().leave(&group, vnet_id);
    hub.asks().forget(&group, vnet_id);
    // Idle spares must not outlive the session; one arriving now is
    // refused by the closed pool.
    hub.spares.close(session);
    match ended {
        Ok(why) => info!(vnet = %vnet_id, name = %Escaped(&name), why, "vnet left"),
        Err(err) => warn!(vnet = %vnet_id, name = %Escaped(&name), %err, "vnet left"),
    }
}

/// One connected vnet, as its control task sees it.
struct Peer<'a> {
    hub: &'a Hub,
    group: &'a str,
    name: &'a str,
    vnet_id: VnetId,
}

impl Peer<'_> {
    /// Handles one message; returns what to send back, or why to drop the
    /// vnet.
    fn handle(&self, msg: VnetMsg) -> Result<Option<RouteMsg>, &'static str> {
        let (hub, group, vnet_id) = (self.hub, self.group, self.vnet_id);
        if let Err(invalid) = msg.validate() {
            let refusal = Refusal::new(RefusalCode::Protocol, invalid.to_string());
            return match msg {
                VnetMsg::Request { id, .. } => Ok(Some(RouteMsg::Response {
                    id,
                    body: Response::Error(refusal),
                })),
                _ => {
                    warn!(vnet = %vnet_id, %invalid, "invalid message on a control connection; dropping vnet");
                    Err("protocol violation")
                }
            };
        }
        match msg {
            VnetMsg::Request {
                id,
                body:
                    Request::Unserve {
                        vnet_id: to,
                        ip,
                        port,
                    },
            } => {
                // Answered later, when the other vnet decides.
                let asked = ask_unserve(hub, group, vnet_id, self.name, id, to, ip, port);
                Ok(asked.err().map(|refusal| RouteMsg::Response {
                    id,
                    body: Response::Error(refusal),
                }))
            }
            VnetMsg::Request { id, body } => {
                let body = answer(hub, group, vnet_id, body, hub.config.max_serves_per_vnet);
                Ok(Some(RouteMsg::Response { id, body }))
            }
            VnetMsg::UnserveAnswer { ask, result } => {
                pass_unserve_answer(hub, group, vnet_id, ask, result);
                Ok(None)
            }
            _ => {
                warn!(vnet = %vnet_id, "unexpected message on a control connection; dropping vnet");
                Err("protocol violation")
            }
        }
    }
}

fn answer(
    hub: &Hub,
    group: &str,
    vnet_id: VnetId,
    request: Request,
    max_serves: usize,
) -> Response {
    debug!(vnet = %vnet_id, ?request, "request");
    match request {
        Request::RegisterServe(spec) if spec.kind != "tcp" => Response::Error(Refusal::new(
            RefusalCode::Unsupported,
            format!("type {:?} is not supported; only tcp", spec.kind),
        )),
        Request::RegisterServe(spec) => {
            let name = spec.name.clone();
            let wanted = spec.serve_id;
            match hub.registry().register(group, vnet_id, spec, max_serves) {
                Ok(serve_id) => {
                    let name = Escaped(&name);
                    info!(vnet = %vnet_id, serve = %serve_id, %name, "serve registered");
                    if wanted.is_some_and(|w| w != serve_id) {
                        info!(vnet = %vnet_id, serve = %serve_id, %name, "dynamic id was taken; reassigned");
                    }
                    Response::Registered { serve_id }
                }
                Err(refusal) => {
                    info!(vnet = %vnet_id, name = %Escaped(&name), reason = %refusal, "serve refused");
                    Response::Error(refusal)
                }
            }
        }
        Request::UnregisterServe { serve_id } => {
            match hub.registry().unregister(group, vnet_id, serve_id) {
                Ok(()) => {
                    info!(vnet = %vnet_id, serve = %serve_id, "serve withdrawn");
                    Response::Done
                }
                Err(refusal) => Response::Error(refusal),
            }
        }
        Request::Ping => Response::Pong,
        Request::ListServes => Response::Serves(hub.registry().serves(group)),
        Request::ListVnets => Response::Vnets(hub.registry().vnets(group)),
        Request::Unserve { .. } => Response::Error(Refusal::new(
            RefusalCode::Protocol,
            "unserve is answered elsewhere",
        )),
    }
}

/// Forwards an unserve request to the vnet that has the service, under
/// an ask id of the route's own (see [`crate::asks`]).
#[allow(clippy::too_many_arguments)]
fn ask_unserve(
    hub: &Hub,
    group: &str,
    from: VnetId,
    from_name: &str,
    request: u32,
    to: VnetId,
    ip: String,
    port: u16,
) -> Result<(), Refusal> {
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
    info!(%from, %to, to_name = %Escaped(&to_name), ip = %Escaped(&ip), port, "unserve asked");
    let msg = RouteMsg::UnserveAsk {
        ask,
        from,
        from_name: from_name.to_string(),
        ip,
        port,
    };
    link.tx.try_send(msg).map_err(|_| {
        hub.asks().answered(ask, group, to);
        Refusal::new(RefusalCode::Busy, format!("vnet {to} is not answering"))
    })
}

/// Passes an answer on to the vnet that asked, if `from` was really asked
/// and the ask is still open; anything else is dropped.
fn pass_unserve_answer(
    hub: &Hub,
    group: &str,
    from: VnetId,
    ask: AskId,
    result: Result<proto::ServeId, Refusal>,
) {
    let Some(open) = hub.asks().answered(ask, group, from) else {
        return warn!(vnet = %from, "unserve answer to no open ask of it; dropped");
    };
    let Some((link, _)) = hub.registry().vnet(group, open.asker) else {
        return debug!(%from, to = %open.asker, "unserve answer for a vnet that left");
    };
    info!(%from, to = %open.asker, result = ?result.as_ref().map_err(|r| r.code), "unserve answered");
    let body = match result {
        Ok(serve_id) => Response::Unserved { serve_id },
        Err(refusal) => Response::Error(refusal),
    };
    let _ = link.tx.try_send(RouteMsg::Response {
        id: open.request,
        body,
    });
}
