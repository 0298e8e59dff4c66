//! Spare data connections: opened by a vnet before any stream needs them,
//! so that a new stream costs no TCP connect, no TLS handshake and no
//! control round trip.
//!
//! Each session has one [`Spares`] pool in [`SparePools`], opened when the
//! session joins and closed when it leaves. A serving spare waits in the
//! pool until a visitor claims it and [`offer`]s it a stream; a visiting
//! spare waits in its own task (holding one of the pool's visiting slots)
//! for the `Visit` its vnet sends when a client connects to a use. A
//! closed pool keeps nothing, even a spare that arrives as it closes.
use net::ahead::{Ahead, Answered};
use proto::message::{RouteMsg, VnetMsg};
use proto::{Refusal, RefusalCode, ServeId, SessionId, VnetId};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::AsyncRead;
use tracing::debug;

use crate::conn::Half;

/// Spares of each role one vnet may keep open. A vnet keeps a few; this
/// bounds what a misbehaving one can make the route hold.
pub const MAX_SPARES: usize = proto::MAX_SPARES as usize;

/// The spare pools of every live session.
#[derive(Default)]
pub struct SparePools {
    pools: Mutex<HashMap<SessionId, Arc<Spares>>>,
}

impl SparePools {
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, Arc<Spares>>> {
        self.pools.lock().expect("spare pools poisoned")
    }

    /// Opens an empty pool for a session that has just joined.
    pub fn open(&self, session: SessionId) {
        self.lock().insert(session, Arc::default());
    }

    /// Closes a session's pool: its idle spares close, later ones are
    /// refused (even by a task that found the pool before this).
    pub fn close(&self, session: SessionId) {
        let pool = self.lock().remove(&session);
        if let Some(pool) = pool {
            pool.close_all();
        }
    }

    /// A live session's pool.
    pub fn of(&self, session: SessionId) -> Option<Arc<Spares>> {
        self.lock().get(&session).cloned()
    }
}

/// One session's idle spares.
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
    /// The session has ended: keep no more.
    closed: bool,
}

impl Spares {
    fn serving(&self) -> MutexGuard<'_, Serving> {
        self.serving.lock().expect("spares poisoned")
    }

    /// Takes an idle serving spare, if the vnet has one left.
    pub fn claim(&self) -> Option<Half> {
        self.serving().idle.pop_front()
    }

    /// Closes every idle serving spare and refuses later ones. (Visiting
    /// spares end by themselves on the session's cancel token.)
    fn close_all(&self) {
        let mut serving = self.serving();
        serving.closed = true;
        serving.idle.clear();
    }

    /// Keeps `conn` for a later stream; hands it back when full or closed.
    pub fn keep(&self, conn: Half) -> Option<Half> {
        let mut serving = self.serving();
        if serving.closed || serving.idle.len() >= MAX_SPARES {
            return Some(conn);
        }
        serving.idle.push_back(conn);
        None
    }

    /// A place for one more visiting spare, if the vnet has fewer than
    /// [`MAX_SPARES`] waiting.
    pub fn visiting_slot(&self) -> Option<VisitingSlot<'_>> {
        VisitingSlot::take(&self.visiting)
    }
}

/// A place among a session's visiting spares, freed when dropped.
pub struct VisitingSlot<'a>(&'a AtomicUsize);

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
/// `serve_id` from vnet `from`, with the visitor's first bytes right
/// behind the request.
pub async fn offer<V: AsyncRead + Unpin>(
    mut spare: Half,
    (serve_id, from): (ServeId, VnetId),
    timeout: Duration,
    visitor: &mut V,
    ahead: &mut Ahead,
) -> Offered {
    let from = Some(from);
    let open = RouteMsg::Open { serve_id, from };
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
        let pools = SparePools::default();
        let session = SessionId(7);
        pools.open(session);
        let spares = pools.of(session).expect("opened");
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

        pools.close(session);
        assert!(pools.of(session).is_none(), "the session's pool is gone");
        assert!(spares.claim().is_none(), "closed spares are gone");
        for mut peer in peers {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(20), peer.read(&mut byte)).await;
            assert!(
                matches!(read, Ok(Ok(0) | Err(_))),
                "the vnet's end of a closed spare sees it close: {read:?}"
            );
        }
        // A spare whose task found the pool before it closed.
        let (conn, _peer) = half(&listener).await;
        assert!(spares.keep(conn).is_some(), "none kept once closed");

        let slots: Vec<_> = (0..MAX_SPARES)
            .map(|_| spares.visiting_slot().expect("below the limit"))
            .collect();
        assert!(spares.visiting_slot().is_none());
        drop(slots);
        assert!(spares.visiting_slot().is_some());
    }
}
