//! Pairing an admitted visitor with the serving half, then bridging the
//! two until both directions are done.
//!
//! The serving half is one of the serving vnet's spares when it has one
//! left (the visitor's first bytes go right behind the `Open`, see
//! `net::ahead`); otherwise the vnet is asked, on its control connection,
//! to dial back with a ticket. The visitor's task owns the wait and the
//! ticket; the paired stream gets a small task of its own.
use net::ahead::Ahead;
use net::handshake::send_message;
use net::relay::{bridge, Tallied};
use net::Unframed;
use proto::message::RouteMsg;
use proto::text::Escaped;
use proto::{Refusal, RefusalCode, ServeId};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, Instrument, Span};

use crate::conn::{refuse, Conn, Half};
use crate::link::VnetLink;
use crate::registry::VisitTarget;
use crate::state::Hub;
use crate::streams::counts::Counted;
use crate::streams::spares::{offer, Offered};
use crate::streams::tickets::ServingHalf;
use crate::streams::traffic::Flowing;

/// How long a visitor waits for the serving vnet to dial back (or to
/// answer on a spare).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a visitor gets no serving half.
enum NotServed {
    /// Refused, with the reason for the visitor.
    Refused(Refusal),
    /// The visitor left meanwhile.
    VisitorGone,
}

/// Finds the serving half for a visitor (of the vnet on `visiting`) to
/// `serve_id` on `target` and tells both sides the stream is ready, then
/// hands the stream to a task of its own.
///
/// The stream's task holds only what streaming needs: it is what an idle
/// connection costs, while this one (with the wait, the ticket and the
/// refusals in its state) ends here.
pub async fn pair(
    visitor: Half,
    visiting: &VnetLink,
    target: VisitTarget,
    serve_id: ServeId,
    counted: Counted,
    hub: &Hub,
) {
    let group = target.group.clone();
    let ready = ready_pair(visitor, &target, serve_id, hub);
    let ready = hub.shutdown.run_until_cancelled(ready).await.flatten();
    let Some((visitor, server, sent_ahead)) = ready else {
        return;
    };
    debug!(serve = %serve_id, vnet = %target.vnet_id, "stream paired");
    let flowing = hub.traffic.started(&group, serve_id);
    let tally = flowing.tally();
    // What the server had before the stream started: sent ahead on a
    // spare, or still to be written from the visitor's leftover.
    tally.add_read(sent_ahead + visitor.leftover.len() as u64);
    let visitor = Unframed {
        stream: Tallied::new(visitor.stream, tally),
        leftover: visitor.leftover,
    };
    let stream = Stream {
        visitor,
        server,
        visiting_lost: visiting.lost.clone(),
        serving_lost: target.link.lost.clone(),
        shutdown: hub.shutdown.clone(),
        serve_id,
        counted,
        flowing,
    };
    hub.tracker.spawn(stream.run().instrument(Span::current()));
}

/// A paired stream, bridged until both directions are done, the route
/// stops, or either vnet is lost (then both ends are reset).
struct Stream {
    /// Its bytes counted for the serve's traffic as they move.
    visitor: Unframed<Tallied<Conn>>,
    server: Unframed<Conn>,
    visiting_lost: CancellationToken,
    serving_lost: CancellationToken,
    shutdown: CancellationToken,
    serve_id: ServeId,
    /// Counted against `max_connections` while it lives.
    counted: Counted,
    /// Counted open for the status page while it lives.
    flowing: Flowing,
}

impl Stream {
    async fn run(self) {
        let serve_id = self.serve_id;
        let lost = async {
            tokio::select! {
                _ = self.visiting_lost.cancelled() => "visiting",
                _ = self.serving_lost.cancelled() => "serving",
            }
        };
        // Dropping the bridge resets both ends.
        tokio::select! {
            done = bridge(self.visitor, self.server) => match done {
                Ok((up, down)) => debug!(serve = %serve_id, up, down, "stream closed"),
                Err(err) => debug!(serve = %serve_id, %err, "stream ended with an error"),
            },
            _ = self.shutdown.cancelled() => {}
            side = lost => debug!(serve = %serve_id, side, "a vnet was lost; stream reset"),
        }
        drop(self.counted);
        drop(self.flowing);
    }
}

/// The two halves of a stream, both told it is ready, with the bytes each
/// has read ahead of the other, and how many of the visitor's bytes the
/// server has had already; `None` when it cannot start (the visitor has
/// been told why, if it is still there).
async fn ready_pair(
    mut visitor: Half,
    target: &VisitTarget,
    serve_id: ServeId,
    hub: &Hub,
) -> Option<(Unframed<Conn>, Unframed<Conn>, u64)> {
    // The visitor's first bytes may have come with its hello.
    let mut ahead = Ahead::new(&visitor.read_buffer_mut().split());
    let serving = serving_half(target, serve_id, hub, &mut visitor, &mut ahead).await;
    let (mut server, on_spare) = match serving {
        Ok(serving) => serving,
        Err(NotServed::VisitorGone) => return None,
        Err(NotServed::Refused(refusal)) => {
            let (vnet, reason) = (target.vnet_id, Escaped(&refusal.text));
            info!(serve = %serve_id, %vnet, %reason, "visit refused");
            refuse(visitor, refusal, &hub.counters).await;
            return None;
        }
    };
    if send_message(&mut visitor, RouteMsg::Ready).await.is_err()
        || (!on_spare && send_message(&mut server, RouteMsg::Ready).await.is_err())
    {
        debug!(serve = %serve_id, "a side left before the stream started");
        return None;
    }
    let mut visitor = Unframed::from_framed(visitor);
    let mut sent_ahead = ahead.bytes.len() as u64;
    if !on_spare {
        // Nothing went ahead on a dialed-back half: it gets the bytes first
        // (and the bridge counts them).
        visitor.leftover = ahead.bytes.freeze();
        sent_ahead = 0;
    }
    Some((visitor, Unframed::from_framed(server), sent_ahead))
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
    if let Some(spares) = hub.spares.of(target.session) {
        while let Some(spare) = spares.claim() {
            let open = (serve_id, target.visitor);
            match offer(spare, open, OPEN_TIMEOUT, visitor.get_mut(), ahead).await {
                Offered::Open(conn) => return Ok((conn, true)),
                Offered::Refused(reason) => return Err(NotServed::Refused(reason)),
                Offered::VisitorGone => return Err(NotServed::VisitorGone),
                Offered::Dead => {}
            }
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
    let vnet = target.vnet_id;
    let (guard, answer) = hub.tickets.open(target.session);
    let ticket = guard.ticket();
    if target
        .link
        .aside(RouteMsg::OpenStream {
            ticket,
            serve_id,
            from: Some(target.visitor),
        })
        .is_err()
    {
        return Err(Refusal::new(
            RefusalCode::Busy,
            format!("vnet {vnet} serving {serve_id} is not answering (not keeping up)"),
        ));
    }
    let answer = tokio::time::timeout(OPEN_TIMEOUT, answer).await;
    drop(guard);
    match answer {
        Ok(Ok(ServingHalf { conn, result })) => result.map(|()| conn),
        Ok(Err(_)) | Err(_) => Err(Refusal::new(
            RefusalCode::Busy,
            format!("vnet {vnet} serving {serve_id} did not answer in time"),
        )),
    }
}
