//! Data connections: one per mapped connection from each side, never
//! shared, so TCP flow control applies to each stream on its own.
//!
//! A data connection's first message says what it is for, and its pass
//! (made with its session's secret, used once) says whose it is:
//!
//! - `Visit`: a visitor for a serve; [`pairing`] finds the serving half
//!   and bridges the two.
//! - `Accept`: a serving vnet dialing back with a ticket
//!   (`streams::tickets`); it is handed to the visitor waiting on that
//!   ticket.
//! - `Spare`: opened ahead of need; a serving spare waits in its
//!   session's pool (`streams::spares`), a visiting spare waits here for
//!   its `Visit`.
//!
//! What these tasks share through the `Hub` (tickets, spare pools, open
//! stream counts) is in `streams`.
//!
//! Each entry point runs in the connection's own task and returns when
//! the stream is over (or handed to the task that owns it).
use net::handshake::next_message;
use proto::message::{SpareRole, VnetMsg};
use proto::pass::{DataPass, Purpose};
use proto::{Refusal, RefusalCode, ServeId, Ticket, VnetId};
use std::sync::Arc;
use tracing::{debug, info};

use crate::conn::{refuse, Half};
use crate::counters::Counters;
use crate::registry::Admitted;
use crate::state::Hub;
use crate::streams::spares::{Spares, MAX_SPARES};
use crate::streams::tickets::ServingHalf;

mod pairing;

/// Handles a visitor whose `Visit` has been read, with its pass (on a new
/// connection, or on a visiting spare of the same session).
pub async fn visit(visitor: Half, serve_id: ServeId, pass: DataPass, hub: Arc<Hub>) {
    let target = {
        let mut registry = hub.registry();
        registry
            .admit(&pass, Purpose::Visit(serve_id))
            .and_then(|admitted| {
                let target = registry.visit(&admitted.group, serve_id, admitted.vnet_id)?;
                Ok((target, admitted))
            })
    };
    match target {
        Ok((target, admitted)) => {
            let max = hub.config().max_connections;
            let counted = hub
                .streams
                .open(target.session, pass.session, serve_id, max);
            match counted {
                Ok(counted) => {
                    pairing::pair(visitor, &admitted.link, target, serve_id, counted, &hub).await
                }
                Err(refusal) => {
                    info!(serve = %serve_id, reason = %refusal, "visit refused");
                    refuse(visitor, refusal, &hub.counters).await
                }
            }
        }
        Err(refusal) => {
            info!(serve = %serve_id, reason = %refusal, "visit refused");
            refuse(visitor, refusal, &hub.counters).await
        }
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
        hub.tickets
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
            refuse(conn, refusal, &hub.counters).await;
        }
    }
}

/// Handles a data connection whose `Spare` hello has been read.
pub async fn spare(conn: Half, role: SpareRole, pass: DataPass, hub: Arc<Hub>) {
    let admitted = hub.registry().admit(&pass, role.purpose());
    let admitted = match admitted {
        Ok(admitted) => admitted,
        Err(refusal) => {
            info!(reason = %refusal, "spare refused");
            return refuse(conn, refusal, &hub.counters).await;
        }
    };
    let spares = hub.spares.of(pass.session);
    match role {
        SpareRole::Serve => {
            keep_serving(conn, spares.as_deref(), admitted.vnet_id, &hub.counters).await
        }
        SpareRole::Visit => wait_for_visit(conn, spares.as_deref(), admitted, pass, hub).await,
    }
}

/// Puts a serving spare in its session's pool, or refuses it.
async fn keep_serving(conn: Half, spares: Option<&Spares>, vnet: VnetId, counters: &Counters) {
    let refused = match spares {
        Some(spares) => spares.keep(conn),
        None => Some(conn),
    };
    if let Some(conn) = refused {
        let max = MAX_SPARES;
        info!(%vnet, max, "spare refused: the vnet keeps too many, or has left");
        let text = "too many spare connections, or the session has ended";
        refuse(conn, Refusal::new(RefusalCode::Limit, text), counters).await;
    }
}

/// Holds a visiting spare until its vnet sends the `Visit` (with a pass
/// of the same session), then goes on as a visit.
async fn wait_for_visit(
    mut conn: Half,
    spares: Option<&Spares>,
    admitted: Admitted,
    pass: DataPass,
    hub: Arc<Hub>,
) {
    let vnet = admitted.vnet_id;
    let Some(slot) = spares.and_then(Spares::visiting_slot) else {
        info!(%vnet, max = MAX_SPARES, "spare refused: the vnet keeps too many");
        let refusal = Refusal::new(RefusalCode::Limit, "too many spare connections");
        return refuse(conn, refusal, &hub.counters).await;
    };
    // The session's token is a child of the route's: it closes with either.
    let cancel = admitted.link.cancel;
    let next = cancel.run_until_cancelled(next_message(&mut conn)).await;
    drop(slot);
    match next {
        None => {}
        Some(Ok(VnetMsg::Visit {
            serve_id,
            pass: visit_pass,
        })) if visit_pass.session == pass.session => {
            visit(conn, serve_id, visit_pass, hub).await;
        }
        Some(Ok(_)) => {
            info!("dropped spare: expected a visit of its session");
            let refusal = Refusal::new(
                RefusalCode::Protocol,
                "expected a visit of this session on a spare connection",
            );
            refuse(conn, refusal, &hub.counters).await;
        }
        Some(Err(err)) => debug!(%err, "spare closed unused"),
    }
}
