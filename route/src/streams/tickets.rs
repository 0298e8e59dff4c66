//! Dial-back tickets: a visitor waiting for its serving half while the
//! serving vnet is asked, on its control connection, to dial back.
//!
//! A ticket is a fresh random number, valid for one answer from one
//! session. It lives as long as its [`TicketGuard`]: when the visitor's
//! task stops waiting (answered, timed out, gone), the ticket is
//! forgotten, so a late or guessed `Accept` finds nothing.
use proto::{Refusal, SessionId, Ticket};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::oneshot;

use crate::conn::Half;

/// The serving vnet's half, handed to the waiting visitor.
pub struct ServingHalf {
    /// The dialed-back connection.
    pub conn: Half,
    /// Whether the vnet reached its service; the refusal is for the
    /// visitor.
    pub result: Result<(), Refusal>,
}

/// A visitor waiting for its serving half: the session that must answer,
/// and where the answer goes.
type Waiting = (SessionId, oneshot::Sender<ServingHalf>);

/// Visitors waiting for their serving half, by ticket.
#[derive(Default)]
pub struct Pending {
    waiting: Mutex<HashMap<Ticket, Waiting>>,
}

/// An open ticket; dropping it forgets the ticket.
pub struct TicketGuard<'a> {
    pending: &'a Pending,
    ticket: Ticket,
}

impl TicketGuard<'_> {
    /// The ticket to send to the serving vnet.
    pub fn ticket(&self) -> Ticket {
        self.ticket
    }
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.ticket);
    }
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, HashMap<Ticket, Waiting>> {
        self.waiting.lock().expect("pending map poisoned")
    }

    /// Opens a ticket only `answerer` may answer; the serving half comes
    /// on the receiver.
    pub fn open(&self, answerer: SessionId) -> (TicketGuard<'_>, oneshot::Receiver<ServingHalf>) {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.lock();
        let ticket = loop {
            let ticket = Ticket(rand::random());
            if !waiting.contains_key(&ticket) {
                break ticket;
            }
        };
        waiting.insert(ticket, (answerer, tx));
        let guard = TicketGuard {
            pending: self,
            ticket,
        };
        (guard, rx)
    }

    /// Takes the waiter of `ticket` if `session` is the one asked.
    pub fn take(&self, ticket: Ticket, session: SessionId) -> Option<oneshot::Sender<ServingHalf>> {
        let mut waiting = self.lock();
        match waiting.get(&ticket) {
            Some((answerer, _)) if *answerer == session => waiting.remove(&ticket).map(|w| w.1),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_answered_once_by_its_session_while_open() {
        let pending = Pending::default();
        let (asked, other) = (SessionId(1), SessionId(2));
        let (guard, _answer) = pending.open(asked);
        let ticket = guard.ticket();
        assert!(pending.take(ticket, other).is_none(), "another session");
        assert!(pending.take(Ticket(ticket.0 ^ 1), asked).is_none());
        assert!(pending.take(ticket, asked).is_some());
        assert!(pending.take(ticket, asked).is_none(), "twice");

        let (guard, _answer) = pending.open(asked);
        let ticket = guard.ticket();
        drop(guard);
        assert!(pending.take(ticket, asked).is_none(), "forgotten");
    }
}
