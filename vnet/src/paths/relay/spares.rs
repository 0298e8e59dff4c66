//! Spare data connections: `[vnet] spares` of them for uses and as many
//! for serves, opened to the route while a control session is up, so a
//! new stream starts without a TCP connect (or TLS handshake) to the
//! route, and without the route's control message and dial-back.
//!
//! A visiting spare waits in the [`VisitingSpares`] pool until a use takes
//! it for a client; a serving spare waits in its own task until the route
//! hands it a stream. Either is replaced as soon as it is used; a vnet
//! with no uses keeps no spares for uses, one with no serves none for
//! serves. Spares belong to one session: [`run`] starts keeping them for
//! each new session, and they go when its `ended` token is cancelled (the
//! route closes them with that control connection anyway).
use net::handshake::next_message;
use proto::message::{RouteMsg, SpareRole, VnetMsg};
use proto::SessionId;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, Instrument};

use super::answer;
use super::dial;
use crate::control::session::Session;
use crate::error::DialError;
use crate::link::FramedConn;
use crate::model::{Model, SpareCounts, Status};
use crate::serving::Serving;

/// Pause after a spare could not be opened, so a route that refuses them
/// (or is gone) is not hammered; the session's end stops the wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// An idle visiting spare and the session it belongs to.
struct Idle {
    session: SessionId,
    ended: CancellationToken,
    conn: FramedConn,
}

/// Idle visiting spares, shared by the uses. Cheap to clone.
#[derive(Clone)]
pub(crate) struct VisitingSpares(Arc<Pool>);

struct Pool {
    idle: Mutex<Vec<Idle>>,
    /// Woken when one is taken, so it is replaced.
    taken: Notify,
    /// Where the counts are published.
    model: Model,
}

impl VisitingSpares {
    /// An empty pool publishing its counts in `model`.
    pub(crate) fn new(model: Model) -> Self {
        Self(Arc::new(Pool {
            idle: Mutex::default(),
            taken: Notify::new(),
            model,
        }))
    }

    /// Runs `change` on the pool and publishes how many are idle, both
    /// under the pool's lock so that counts are published in order.
    /// Spares of an ended session are closed first, whoever looks.
    fn update<T>(&self, change: impl FnOnce(&mut Vec<Idle>) -> T) -> T {
        let mut idle = self.0.idle.lock().expect("spares poisoned");
        idle.retain(|spare| !spare.ended.is_cancelled());
        let out = change(&mut idle);
        let count = idle.len();
        publish(&self.0.model, |c| c.idle_visit = count);
        out
    }

    /// Takes an idle spare of `session`.
    pub(crate) fn take(&self, session: &Session) -> Option<FramedConn> {
        let spare = self.update(|idle| {
            let at = idle.iter().rposition(|s| s.session == session.id)?;
            Some(idle.swap_remove(at).conn)
        })?;
        self.0.taken.notify_one();
        Some(spare)
    }

    /// Counts a stream started on a visiting spare.
    pub(crate) fn count_used(&self) {
        publish(&self.0.model, |c| c.used_visit += 1);
    }
}

/// What keeping spares takes: the pool for uses, and the serving side
/// that streams arriving on serving spares go to.
#[derive(Clone)]
pub(crate) struct Keeper {
    pub visiting: VisitingSpares,
    pub serving: Serving,
}

/// Keeps spares for every session that comes up, until shutdown.
pub(crate) async fn run(
    keeper: Keeper,
    mut sessions: watch::Receiver<Option<Session>>,
    shutdown: CancellationToken,
) {
    let mut last = None;
    loop {
        let session = sessions.borrow_and_update().clone();
        if let Some(session) = session.filter(|s| last != Some(s.id)) {
            last = Some(session.id);
            let kept = keep(keeper.clone(), session);
            keeper
                .serving
                .tracker
                .spawn(kept.instrument(tracing::debug_span!("spares")));
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = sessions.changed() => if changed.is_err() { return },
        }
    }
}

/// Keeps spares open for `session` until it ends.
async fn keep(keeper: Keeper, session: Session) {
    let count = keeper.serving.current.read(|c| c.options.spares) as usize;
    if count == 0 {
        return;
    }
    for _ in 0..count {
        let worker = serve_on_spares(keeper.serving.clone(), session.clone());
        keeper
            .serving
            .tracker
            .spawn(worker.instrument(tracing::debug_span!("spare")));
    }
    keep_visiting(&keeper, &session, count).await;
    // Idle spares of the ended session go now, not at the next look.
    keeper.visiting.update(|_| ());
}

/// Keeps `count` visiting spares in the pool until the session ends.
async fn keep_visiting(keeper: &Keeper, session: &Session, count: usize) {
    let ended = &session.ended;
    // Spares for uses only once there is a use to take them.
    if needed(&keeper.serving.model, ended, |s| !s.uses.is_empty())
        .await
        .is_err()
    {
        return;
    }
    let visiting = &keeper.visiting;
    loop {
        while visiting.update(|idle| idle.len()) < count {
            let opened = tokio::select! {
                _ = ended.cancelled() => return,
                opened = open(session, SpareRole::Visit) => opened,
            };
            match opened {
                Ok(conn) => {
                    // Checked under the lock, where ended sessions' spares
                    // are dropped: none is added after its session ended.
                    let kept = visiting.update(|idle| {
                        let kept = !ended.is_cancelled();
                        if kept {
                            idle.push(Idle {
                                session: session.id,
                                ended: ended.clone(),
                                conn,
                            });
                        }
                        kept
                    });
                    if !kept {
                        return;
                    }
                }
                Err(err) => {
                    debug!(%err, "cannot open a spare for uses");
                    if pause(ended).await.is_err() {
                        return;
                    }
                }
            }
        }
        tokio::select! {
            _ = ended.cancelled() => return,
            _ = visiting.0.taken.notified() => {}
        }
    }
}

/// One serving spare after another: open it, wait for the route to hand
/// it a stream, start that stream, open the next.
async fn serve_on_spares(serving: Serving, session: Session) {
    let ended = &session.ended;
    // Spares for serves only once there is a serve (or a grant) to reach.
    if needed(&serving.model, ended, |s| !s.serves.is_empty())
        .await
        .is_err()
    {
        return;
    }
    loop {
        let opened = tokio::select! {
            _ = ended.cancelled() => return,
            opened = open(&session, SpareRole::Serve) => opened,
        };
        let mut spare = match opened {
            Ok(spare) => spare,
            Err(err) => {
                debug!(%err, "cannot open a spare for serves");
                if pause(ended).await.is_err() {
                    return;
                }
                continue;
            }
        };
        publish(&serving.model, |c| c.idle_serve += 1);
        let next = tokio::select! {
            _ = ended.cancelled() => None,
            next = next_message(&mut spare) => Some(next),
        };
        publish(&serving.model, |c| c.idle_serve -= 1);
        match next {
            None => return,
            Some(Ok(RouteMsg::Open { serve_id, from })) => {
                publish(&serving.model, |c| c.used_serve += 1);
                answer::on_spare(&serving, &session, spare, serve_id, from);
            }
            Some(Ok(other)) => {
                debug!(?other, "route closed a spare");
                if pause(ended).await.is_err() {
                    return;
                }
            }
            Some(Err(err)) => {
                debug!(%err, "spare lost");
                if pause(ended).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn open(session: &Session, role: SpareRole) -> Result<FramedConn, DialError> {
    let hello = VnetMsg::Spare {
        role,
        pass: session.pass(role.purpose()),
    };
    dial::connect(&session.route, hello).await
}

/// Waits until the status satisfies `wanted`; `Err` if the session ended
/// first.
async fn needed(
    model: &Model,
    ended: &CancellationToken,
    mut wanted: impl FnMut(&Status) -> bool,
) -> Result<(), ()> {
    let mut status = model.subscribe();
    tokio::select! {
        _ = ended.cancelled() => Err(()),
        seen = status.wait_for(|s| wanted(s)) => seen.map(drop).map_err(drop),
    }
}

/// Waits [`RETRY_AFTER`]; `Err` if the session ended meanwhile.
async fn pause(ended: &CancellationToken) -> Result<(), ()> {
    tokio::select! {
        _ = ended.cancelled() => Err(()),
        _ = tokio::time::sleep(RETRY_AFTER) => Ok(()),
    }
}

fn publish(model: &Model, change: impl FnOnce(&mut SpareCounts)) {
    model.send_modify(|s| change(&mut s.spares));
}
