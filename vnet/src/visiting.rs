//! The visiting side of one stream: a client a use accepted is counted,
//! started on a path to its serve and carried until both sides are done
//! or the use closes. The path is a direct link to the serving vnet when
//! one is up (asking for one otherwise, without waiting for it), else the
//! relay through the route, sealed end to end with `secret=` (see `e2e`).
use net::relay::sealing::Sealing;
use net::relay::{bridge, bridge_armed, Relayable};
use net::Unframed;
use proto::e2e::stream::{StreamCrypto, StreamHeader};
use proto::text::Escaped;
use proto::ServeId;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::control::session::Session;
use crate::e2e::E2e;
use crate::error::DialError;
use crate::model::{GroupServes, Model, StreamGuard};
use crate::paths::direct::links::Link;
use crate::paths::direct::stream::QuicStream;
use crate::paths::direct::Direct;
use crate::paths::relay::spares::VisitingSpares;
use crate::paths::relay::visit;
use crate::traffic::Traffic;

/// What the visiting side reads. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Visiting {
    /// Streams are counted here.
    pub model: Model,
    /// The live session, for the passes; none means not connected.
    pub sessions: watch::Receiver<Option<Session>>,
    /// Idle visiting spares.
    pub spares: VisitingSpares,
    /// The group's serves: which vnet serves what.
    pub group: watch::Receiver<GroupServes>,
    /// Pairing with the serving vnets, with `secret=`.
    pub e2e: Option<E2e>,
    /// Direct links to the serving vnets, unless `direct=off`.
    pub direct: Option<Direct>,
}

/// Carries one accepted connection to serve `serve_id` (on a direct link
/// if `direct` allows); `cancel` is the use's, `traffic` its counters.
pub(crate) async fn carry(
    visiting: Visiting,
    client: TcpStream,
    (serve_id, direct): (ServeId, bool),
    cancel: CancellationToken,
    traffic: Arc<Traffic>,
) {
    let counted = StreamGuard::new(&visiting.model, traffic);
    // No Nagle delay, and a client whose stream does not start, or ends
    // badly, is reset (set on the use's listener where it passes on).
    net::listen::ready(&client, None);
    let client = counted.count(client);
    let link = direct.then(|| direct_link(&visiting, serve_id)).flatten();
    if let Some(link) = link {
        match start_direct(&link, serve_id).await {
            Ok(stream) => {
                let lane = matches!(stream, DirectStream::Lane(_));
                visiting.model.send_modify(|s| {
                    s.direct_streams += 1;
                    s.lane_streams += u64::from(lane);
                });
                return match stream {
                    DirectStream::Lane(lane) => carry_direct(client, lane, None, &cancel).await,
                    DirectStream::Quic(quic) => {
                        carry_direct(client, quic, Some(&link.conn), &cancel).await
                    }
                };
            }
            Err(err) => {
                let err = Escaped(&err.to_string()).to_string();
                debug!(%err, "direct link failed; through the route")
            }
        }
    }
    let Some(session) = visiting.sessions.borrow().clone() else {
        return info!("connection refused: not connected to the route");
    };
    match &visiting.e2e {
        None => carry_on(&visiting, &session, serve_id, client, &cancel).await,
        // Boxed whole: inline, the sealed stream's state (its keys, the
        // copy engine) would size every plain stream's task too.
        Some(e2e) => {
            Box::pin(carry_sealed(
                e2e, &visiting, &session, serve_id, client, &cancel,
            ))
            .await
        }
    }
}

/// The direct link to the vnet serving `serve_id`, if one is up; asks
/// for one otherwise.
fn direct_link(visiting: &Visiting, serve_id: ServeId) -> Option<Link> {
    let direct = visiting.direct.as_ref()?;
    let vnet = visiting.group.borrow().get(&serve_id)?.vnet_id;
    let me = visiting.sessions.borrow().as_ref().map(|s| s.vnet_id);
    if me == Some(vnet) {
        // Our own serve: the route's path is as short.
        return None;
    }
    direct.link(vnet)
}

/// A stream started on a direct link.
enum DirectStream {
    /// On a spare connection to the other end's TCP lane.
    Lane(TcpStream),
    /// On the link itself.
    Quic(QuicStream),
}

/// Starts a stream to `serve_id` on `link`: on its lane if a spare is
/// there, else on a QUIC stream. Its header goes with the first bytes.
async fn start_direct(link: &Link, serve_id: ServeId) -> std::io::Result<DirectStream> {
    if let Some(mut lane) = link.lane.as_ref().and_then(|pool| pool.take()) {
        let header = proto::direct::StreamHeader { serve_id }.encode();
        tokio::io::AsyncWriteExt::write_all(&mut lane, &header).await?;
        return Ok(DirectStream::Lane(lane));
    }
    let quic = Direct::open(&link.conn, serve_id).await;
    Ok(DirectStream::Quic(quic?))
}

/// Carries a stream on a direct link until both sides are done, the use
/// closes, or the link (for a stream on it) dies: then it is reset.
async fn carry_direct<C: Relayable, S: Relayable>(
    client: C,
    stream: S,
    link: Option<&quinn::Connection>,
    cancel: &CancellationToken,
) {
    let client = Unframed {
        stream: client,
        leftover: Default::default(),
    };
    let stream = Unframed {
        stream,
        leftover: Default::default(),
    };
    tokio::select! {
        // The client was armed to reset on close when accepted, a lane
        // connection when opened; a QUIC stream resets on its own.
        done = bridge_armed(client, stream) => match done {
            Ok((up, down)) => debug!(up, down, path = "direct", "connection closed"),
            Err(err) => debug!(%err, path = "direct", "connection ended with an error"),
        },
        _ = cancel.cancelled() => debug!("use closed; connection cut"),
        why = lost(link) => {
            let why = Escaped(&why.to_string()).to_string();
            info!(%why, "the direct link is lost; connection reset")
        }
    }
}

/// Resolves when `link` closes; never without one.
async fn lost(link: Option<&quinn::Connection>) -> quinn::ConnectionError {
    match link {
        Some(link) => link.closed().await,
        None => std::future::pending().await,
    }
}

/// [`carry_on`], sealed end to end.
async fn carry_sealed<C: Relayable>(
    e2e: &E2e,
    visiting: &Visiting,
    session: &Session,
    serve_id: ServeId,
    client: C,
    cancel: &CancellationToken,
) {
    match seal(e2e, visiting, session, serve_id).await {
        Ok((header, crypto)) => {
            let client = Sealing::new(client, crypto, &header.encode());
            carry_on(visiting, session, serve_id, client, cancel).await
        }
        Err(reason) => info!(%reason, "connection refused: no end-to-end key"),
    }
}

/// The keys of a sealed stream to `serve_id`, from the pair key with the
/// vnet serving it.
async fn seal(
    e2e: &E2e,
    visiting: &Visiting,
    session: &Session,
    serve_id: ServeId,
) -> Result<(StreamHeader, StreamCrypto), String> {
    if !session.e2e {
        return Err("the route does not relay end-to-end pairing (an older version)".into());
    }
    let serving = visiting.group.borrow().get(&serve_id).cloned();
    let serving = serving.ok_or_else(|| format!("serve {serve_id} is not in the group"))?;
    e2e.visit(serving.vnet_id, &serving.vnet_name, serve_id)
        .await
}

/// Starts the stream and carries it.
async fn carry_on<C: Relayable>(
    visiting: &Visiting,
    session: &Session,
    serve_id: ServeId,
    mut client: C,
    cancel: &CancellationToken,
) {
    // Boxed: the start is brief, and inline its state would stay in this
    // task for the stream's life (an idle stream is mostly this task).
    let start = Box::pin(visit::start(
        &visiting.spares,
        session,
        serve_id,
        &mut client,
    ));
    let started = tokio::select! {
        _ = cancel.cancelled() => return,
        started = start => started,
    };
    let visit::Started {
        route_side,
        sent_ahead,
    } = match started {
        Ok(started) => started,
        Err(DialError::ClientGone(err)) => {
            return debug!(%err, "client left before its stream started")
        }
        Err(err) => return info!(%err, "connection refused"),
    };
    let client = Unframed {
        stream: client,
        leftover: Default::default(),
    };
    tokio::select! {
        done = bridge(client, route_side) => match done {
            Ok((up, down)) => debug!(up = sent_ahead + up, down, "connection closed"),
            Err(err) => debug!(%err, "connection ended with an error"),
        },
        _ = cancel.cancelled() => debug!("use closed; connection cut"),
        _ = session.lost.cancelled() => info!("the route is lost; connection reset"),
    }
}
