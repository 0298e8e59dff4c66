//! The accept loop, and each connection's task up to the hand-off by the
//! kind of its first message: a vnet's hello starts a control session,
//! the others are data connections.
//!
//! The handshake runs inside the connection's own task, under a timeout,
//! so a peer that never finishes it holds up nobody else. Every task is
//! tracked, and ends when the route shuts down.
use net::HandshakeError;
use proto::message::VnetMsg;
use proto::preamble::PreambleError;
use proto::{Refusal, RefusalCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn, Instrument};

use crate::admission::Place;
use crate::conn::{self, refuse, Half, StartError};
use crate::counters::{Counters, Dropped};
use crate::state::Hub;
use crate::{control, data};

/// How long to pause after a failed accept (out of file descriptors and
/// the like) instead of spinning.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Accepts until shutdown, one task per connection.
pub async fn accept_loop(listener: TcpListener, hub: Arc<Hub>) {
    while let Some(accepted) = hub.shutdown.run_until_cancelled(listener.accept()).await {
        match accepted {
            Ok((stream, peer)) => {
                let span = tracing::info_span!("conn", %peer);
                let task = handle(stream, peer, hub.clone()).instrument(span);
                hub.tracker.spawn(task);
            }
            Err(err) => {
                warn!(%err, "accept failed");
                let pause = tokio::time::sleep(ACCEPT_PAUSE);
                if hub.shutdown.run_until_cancelled(pause).await.is_none() {
                    return;
                }
            }
        }
    }
}

/// One connection's task: a place among the unauthenticated ones, its
/// start, then the part its first message asks for.
async fn handle(stream: TcpStream, peer: SocketAddr, hub: Arc<Hub>) {
    let place = match hub.admission.admit(peer.ip(), Instant::now()) {
        Ok(place) => place,
        Err(throttled) => {
            hub.counters.dropped(Dropped::Throttled);
            return debug!(%throttled, "dropped peer");
        }
    };
    let config = hub.config();
    net::socket::tune(&stream, config.heartbeat);
    let start = conn::start(
        stream,
        config.tls.as_ref(),
        config.handshake_timeout,
        &place,
    );
    let started = tokio::select! {
        started = start => started,
        _ = hub.shutdown.cancelled() => return,
        _ = place.evicted.cancelled() => {
            hub.counters.dropped(Dropped::Evicted);
            return debug!("dropped peer: others made progress");
        }
    };
    match started {
        Ok((conn, first)) => dispatch(conn, first, peer, place, hub).await,
        Err(err) => {
            count_failed_start(&err, &hub.counters);
            warn!(%err, "dropped peer")
        }
    }
}

/// Counts a connection that never got to its first message: a vnet of
/// another version was refused (and told so); anything else dropped.
fn count_failed_start(err: &StartError, counters: &Counters) {
    match err {
        StartError::Handshake(HandshakeError::Preamble(PreambleError::Version { .. })) => {
            counters.refused_version()
        }
        // Told why (see `conn::start`).
        StartError::Handshake(HandshakeError::Invalid(_)) => {
            counters.refused(RefusalCode::Protocol)
        }
        StartError::Handshake(_) => counters.dropped(Dropped::BadHandshake),
        StartError::TimedOut(_) => counters.dropped(Dropped::TimedOut),
    }
}

/// Hands a started connection to the part of the route its first message
/// is for. A data connection's pass is checked at once, so its place
/// among the unauthenticated goes now; a vnet keeps its place until it
/// has proved the token.
async fn dispatch(conn: Half, first: VnetMsg, peer: SocketAddr, place: Place, hub: Arc<Hub>) {
    match first {
        VnetMsg::Hello {
            name,
            group,
            pake,
            features,
        } => {
            let hello = control::Hello {
                name,
                group,
                pake,
                features,
            };
            control::join(conn, hello, peer, place, hub).await
        }
        _ => {
            drop(place);
            dispatch_data(conn, first, peer, hub).await
        }
    }
}

/// The data connections, and what has no place first.
async fn dispatch_data(conn: Half, first: VnetMsg, peer: SocketAddr, hub: Arc<Hub>) {
    match first {
        VnetMsg::Visit { serve_id, pass } => data::visit(conn, serve_id, pass, hub).await,
        VnetMsg::Accept {
            ticket,
            pass,
            result,
        } => data::accept(conn, ticket, pass, result, hub).await,
        VnetMsg::Spare { role, pass } => data::spare(conn, role, pass, hub).await,
        VnetMsg::Hello { .. }
        | VnetMsg::Request { .. }
        | VnetMsg::UnserveAnswer { .. }
        | VnetMsg::Peer { .. }
        | VnetMsg::Direct(_)
        | VnetMsg::Auth { .. }
        | VnetMsg::Opened { .. } => {
            info!(%peer, "dropped peer: request before hello");
            let refusal = Refusal::new(RefusalCode::Protocol, "expected a hello first");
            refuse(conn, refusal, &hub.counters).await;
        }
    }
}
