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
use net::ahead::Ahead;
use net::handshake::send_message;
use net::relay::bridge;
use net::Unframed;
use proto::message::RouteMsg;
use proto::pass::{DataPass, Purpose};
use proto::{Refusal, RefusalCode, ServeId, SessionId, Ticket};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::{debug, info};

use crate::conn::{refuse, Half};
use crate::registry::VisitTarget;
use crate::spare::{self, Offered};
use crate::state::Hub;
use proto::text::Escaped;

/// How long a visitor waits for the serving vnet to dial back.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The serving vnet's half, handed to the waiting visitor.
pub struct ServingHalf {
    conn: Half,
    result: Result<(), Refusal>,
}

/// A visitor waiting for its serving half: the session that must answer,
/// and where the answer goes.
type Waiting = (SessionId, oneshot::Sender<ServingHalf>);

/// Visitors waiting for their serving half, by ticket.
#[derive(Default)]
pub struct Pending {
    waiting: Mutex<HashMap<Ticket, Waiting>>,
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
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Ticket, Waiting>> {
        self.waiting.lock().expect("pending map poisoned")
    }

    fn open(&self, answerer: SessionId) -> (TicketGuard<'_>, oneshot::Receiver<ServingHalf>) {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.lock();
        let ticket = loop {
            let ticket = Ticket(rand::random());
            if !waiting.contains_key(&ticket) {
                break ticket;
            }
        };
        waiting.insert(ticket, (answerer, tx));
        (
            TicketGuard {
                pending: self,
                ticket,
            },
            rx,
        )
    }

    /// Takes the waiter of `ticket` if `session` is the one asked.
    fn take(&self, ticket: Ticket, session: SessionId) -> Option<oneshot::Sender<ServingHalf>> {
        let mut waiting = self.lock();
        match waiting.get(&ticket) {
            Some((answerer, _)) if *answerer == session => waiting.remove(&ticket).map(|w| w.1),
            _ => None,
        }
    }
}

/// Handles a visitor whose `Visit` has been read, with its pass (on a new
/// connection, or on a visiting spare of the same session).
pub async fn visit(mut visitor: Half, serve_id: ServeId, pass: DataPass, hub: Arc<Hub>) {
    let target = {
        let mut registry = hub.registry();
        registry
            .admit(&pass, Purpose::Visit(serve_id))
            .and_then(|admitted| registry.visit(&admitted.group, serve_id))
    };
    let target = match target {
        Ok(target) => target,
        Err(refusal) => {
            info!(serve = %serve_id, reason = %refusal, "visit refused");
            return refuse(visitor, refusal).await;
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
        Err(NotServed::Refused(refusal)) => {
            info!(serve = %serve_id, vnet = %target.vnet_id, reason = %Escaped(&refusal.text), "visit refused");
            return refuse(visitor, refusal).await;
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
        done = bridge(visitor, Unframed::from_framed(server)) => match done {
            Ok((up, down)) => debug!(serve = %serve_id, up, down, "stream closed"),
            Err(err) => debug!(serve = %serve_id, %err, "stream ended with an error"),
        },
        _ = hub.shutdown.cancelled() => {}
    }
}

/// Why a visitor gets no serving half.
enum NotServed {
    /// Refused, with the reason for the visitor.
    Refused(Refusal),
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
async fn dial_back(target: &VisitTarget, serve_id: ServeId, hub: &Hub) -> Result<Half, Refusal> {
    let (guard, answer) = hub.pending.open(target.session);
    let open = RouteMsg::OpenStream {
        ticket: guard.ticket,
        serve_id,
    };
    if target.link.tx.try_send(open).is_err() {
        return Err(Refusal::new(
            RefusalCode::Busy,
            format!(
                "vnet {} serving {serve_id} is not answering (not keeping up)",
                target.vnet_id
            ),
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
            result: Err(refusal),
            ..
        })) => Err(refusal),
        Ok(Err(_)) | Err(_) => Err(Refusal::new(
            RefusalCode::Busy,
            format!(
                "vnet {} serving {serve_id} did not answer in time",
                target.vnet_id
            ),
        )),
    }
}

/// Handles a serving vnet's data connection whose `Accept` hello has been
/// read: hands it to the visitor holding that ticket, if the pass is the
/// asked session's and was made for this ticket.
pub async fn accept(
    conn: Half,
    ticket: Ticket,
    pass: DataPass,
    result: Result<(), Refusal>,
    hub: Arc<Hub>,
) {
    let admitted = hub.registry().admit(&pass, Purpose::Accept(ticket));
    let waiting = admitted.and_then(|_| {
        hub.pending
            .take(ticket, pass.session)
            .ok_or_else(|| Refusal::new(RefusalCode::NotFound, "unknown or expired ticket"))
    });
    match waiting {
        Ok(waiting) => {
            // If the visitor gave up meanwhile, dropping the half closes it.
            let _ = waiting.send(ServingHalf { conn, result });
        }
        Err(refusal) => {
            info!(reason = %refusal, "accept refused");
            refuse(conn, refusal).await;
        }
    }
}
