//! Data connections to the route: dial with a hello (`Visit`, `Accept` or
//! `Spare`), bounded in time, then read the route's answer. After `Ready`
//! the socket carries raw bytes.
use net::Unframed;
use proto::message::{RouteMsg, VnetMsg};
use std::time::Duration;

use crate::error::DialError;
use crate::link::{self, Conn, FramedConn, RouteTarget};

/// How long dialing the route may take, connect to `Ready`. Covers the
/// route's wait for the serving side (10 s) with a margin.
pub(crate) const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects and sends `hello` within [`DIAL_TIMEOUT`]; the route's answer
/// is the caller's to read.
///
/// # Errors
/// Connection, TLS or preamble failure, or a timeout.
pub(crate) async fn connect(route: &RouteTarget, hello: VnetMsg) -> Result<FramedConn, DialError> {
    tokio::time::timeout(DIAL_TIMEOUT, link::connect(route, hello))
        .await
        .map_err(|_| DialError::Timeout(DIAL_TIMEOUT))?
}

/// Opens a data connection: `Ready` means raw bytes may flow.
///
/// # Errors
/// As [`connect`], plus a refusal or an answer that does not fit.
pub(crate) async fn dial(route: &RouteTarget, hello: VnetMsg) -> Result<Unframed<Conn>, DialError> {
    let (framed, answer) = tokio::time::timeout(DIAL_TIMEOUT, link::open(route, hello))
        .await
        .map_err(|_| DialError::Timeout(DIAL_TIMEOUT))??;
    started(framed, answer)
}

/// A data connection whose hello got `answer`: raw bytes after `Ready`.
///
/// # Errors
/// A refusal, or an answer that does not belong here.
pub(crate) fn started(framed: FramedConn, answer: RouteMsg) -> Result<Unframed<Conn>, DialError> {
    match answer {
        RouteMsg::Ready => Ok(Unframed::from_framed(framed)),
        RouteMsg::Refused(refusal) => Err(DialError::Refused(refusal)),
        _ => Err(DialError::Unexpected("message on a data connection")),
    }
}
