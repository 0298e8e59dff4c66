//! The route's side of the token exchange (see `proto::auth`) on a new
//! control connection, right after the vnet's hello.
//!
//! Nothing about the registry is said before it succeeds. On success both
//! sides hold the session secret that admits the vnet's data connections;
//! on failure the vnet gets a refusal saying which side is wrong, when
//! that can be told.
use futures::SinkExt;
use net::handshake::next_message;
use net::HandshakeError;
use proto::auth::{PakeMsg, RouteExchange, SessionSecret, Token};
use proto::features::Features;
use proto::message::{RouteMsg, VnetMsg};
use proto::{Refusal, RefusalCode};
use std::time::Duration;

use crate::conn::Half;

/// A vnet's hello: who it says it is, and its first token-exchange move.
pub struct Hello {
    /// The vnet's name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its opening message of the token exchange.
    pub pake: PakeMsg,
    /// The features it announced.
    pub features: Features,
}

/// Why a vnet did not prove the token.
#[derive(Debug, thiserror::Error)]
pub enum NotProved {
    /// It failed the exchange; the refusal is for the vnet.
    #[error("{0}")]
    Refused(Refusal),
    /// It did not finish in time.
    #[error("authentication not finished in {0:?}")]
    TimedOut(Duration),
}

/// Runs the token exchange with the vnet that sent `hello`, within
/// `timeout`.
///
/// # Errors
/// The vnet does not know the token (or knows one the route lacks),
/// breaks the exchange, or is too slow.
pub async fn prove(
    conn: &mut Half,
    hello: &Hello,
    token: &Token,
    timeout: Duration,
) -> Result<SessionSecret, NotProved> {
    let exchange = exchange(conn, hello, token);
    match tokio::time::timeout(timeout, exchange).await {
        Ok(proved) => proved.map_err(NotProved::Refused),
        Err(_) => Err(NotProved::TimedOut(timeout)),
    }
}

async fn exchange(conn: &mut Half, hello: &Hello, token: &Token) -> Result<SessionSecret, Refusal> {
    let protocol = |text: String| Refusal::new(RefusalCode::Protocol, text);
    let auth = |text: &str| Refusal::new(RefusalCode::Auth, text);
    let (exchange, ours, confirm) =
        RouteExchange::answer(token, &hello.name, &hello.group, &hello.pake)
            .map_err(|err| protocol(err.to_string()))?;
    let challenge = RouteMsg::Challenge {
        pake: ours,
        confirm,
        token: token.is_set(),
    };
    conn.send(challenge)
        .await
        .map_err(|e| protocol(e.to_string()))?;
    match next_message(conn).await {
        Ok(VnetMsg::Auth { confirm }) => exchange
            .check(&confirm)
            .map_err(|_| auth("authentication failed: wrong or missing token")),
        Ok(_) => Err(protocol("expected the token confirmation".into())),
        Err(HandshakeError::Closed) => Err(auth(
            "the vnet left without confirming: it did not accept the route's confirmation \
             (tokens differ, or only the route has one)",
        )),
        Err(err) => Err(protocol(err.to_string())),
    }
}
