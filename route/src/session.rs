//! One vnet's control connection: registration requests in, events out.
//!
//! The task owns the framed socket. Events for this vnet arrive on a
//! bounded queue filled by the registry; requests are answered in order.
//! When the task ends, for whatever reason, the vnet and its serves leave
//! the registry.
use futures::{SinkExt, StreamExt};
use proto::codec::RouteCodec;
use proto::message::{Request, Response, RouteMsg, VnetMsg};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use crate::registry::VnetLink;
use crate::{Conn, Hub};
use proto::auth::{Nonce, Token};
use proto::VnetId;

/// Events queued for one vnet before it counts as not reading.
const CONTROL_QUEUE: usize = 1024;

/// Challenges a vnet whose hello has been read: sends the route's nonce
/// and proof, and checks the vnet's proof. Nothing about the registry is
/// said before this succeeds.
///
/// # Errors
/// The reason to give the vnet (and log).
pub async fn authenticate(
    conn: &mut Framed<Conn, RouteCodec>,
    token: &Token,
    name: &str,
    group: &str,
    vnet_nonce: Nonce,
) -> Result<(), String> {
    let route_nonce = Nonce(rand::random());
    let challenge = RouteMsg::Challenge {
        nonce: route_nonce,
        proof: token.route_proof(&vnet_nonce, &route_nonce),
    };
    conn.send(challenge).await.map_err(|e| e.to_string())?;
    match proto::io::next_message(conn).await {
        Ok(VnetMsg::Auth { proof }) if proof.matches(&token.vnet_proof(&route_nonce, &vnet_nonce, name, group)) => Ok(()),
        Ok(VnetMsg::Auth { .. }) => Err("authentication failed: wrong or missing token".into()),
        Ok(_) => Err("expected the token proof".into()),
        Err(proto::io::HandshakeError::Closed) => Err("the vnet left without proving the token: it did not accept the route's proof (tokens differ, or only the route has one)".into()),
        Err(err) => Err(err.to_string()),
    }
}

/// Runs a control connection whose hello has been read and checked.
pub async fn run(mut framed: Framed<Conn, RouteCodec>, name: String, group: String, hub: Arc<Hub>) {
    let (tx, mut events) = mpsc::channel(CONTROL_QUEUE);
    let cancel = hub.shutdown.child_token();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Visiting spares wait on this token, so they close with this
    // connection; idle serving spares are closed below.
    let _close_spares = cancel.clone().drop_guard();
    let link = VnetLink::new(tx, cancel.clone());
    let spares = link.spares.clone();
    let joined = hub
        .registry()
        .join(&group, &name, link, now, hub.settings.max_vnets);
    let (vnet_id, session, snapshot) = match joined {
        Ok(joined) => joined,
        Err(reason) => {
            warn!(%name, %group, %reason, "vnet refused");
            let _ = framed.send(RouteMsg::Refused { reason }).await;
            return;
        }
    };
    info!(vnet = %vnet_id, %name, %group, "vnet joined");
    let heartbeat = hub.settings.heartbeat;
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
    // Streams of this vnet still running hold the link (and so these
    // spares); the spares themselves must not outlive the session.
    spares.close_all();
    match ended {
        Ok(why) => info!(vnet = %vnet_id, %name, why, "vnet left"),
        Err(err) => warn!(vnet = %vnet_id, %name, %err, "vnet left"),
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
                Ok(asked.err().map(|reason| RouteMsg::Response {
                    id,
                    body: Response::Error(reason),
                }))
            }
            VnetMsg::Request { id, body } => {
                let body = answer(hub, group, vnet_id, body, hub.settings.max_serves_per_vnet);
                Ok(Some(RouteMsg::Response { id, body }))
            }
            VnetMsg::UnserveAnswer {
                to,
                request,
                result,
            } => {
                pass_unserve_answer(hub, group, vnet_id, to, request, result);
                Ok(None)
            }
            other => {
                warn!(vnet = %vnet_id, msg = ?other, "unexpected message on a control connection; dropping vnet");
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
        Request::RegisterServe(spec) if spec.kind != "tcp" => {
            Response::Error(format!("type {:?} is not supported; only tcp", spec.kind))
        }
        Request::RegisterServe(spec) => {
            let name = spec.name.clone();
            let wanted = spec.serve_id;
            match hub.registry().register(group, vnet_id, spec, max_serves) {
                Ok(serve_id) => {
                    info!(vnet = %vnet_id, serve = %serve_id, %name, "serve registered");
                    if wanted.is_some_and(|w| w != serve_id) {
                        info!(vnet = %vnet_id, serve = %serve_id, %name, "dynamic id was taken; reassigned");
                    }
                    Response::Registered { serve_id }
                }
                Err(reason) => {
                    info!(vnet = %vnet_id, %name, %reason, "serve refused");
                    Response::Error(reason)
                }
            }
        }
        Request::UnregisterServe { serve_id } => {
            match hub.registry().unregister(group, vnet_id, serve_id) {
                Ok(()) => {
                    info!(vnet = %vnet_id, serve = %serve_id, "serve withdrawn");
                    Response::Done
                }
                Err(reason) => Response::Error(reason),
            }
        }
        Request::Ping => Response::Pong,
        Request::ListServes => Response::Serves(hub.registry().serves(group)),
        Request::ListVnets => Response::Vnets(hub.registry().vnets(group)),
        Request::Unserve { .. } => Response::Error("unserve is answered elsewhere".into()),
    }
}

/// Forwards an unserve request to the vnet that has the service. The
/// route keeps no state for it: the asker's id and request id travel with
/// the ask and come back with the answer.
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
) -> Result<(), String> {
    let (link, to_name) = hub
        .registry()
        .vnet(group, to)
        .ok_or_else(|| format!("no vnet {to} in this group"))?;
    info!(from = %from, to = %to, %to_name, %ip, port, "unserve asked");
    let ask = RouteMsg::UnserveAsk {
        from,
        from_name: from_name.to_string(),
        request,
        ip,
        port,
    };
    link.tx
        .try_send(ask)
        .map_err(|_| format!("vnet {to} is not answering"))
}

fn pass_unserve_answer(
    hub: &Hub,
    group: &str,
    from: VnetId,
    to: VnetId,
    request: u32,
    result: Result<proto::ServeId, String>,
) {
    let Some((link, _)) = hub.registry().vnet(group, to) else {
        return debug!(%from, %to, "unserve answer for a vnet that left");
    };
    info!(%from, %to, ?result, "unserve answered");
    let body = match result {
        Ok(serve_id) => Response::Unserved { serve_id },
        Err(reason) => Response::Error(reason),
    };
    let _ = link.tx.try_send(RouteMsg::Response { id: request, body });
}
