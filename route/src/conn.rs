//! A connection as the route holds it, from its first byte to its first
//! message: TLS if configured, the preambles both ways, and the hello.
//!
//! Every task owns its connection as a [`Half`] (framed, route side of the
//! codec) until raw bytes follow; [`refuse`] is the one way a connection
//! is turned away with a reason.
use net::handshake::{next_message, read_preamble, send_message, write_preamble_and};
use net::HandshakeError;
use proto::codec::RouteCodec;
use proto::message::{RouteMsg, VnetMsg};
use proto::preamble::PreambleError;
use proto::{Refusal, RefusalCode, MAX_HELLO_LEN};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::admission::Place;
use crate::counters::Counters;
use crate::tls::ServerTls;

/// A connection as the route handles it: plain or TLS.
pub type Conn = net::Transport<TcpStream>;

/// A connection with the route's framing: messages from a vnet in,
/// messages to it out.
pub type Half = Framed<Conn, RouteCodec>;

/// Why a connection never got as far as its first message.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS, a preamble or the first frame failed.
    #[error("bad handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer did not finish within the handshake timeout.
    #[error("handshake not finished in {0:?}")]
    TimedOut(Duration),
}

/// Completes TLS if configured, reads the peer's preamble, answers with
/// ours, and reads the first frame, all within `timeout`, telling `place`
/// of each step. The frame limit stays small until a vnet has proved the
/// token.
///
/// # Errors
/// The peer is too slow, is not a vnet of our protocol version, or sent an
/// invalid first message (it is told why, when it can be).
pub async fn start(
    stream: TcpStream,
    tls: Option<&ServerTls>,
    timeout: Duration,
    place: &Place,
) -> Result<(Half, VnetMsg), StartError> {
    match tokio::time::timeout(timeout, handshake(stream, tls, place)).await {
        Ok(started) => Ok(started?),
        Err(_) => Err(StartError::TimedOut(timeout)),
    }
}

async fn handshake(
    stream: TcpStream,
    tls: Option<&ServerTls>,
    place: &Place,
) -> Result<(Half, VnetMsg), HandshakeError> {
    let mut stream = match tls {
        None => Conn::Plain(stream),
        Some(tls) => {
            let secured = tls.acceptor.accept(stream).await?;
            place.progressed(Instant::now());
            Conn::Tls(Box::new(secured.into()))
        }
    };
    match read_preamble(&mut stream).await {
        Ok(()) => {}
        Err(err @ HandshakeError::Preamble(PreambleError::Version { .. })) => {
            // Tell an outdated vnet what we speak, so it can say so too.
            let _ = write_preamble_and::<_, VnetMsg, RouteMsg>(&mut stream, None).await;
            return Err(err);
        }
        Err(err) => return Err(err),
    }
    place.progressed(Instant::now());
    write_preamble_and::<_, VnetMsg, RouteMsg>(&mut stream, None).await?;
    let mut conn = Framed::new(stream, RouteCodec::with_limit(MAX_HELLO_LEN));
    let first = next_message(&mut conn).await?;
    place.progressed(Instant::now());
    if let Err(err) = first.validate() {
        tell(conn, Refusal::new(RefusalCode::Protocol, err.to_string())).await;
        return Err(HandshakeError::Invalid(err));
    }
    Ok((conn, first))
}

/// Tells the peer why it is turned away, then closes the connection;
/// `counters` count it by reason. Best effort: the peer may already be
/// gone.
pub async fn refuse(conn: Half, refusal: Refusal, counters: &Counters) {
    counters.refused(refusal.code);
    tell(conn, refusal).await;
}

/// Tells the peer why it is turned away (best effort) and closes it.
async fn tell(mut conn: Half, refusal: Refusal) {
    let _ = send_message(&mut conn, RouteMsg::Refused(refusal)).await;
}
