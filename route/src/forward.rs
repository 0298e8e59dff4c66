//! Data connections: pairing a visitor with the serving vnet, then splicing.
//!
//! A visitor's connection (`Visit`) waits here under a fresh random ticket
//! while the serving vnet is asked, on its control connection, to dial
//! back with that ticket (`Accept`). The visitor's task owns the pairing
//! and the splice; the ticket is forgotten when that task ends, so a late
//! or guessed `Accept` finds nothing.
//!
//! When the serving vnet keeps a spare data connection open, the stream
//! goes on that instead and none of the above is needed; the visitor's
//! first bytes then follow the `Open` at once (`proto::ahead`).
use proto::ahead::Ahead;
use proto::codec::RouteCodec;
use proto::io::{send_message, splice, Unframed};
use proto::message::RouteMsg;
use proto::{ServeId, SessionKey, Ticket};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::codec::Framed;
use tracing::{debug, info};

use crate::registry::VisitTarget;
use crate::spare::{self, Offered};
use crate::{Conn, Hub};

/// How long a visitor waits for the serving vnet to dial back.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

type Half = Framed<Conn, RouteCodec>;

/// The serving vnet's half, handed to the waiting visitor.
pub struct ServingHalf {
    conn: Half,
    result: Result<(), String>,
}

/// Visitors waiting for their serving half, by ticket.
#[derive(Default)]
pub struct Pending {
    waiting: Mutex<HashMap<Ticket, oneshot::Sender<ServingHalf>>>,
}

/// Removes its ticket from [`Pending`] when dropped.
struct TicketGuard<'a> {
    pending: &'a Pending,
    ticket: Ticket,
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.ticket);
    }
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Ticket, oneshot::Sender<ServingHalf>>> {
        self.waiting.lock().expect("pending map poisoned")
    }

    fn open(&self) -> (TicketGuard<'_>, oneshot::Receiver<ServingHalf>) {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.lock();
        let ticket = loop {
            let ticket = Ticket(rand::random());
            if !waiting.contains_key(&ticket) {
                break ticket;
            }
        };
        waiting.insert(ticket, tx);
        (
            TicketGuard {
                pending: self,
                ticket,
            },
            rx,
        )
    }

    fn take(&self, ticket: Ticket) -> Option<oneshot::Sender<ServingHalf>> {
        self.lock().remove(&ticket)
    }
}

async fn refuse(mut conn: Half, reason: String) {
    // Best effort: the peer may already be gone.
    let _ = send_message(&mut conn, RouteMsg::Refused { reason }).await;
}

/// Handles a visitor whose `Visit` hello has been read.
pub async fn visit(mut visitor: Half, serve_id: ServeId, session: SessionKey, hub: Arc<Hub>) {
    let target = hub.registry().visit(session, serve_id);
    let target = match target {
        Ok(target) => target,
        Err(reason) => {
            info!(serve = %serve_id, %reason, "visit refused");
            return refuse(visitor, reason).await;
        }
    };
    // The visitor's first bytes may have come with its hello.
    let mut ahead = Ahead::new(&visitor.read_buffer_mut().split());
    let serving = tokio::select! {
        serving = serving_half(&target, serve_id, &hub, &mut visitor, &mut ahead) => serving,
        _ = hub.shutdown.cancelled() => return,
    };
    let (mut server, on_spare) = match serving {
        Ok(serving) => serving,
        Err(NotServed::VisitorGone) => return,
        Err(NotServed::Refused(reason)) => {
            info!(serve = %serve_id, vnet = %target.vnet_id, %reason, "visit refused");
            return refuse(visitor, reason).await;
        }
    };
    if send_message(&mut visitor, RouteMsg::Ready).await.is_err()
        || (!on_spare && send_message(&mut server, RouteMsg::Ready).await.is_err())
    {
        debug!(serve = %serve_id, "a side left before the stream started");
        return;
    }
    debug!(serve = %serve_id, vnet = %target.vnet_id, "stream paired");
    let mut visitor = Unframed::from_framed(visitor);
    if !on_spare {
        // Nothing went ahead on a dialed-back half: it gets the bytes first.
        visitor.leftover = std::mem::take(&mut ahead.bytes).freeze();
    }
    drop(ahead); // delivered or handed on: not kept for the stream's life
    tokio::select! {
        done = splice(visitor, Unframed::from_framed(server)) => match done {
            Ok((up, down)) => debug!(serve = %serve_id, up, down, "stream closed"),
            Err(err) => debug!(serve = %serve_id, %err, "stream ended with an error"),
        },
        _ = hub.shutdown.cancelled() => {}
    }
}

/// Why a visitor gets no serving half.
enum NotServed {
    /// Refused, with the reason for the visitor.
    Refused(String),
    /// The visitor left meanwhile.
    VisitorGone,
}

/// The serving vnet's half of a stream to `serve_id`: on one of its spares
/// if it has one left, with the visitor's first bytes sent ahead, else
/// dialed back on request. Also says whether it is a spare (a dialed-back
/// half waits for `Ready`; a spare carries bytes as soon as it has
/// answered, and has been sent everything in `ahead`).
async fn serving_half(
    target: &VisitTarget,
    serve_id: ServeId,
    hub: &Hub,
    visitor: &mut Half,
    ahead: &mut Ahead,
) -> Result<(Half, bool), NotServed> {
    while let Some(spare) = target.link.spares.claim() {
        match spare::offer(spare, serve_id, OPEN_TIMEOUT, visitor.get_mut(), ahead).await {
            Offered::Open(conn) => return Ok((conn, true)),
            Offered::Refused(reason) => return Err(NotServed::Refused(reason)),
            Offered::VisitorGone => return Err(NotServed::VisitorGone),
            Offered::Dead => {}
        }
    }
    dial_back(target, serve_id, hub)
        .await
        .map(|conn| (conn, false))
        .map_err(NotServed::Refused)
}

/// Asks the serving vnet on its control connection to dial back with a
/// fresh ticket, and waits for that connection.
async fn dial_back(target: &VisitTarget, serve_id: ServeId, hub: &Hub) -> Result<Half, String> {
    let (guard, answer) = hub.pending.open();
    let open = RouteMsg::OpenStream {
        ticket: guard.ticket,
        serve_id,
    };
    if target.link.tx.try_send(open).is_err() {
        return Err(format!(
            "vnet {} serving {serve_id} is not answering (not keeping up)",
            target.vnet_id
        ));
    }
    let answer = tokio::time::timeout(OPEN_TIMEOUT, answer).await;
    drop(guard);
    match answer {
        Ok(Ok(ServingHalf {
            conn,
            result: Ok(()),
        })) => Ok(conn),
        Ok(Ok(ServingHalf {
            result: Err(reason),
            ..
        })) => Err(reason),
        Ok(Err(_)) | Err(_) => Err(format!(
            "vnet {} serving {serve_id} did not answer in time",
            target.vnet_id
        )),
    }
}

/// Handles a serving vnet's data connection whose `Accept` hello has been
/// read: hands it to the visitor holding that ticket.
pub async fn accept(conn: Half, ticket: Ticket, result: Result<(), String>, hub: Arc<Hub>) {
    match hub.pending.take(ticket) {
        Some(waiting) => {
            // If the visitor gave up meanwhile, dropping the half closes it.
            let _ = waiting.send(ServingHalf { conn, result });
        }
        None => {
            info!("accept refused: unknown or expired ticket");
            refuse(conn, "unknown or expired ticket".into()).await;
        }
    }
}
