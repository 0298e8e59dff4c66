//! Spare data connections: `[vnet] spares` of them for uses and as many
//! for serves, opened to the route while the control connection is up, so
//! a new stream starts without a TCP connect (or TLS handshake) to the
//! route, and without the route's control message and dial-back.
//!
//! A visiting spare waits here until a use takes it for a client; a
//! serving spare waits in its own task until the route hands it a stream.
//! Either is replaced as soon as it is used; a vnet with no uses keeps no
//! spares for uses, one with no serves none for serves. Spares belong to
//! one session: the route closes them when that control connection ends,
//! and a new session opens its own.
use net::handshake::next_message;
use proto::codec::VnetCodec;
use proto::message::{RouteMsg, SpareRole, VnetMsg};
use proto::SessionId;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, Instrument};

use crate::data::{self, Conn};
use crate::error::DialError;
use crate::{serve, Session, Shared};

/// Pause after a spare could not be opened, so a route that refuses them
/// (or is gone) is not hammered; the session's end stops the wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// A data connection to the route, opened ahead of need.
pub(crate) type Spare = Framed<Conn, VnetCodec>;

/// Idle visiting spares, shared by the uses.
#[derive(Default)]
pub(crate) struct VisitingSpares {
    idle: Mutex<Vec<(SessionId, Spare)>>,
    /// Woken when one is taken, so it is replaced.
    taken: Notify,
}

impl VisitingSpares {
    /// Runs `change` on the pool and publishes how many are idle, both
    /// under the pool's lock so that counts are published in order.
    fn update<T>(
        &self,
        shared: &Shared,
        change: impl FnOnce(&mut Vec<(SessionId, Spare)>) -> T,
    ) -> T {
        let mut idle = self.idle.lock().expect("spares poisoned");
        let out = change(&mut idle);
        let count = idle.len();
        publish(shared, |c| c.idle_visit = count);
        out
    }

    /// Takes an idle spare of `session`.
    pub(crate) fn take(&self, shared: &Shared, session: SessionId) -> Option<Spare> {
        let spare = self.update(shared, |idle| {
            let at = idle.iter().rposition(|(key, _)| *key == session)?;
            Some(idle.swap_remove(at).1)
        })?;
        self.taken.notify_one();
        Some(spare)
    }

    /// Closes every idle spare (the session ended).
    pub(crate) fn clear(&self, shared: &Shared) {
        self.update(shared, Vec::clear);
    }
}

/// Keeps spares open for `session` until `ended` is cancelled.
pub(crate) async fn keep(shared: Arc<Shared>, session: Session, ended: CancellationToken) {
    let count = shared.settings().vnet.spares as usize;
    if count == 0 {
        return;
    }
    for _ in 0..count {
        let worker = serving(shared.clone(), session.clone(), ended.clone());
        shared
            .tracker
            .spawn(worker.instrument(tracing::debug_span!("spare")));
    }
    // Spares for uses only once there is a use to take them.
    if needed(&shared, &ended, |s| !s.uses.is_empty())
        .await
        .is_err()
    {
        return;
    }
    let visiting = &shared.visiting_spares;
    loop {
        while visiting.update(&shared, |idle| idle.len()) < count {
            let opened = tokio::select! {
                _ = ended.cancelled() => return,
                opened = open(&session, SpareRole::Visit) => opened,
            };
            match opened {
                Ok(spare) => {
                    // Checked under the lock: the session's end cancels
                    // `ended` before it clears the pool, so no spare of an
                    // ended session is left behind.
                    let kept = visiting.update(&shared, |idle| {
                        let kept = !ended.is_cancelled();
                        if kept {
                            idle.push((session.id, spare));
                        }
                        kept
                    });
                    if !kept {
                        return;
                    }
                }
                Err(err) => {
                    debug!(%err, "cannot open a spare for uses");
                    if pause(&ended).await.is_err() {
                        return;
                    }
                }
            }
        }
        tokio::select! {
            _ = ended.cancelled() => return,
            _ = visiting.taken.notified() => {}
        }
    }
}

/// One serving spare after another: open it, wait for the route to hand
/// it a stream, start that stream, open the next.
async fn serving(shared: Arc<Shared>, session: Session, ended: CancellationToken) {
    // Spares for serves only once there is a serve (or a grant) to reach.
    if needed(&shared, &ended, |s| !s.serves.is_empty())
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
                if pause(&ended).await.is_err() {
                    return;
                }
                continue;
            }
        };
        publish(&shared, |c| c.idle_serve += 1);
        let next = tokio::select! {
            _ = ended.cancelled() => None,
            next = next_message(&mut spare) => Some(next),
        };
        publish(&shared, |c| c.idle_serve -= 1);
        match next {
            None => return,
            Some(Ok(RouteMsg::Open { serve_id })) => {
                publish(&shared, |c| c.used_serve += 1);
                serve::open_on_spare(&shared, spare, serve_id);
            }
            Some(Ok(other)) => {
                debug!(?other, "route closed a spare");
                if pause(&ended).await.is_err() {
                    return;
                }
            }
            Some(Err(err)) => {
                debug!(%err, "spare lost");
                if pause(&ended).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn open(session: &Session, role: SpareRole) -> Result<Spare, DialError> {
    let hello = VnetMsg::Spare {
        role,
        pass: session.pass(role.purpose()),
    };
    tokio::time::timeout(data::DIAL_TIMEOUT, data::connect(&session.route, hello))
        .await
        .map_err(|_| DialError::Timeout(data::DIAL_TIMEOUT))?
}

/// Waits until the status satisfies `wanted`; `Err` if the session ended
/// first.
async fn needed(
    shared: &Shared,
    ended: &CancellationToken,
    mut wanted: impl FnMut(&crate::Status) -> bool,
) -> Result<(), ()> {
    let mut status = shared.status.subscribe();
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

/// Counts a stream started on a visiting spare.
pub(crate) fn count_used_for_visit(shared: &Shared) {
    publish(shared, |c| c.used_visit += 1);
}

fn publish(shared: &Shared, change: impl FnOnce(&mut crate::model::SpareCounts)) {
    shared.status.send_modify(|s| change(&mut s.spares));
}
