//! Errors at the vnet's boundaries, one enum each: what a [`VnetHandle`]
//! operation can fail with ([`VnetError`]), why a connection to the route
//! could not be opened ([`DialError`]) and why a live control session
//! ended ([`LinkLost`]). Refusals by the route or by another vnet arrive
//! as [`proto::Refusal`] and are carried as they are.
//!
//! [`VnetHandle`]: crate::VnetHandle
use net::HandshakeError;
use proto::codec::ProtoError;
use proto::message::RouteMsg;
use proto::Refusal;
use std::time::Duration;

/// Errors of handle operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VnetError {
    /// The control connection is down (reconnecting).
    #[error("not connected to the route")]
    NotConnected,
    /// The route (or another vnet, through it) refused.
    #[error("{0}")]
    Refused(Refusal),
    /// The route answered with something that does not fit.
    #[error("the route answered out of protocol: {0}")]
    Protocol(String),
    /// The route did not answer in time.
    #[error("no answer from the route within {0:?}")]
    Timeout(Duration),
    /// The operation does not fit the current state (unknown name, name
    /// taken, bad value).
    #[error("{0}")]
    Invalid(String),
    /// The vnet is shutting down.
    #[error("vnet is stopping")]
    Stopped,
}

/// Why a data or control connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// Connecting or the handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The route (or the serving vnet, through it) said no.
    #[error("{0}")]
    Refused(Refusal),
    /// The route answered with something that does not fit.
    #[error("route sent an unexpected {0}")]
    Unexpected(&'static str),
    /// No answer in time.
    #[error("no answer from the route within {0:?}")]
    Timeout(Duration),
    /// The connection closed or failed before the route answered.
    #[error("the route closed the connection before answering: {0}")]
    Lost(String),
    /// The client whose stream this was to be left before it started.
    #[error("the client left before the stream started: {0}")]
    ClientGone(std::io::Error),
}

/// Why a live control session ended on the route's side or the link's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkLost {
    /// The route closed the control connection.
    #[error("route closed the connection")]
    Closed,
    /// Nothing came from the route for a whole heartbeat.
    #[error("no word from the route for {0:?}")]
    Silent(Duration),
    /// Reading or writing a frame failed.
    #[error(transparent)]
    Broken(#[from] ProtoError),
    /// The route took none of our messages for a whole heartbeat.
    #[error("the route took nothing we sent for {0:?}")]
    Stuck(Duration),
    /// This many messages waited for the route to read them.
    #[error("{0} messages wait for the route to read them")]
    NotReading(usize),
    /// The route sent a message that has no place on a control connection.
    #[error("unexpected message from route: {0:?}")]
    Unexpected(Box<RouteMsg>),
}

impl LinkLost {
    /// Whether this says the route itself is gone or frozen (silent, or
    /// taking nothing we send), rather than this one connection failing.
    pub(crate) fn route_is_gone(&self) -> bool {
        matches!(self, LinkLost::Silent(_) | LinkLost::Stuck(_))
    }
}
