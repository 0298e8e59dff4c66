//! Dialing data connections to the route: preamble and hello in one
//! write, then wait for `Ready` (or `Refused`), after which the socket
//! carries raw bytes.
use net::handshake::{next_message, read_preamble, write_preamble_and};
use net::{HandshakeError, Transport, Unframed};
use proto::codec::VnetCodec;
use proto::message::{RouteMsg, VnetMsg};
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::DialError;
use crate::tls::ClientTls;
use tokio_util::codec::Framed;

/// How long dialing the route may take, connect to `Ready`. Covers the
/// route's wait for the serving side (10 s) with a margin.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection to the route as this vnet makes it: plain or TLS.
pub type Conn = Transport<TcpStream>;

/// TLS as the vnet dials with it, built from the config's [`ClientTls`].
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl TlsClient {
    /// Ready to connect as `tls` says.
    pub fn new(tls: &ClientTls) -> Self {
        let (connector, name) = tls.connector();
        Self { connector, name }
    }
}

/// Where the route is and how to reach it.
#[derive(Clone)]
pub struct RouteTarget {
    /// The address that answered the control connection.
    pub addr: SocketAddr,
    /// TLS, when `[route] tls=true`.
    pub tls: Option<TlsClient>,
}

impl RouteTarget {
    /// A route reached without TLS.
    pub fn plain(addr: SocketAddr) -> Self {
        Self { addr, tls: None }
    }
}

/// Connects to the route and sends `hello`; returns the framed connection
/// and the route's first answer.
///
/// # Errors
/// Connection, TLS, preamble or frame failure.
pub async fn open(
    route: &RouteTarget,
    hello: VnetMsg,
) -> Result<(Framed<Conn, VnetCodec>, RouteMsg), DialError> {
    let mut framed = connect(route, hello).await?;
    let first = next_message(&mut framed).await?;
    Ok((framed, first))
}

/// Connects to the route, sends `hello` and reads the route's preamble;
/// whatever the route says next is the caller's to read.
///
/// # Errors
/// Connection, TLS or preamble failure.
pub async fn connect(
    route: &RouteTarget,
    hello: VnetMsg,
) -> Result<Framed<Conn, VnetCodec>, DialError> {
    let stream = TcpStream::connect(route.addr)
        .await
        .map_err(HandshakeError::from)?;
    net::socket::tune(&stream);
    let mut stream = match &route.tls {
        None => Conn::Plain(stream),
        Some(tls) => {
            let secured = tls
                .connector
                .connect(tls.name.clone(), stream)
                .await
                .map_err(HandshakeError::from)?;
            Conn::Tls(Box::new(secured.into()))
        }
    };
    write_preamble_and::<_, RouteMsg, VnetMsg>(&mut stream, Some(hello)).await?;
    read_preamble(&mut stream).await?;
    Ok(Framed::new(stream, VnetCodec::new()))
}

/// Opens a data connection: `Ready` means raw bytes may flow.
///
/// # Errors
/// As [`open`], plus a refusal or a timeout.
pub async fn dial(route: &RouteTarget, hello: VnetMsg) -> Result<Unframed<Conn>, DialError> {
    let opened = tokio::time::timeout(DIAL_TIMEOUT, open(route, hello))
        .await
        .map_err(|_| DialError::Timeout(DIAL_TIMEOUT))??;
    started(opened.0, opened.1)
}

/// A data connection whose hello got `answer`: raw bytes after `Ready`.
///
/// # Errors
/// A refusal, or an answer that does not belong here.
pub fn started(
    framed: Framed<Conn, VnetCodec>,
    answer: RouteMsg,
) -> Result<Unframed<Conn>, DialError> {
    match answer {
        RouteMsg::Ready => Ok(Unframed::from_framed(framed)),
        RouteMsg::Refused(refusal) => Err(DialError::Refused(refusal)),
        _ => Err(DialError::Unexpected("message on a data connection")),
    }
}
