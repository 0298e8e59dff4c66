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
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use crate::registry::VnetLink;
use crate::Hub;

/// Events queued for one vnet before it counts as not reading.
const CONTROL_QUEUE: usize = 1024;

/// Runs a control connection whose hello has been read.
pub async fn run(
    mut framed: Framed<TcpStream, RouteCodec>,
    name: String,
    group: String,
    hub: Arc<Hub>,
) {
    let (tx, mut events) = mpsc::channel(CONTROL_QUEUE);
    let cancel = hub.shutdown.child_token();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let link = VnetLink {
        tx,
        cancel: cancel.clone(),
    };
    let (vnet_id, session, snapshot) = hub.registry().join(&group, &name, link, now);
    info!(vnet = %vnet_id, %name, %group, "vnet joined");

    let ended = async {
        framed.feed(RouteMsg::Welcome { vnet_id, session }).await?;
        for msg in snapshot {
            framed.feed(msg).await?;
        }
        framed.flush().await?;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok("dropped by the route"),
                Some(event) = events.recv() => framed.send(event).await?,
                frame = framed.next() => match frame {
                    None => return Ok("connection closed"),
                    Some(Err(err)) => return Err(err),
                    Some(Ok(VnetMsg::Request { id, body })) => {
                        let body = answer(&hub, &group, vnet_id, body);
                        framed.send(RouteMsg::Response { id, body }).await?;
                    }
                    Some(Ok(other)) => {
                        warn!(vnet = %vnet_id, msg = ?other, "unexpected message on a control connection; dropping vnet");
                        return Ok("protocol violation");
                    }
                },
            }
        }
    }
    .await;

    hub.registry().leave(&group, vnet_id);
    match ended {
        Ok(why) => info!(vnet = %vnet_id, %name, why, "vnet left"),
        Err(err) => warn!(vnet = %vnet_id, %name, %err, "vnet left"),
    }
}

fn answer(hub: &Hub, group: &str, vnet_id: proto::VnetId, request: Request) -> Response {
    debug!(vnet = %vnet_id, ?request, "request");
    match request {
        Request::RegisterServe(spec) if spec.kind != "tcp" => {
            Response::Error(format!("type {:?} is not supported; only tcp", spec.kind))
        }
        Request::RegisterServe(spec) => {
            let name = spec.name.clone();
            let wanted = spec.serve_id;
            match hub.registry().register(group, vnet_id, spec) {
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
    }
}
