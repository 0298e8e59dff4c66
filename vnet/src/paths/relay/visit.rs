//! The visiting side's start of a stream through the route: a use's
//! client is carried to its serve on a spare data connection, or on a new
//! one when none is left.
//!
//! The client's first bytes follow the `Visit` at once (see
//! `net::ahead`), so they travel while the route reaches the serving
//! vnet instead of after it has answered. A spare that closes before
//! answering carried none of them; the next one gets the same bytes.
use net::ahead::{Ahead, Answered};
use net::Unframed;
use proto::message::VnetMsg;
use proto::pass::Purpose;
use proto::ServeId;
use tokio::io::AsyncRead;
use tracing::debug;

use super::dial::{self, DIAL_TIMEOUT};
use super::spares::VisitingSpares;
use crate::control::session::Session;
use crate::error::DialError;
use crate::link::{Conn, FramedConn};

/// A started stream: the route's side of it, and how many of the client's
/// bytes have gone ahead on it (for the stream's byte counts).
pub(crate) struct Started {
    pub route_side: Unframed<Conn>,
    pub sent_ahead: u64,
}

/// Starts a stream to `serve_id` for `client`, once the route has
/// answered `Ready`.
///
/// # Errors
/// The route or the serving vnet refused, no answer came in time, or the
/// client left first ([`DialError::ClientGone`]).
pub(crate) async fn start<C: AsyncRead + Unpin>(
    spares: &VisitingSpares,
    session: &Session,
    serve_id: ServeId,
    client: &mut C,
) -> Result<Started, DialError> {
    // Each attempt carries a pass of its own: the route admits one once.
    let visit = || VnetMsg::Visit {
        serve_id,
        pass: session.pass(Purpose::Visit(serve_id)),
    };
    let mut ahead = Ahead::default();
    while let Some(conn) = spares.take(session) {
        match answered(conn, Some(visit()), &mut ahead, client).await {
            Err(DialError::Lost(err)) => debug!(%err, "spare was closed; trying another"),
            Ok(route_side) => {
                spares.count_used();
                let sent_ahead = ahead.bytes.len() as u64;
                return Ok(Started {
                    route_side,
                    sent_ahead,
                });
            }
            Err(err) => return Err(err),
        }
    }
    let conn = dial::connect(&session.route, visit()).await?;
    let route_side = answered(conn, None, &mut ahead, client).await?;
    let sent_ahead = ahead.bytes.len() as u64;
    Ok(Started {
        route_side,
        sent_ahead,
    })
}

/// Sends `visit` (unless the connection's hello was that already) and the
/// client's bytes on `conn`, until the route answers.
async fn answered<C: AsyncRead + Unpin>(
    mut conn: FramedConn,
    visit: Option<VnetMsg>,
    ahead: &mut Ahead,
    client: &mut C,
) -> Result<Unframed<Conn>, DialError> {
    let answer = async {
        match visit {
            Some(visit) => ahead.ask(client, &mut conn, visit).await,
            None => ahead.until_answer(client, &mut conn).await,
        }
    };
    let answer = tokio::time::timeout(DIAL_TIMEOUT, answer)
        .await
        .map_err(|_| DialError::Timeout(DIAL_TIMEOUT))?;
    match answer {
        Answered::Answer(answer) => dial::started(conn, answer),
        Answered::Lost(why) => Err(DialError::Lost(why)),
        Answered::SourceFailed(err) => Err(DialError::ClientGone(err)),
    }
}
