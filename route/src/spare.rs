//! Spare data connections: opened by a vnet before any stream needs them,
//! so that a new stream costs no TCP connect, no TLS handshake and no
//! control round trip.
//!
//! A serving spare waits in its vnet's [`Spares`] until a visitor claims
//! it (see `forward`); a visiting spare waits in its own task for the
//! `Visit` that its vnet sends when a client connects to a use. Both close
//! with their vnet's control connection.
use net::ahead::{Ahead, Answered};
use net::handshake::next_message;
use proto::message::{RouteMsg, SpareRole, VnetMsg};
use proto::pass::DataPass;
use proto::{Refusal, RefusalCode, ServeId};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncRead;
use tracing::{debug, info};

use crate::conn::{refuse, Half};
use crate::forward;
use crate::state::Hub;

/// Spares of each role one vnet may keep open. A vnet keeps a few; this
/// bounds what a misbehaving one can make the route hold.
const MAX_SPARES: usize = proto::MAX_SPARES as usize;

/// One vnet's idle spares.
#[derive(Default)]
pub struct Spares {
    serving: Mutex<Serving>,
    /// Visiting spares waiting for their `Visit`.
    visiting: AtomicUsize,
}

#[derive(Default)]
struct Serving {
    /// Oldest first.
    idle: VecDeque<Half>,
    /// The vnet's control connection has ended: keep no more.
    closed: bool,
}

impl Spares {
    fn serving(&self) -> std::sync::MutexGuard<'_, Serving> {
        self.serving.lock().expect("spares poisoned")
    }

    /// Takes an idle serving spare, if the vnet has one left.
    pub fn claim(&self) -> Option<Half> {
        self.serving().idle.pop_front()
    }

    /// Closes every idle serving spare and refuses later ones: the control
    /// connection ended. (Visiting spares end by themselves on the link's
    /// cancel token.)
    pub fn close_all(&self) {
        let mut serving = self.serving();
        serving.closed = true;
        serving.idle.clear();
    }

    /// Keeps `conn` for a later stream; hands it back when full or closed.
    fn keep(&self, conn: Half) -> Option<Half> {
        let mut serving = self.serving();
        if serving.closed || serving.idle.len() >= MAX_SPARES {
            return Some(conn);
        }
        serving.idle.push_back(conn);
        None
    }
}

/// Handles a data connection whose `Spare` hello has been read.
pub async fn arrived(mut conn: Half, role: SpareRole, pass: DataPass, hub: Arc<Hub>) {
    let admitted = hub.registry().admit(&pass, role.purpose());
    let link = match admitted {
        Ok(admitted) => admitted.link,
        Err(refusal) => {
            info!(reason = %refusal, "spare refused");
            return refuse(conn, refusal).await;
        }
    };
    let limit = |text: &str| Refusal::new(RefusalCode::Limit, text);
    match role {
        SpareRole::Serve => {
            if let Some(conn) = link.spares.keep(conn) {
                info!(
                    max = MAX_SPARES,
                    "spare refused: the vnet keeps too many, or has left"
                );
                refuse(
                    conn,
                    limit("too many spare connections, or the session has ended"),
                )
                .await;
            }
        }
        SpareRole::Visit => {
            let Some(slot) = VisitingSlot::take(&link.spares.visiting) else {
                info!(max = MAX_SPARES, "spare refused: the vnet keeps too many");
                return refuse(conn, limit("too many spare connections")).await;
            };
            let next = tokio::select! {
                next = next_message(&mut conn) => next,
                _ = link.cancel.cancelled() => return,
                _ = hub.shutdown.cancelled() => return,
            };
            drop(slot);
            match next {
                Ok(VnetMsg::Visit {
                    serve_id,
                    pass: visit,
                }) if visit.session == pass.session => {
                    forward::visit(conn, serve_id, visit, hub).await;
                }
                Ok(_) => {
                    info!("dropped spare: expected a visit of its session");
                    let refusal = Refusal::new(
                        RefusalCode::Protocol,
                        "expected a visit of this session on a spare connection",
                    );
                    refuse(conn, refusal).await;
                }
                Err(err) => debug!(%err, "spare closed unused"),
            }
        }
    }
}

/// A place among a vnet's visiting spares, freed when dropped.
struct VisitingSlot<'a>(&'a AtomicUsize);

impl<'a> VisitingSlot<'a> {
    fn take(count: &'a AtomicUsize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_SPARES).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count))
    }
}

impl Drop for VisitingSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What came of offering a stream on a serving spare.
pub enum Offered {
    /// The vnet reached its service; raw bytes follow on `Half`.
    Open(Half),
    /// The vnet could not reach its service; the reason is for the visitor.
    Refused(Refusal),
    /// The spare was already dead; try another (the visitor's bytes sent
    /// ahead are still held).
    Dead,
    /// The visitor's connection failed while the stream was starting.
    VisitorGone,
}

/// Asks the serving vnet, on one of its spares, for a stream to
/// `serve_id`, with the visitor's first bytes right behind the request.
pub async fn offer<V: AsyncRead + Unpin>(
    mut spare: Half,
    serve_id: ServeId,
    timeout: Duration,
    visitor: &mut V,
    ahead: &mut Ahead,
) -> Offered {
    let open = RouteMsg::Open { serve_id };
    let answer = tokio::time::timeout(timeout, ahead.ask(visitor, &mut spare, open)).await;
    let answer = match answer {
        Ok(Answered::Answer(answer)) => answer,
        Ok(Answered::Lost(err)) => {
            debug!(%err, "spare was dead");
            return Offered::Dead;
        }
        Ok(Answered::SourceFailed(err)) => {
            debug!(%err, "visitor left before the stream started");
            return Offered::VisitorGone;
        }
        Err(_) => {
            return Offered::Refused(Refusal::new(
                RefusalCode::Busy,
                format!("serve {serve_id} did not answer in time"),
            ))
        }
    };
    match answer {
        msg @ VnetMsg::Opened { .. } if msg.validate().is_err() => Offered::Refused(Refusal::new(
            RefusalCode::Protocol,
            format!("serve {serve_id} sent an unreadable answer"),
        )),
        VnetMsg::Opened { result: Ok(()) } => Offered::Open(spare),
        VnetMsg::Opened {
            result: Err(reason),
        } => Offered::Refused(reason),
        _ => Offered::Refused(Refusal::new(
            RefusalCode::Protocol,
            format!("serve {serve_id} sent an unexpected answer"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Conn;
    use proto::codec::RouteCodec;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A real connected socket, as the route holds one.
    async fn half(listener: &TcpListener) -> (Half, TcpStream) {
        let (client, accepted) = tokio::join!(
            TcpStream::connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        let conn = Conn::Plain(accepted.unwrap().0);
        (
            tokio_util::codec::Framed::new(conn, RouteCodec::new()),
            client.unwrap(),
        )
    }

    #[tokio::test]
    async fn a_vnet_keeps_at_most_max_spares_of_each_role() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let spares = Spares::default();
        let mut peers = Vec::new();
        for _ in 0..MAX_SPARES {
            let (conn, peer) = half(&listener).await;
            assert!(spares.keep(conn).is_none());
            peers.push(peer);
        }
        let (conn, _peer) = half(&listener).await;
        assert!(spares.keep(conn).is_some(), "one serving spare too many");
        assert!(spares.claim().is_some());
        let (conn, _peer) = half(&listener).await;
        assert!(spares.keep(conn).is_none(), "room again after a claim");

        spares.close_all();
        assert!(spares.claim().is_none(), "closed spares are gone");
        for mut peer in peers {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(20), peer.read(&mut byte)).await;
            assert!(
                matches!(read, Ok(Ok(0) | Err(_))),
                "the vnet's end of a closed spare sees it close: {read:?}"
            );
        }
        let (conn, _peer) = half(&listener).await;
        assert!(spares.keep(conn).is_some(), "none kept once closed");

        let slots: Vec<_> = (0..MAX_SPARES)
            .map(|_| VisitingSlot::take(&spares.visiting).expect("below the limit"))
            .collect();
        assert!(VisitingSlot::take(&spares.visiting).is_none());
        drop(slots);
        assert!(VisitingSlot::take(&spares.visiting).is_some());
    }
}
