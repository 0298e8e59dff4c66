//! Opening a connection to the route, control or data alike: TCP (tuned),
//! TLS 1.3 when `[route] tls=true`, then the preamble and the hello in one
//! write. What follows the hello belongs to the caller: the control
//! handshake (`control::handshake`) or a data connection's answer
//! (`paths::relay::dial`).
use net::handshake::{next_message, read_preamble, write_preamble_and};
use net::{HandshakeError, Transport};
use proto::codec::VnetCodec;
use proto::message::{RouteMsg, VnetMsg};
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::codec::Framed;

use crate::error::DialError;
use crate::tls::ClientTls;

/// A connection to the route as this vnet makes it: plain or TLS.
pub(crate) type Conn = Transport<TcpStream>;

/// A connection to the route while it carries frames (before raw bytes).
pub(crate) type FramedConn = Framed<Conn, VnetCodec>;

/// TLS as the vnet dials with it, built from the config's [`ClientTls`].
#[derive(Clone)]
pub(crate) struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl TlsClient {
    /// Ready to connect as `tls` says.
    pub(crate) fn new(tls: &ClientTls) -> Self {
        let (connector, name) = tls.connector();
        Self { connector, name }
    }
}

/// Where the route is and how to reach it.
#[derive(Clone)]
pub(crate) struct RouteTarget {
    /// The address that answered the control connection.
    pub addr: SocketAddr,
    /// TLS, when `[route] tls=true`.
    pub tls: Option<TlsClient>,
    /// The heartbeat in force: connections notice a dead route within it.
    pub heartbeat: Duration,
}

/// Connects to the route and sends `hello`; returns the framed connection
/// and the route's first answer.
///
/// # Errors
/// Connection, TLS, preamble or frame failure.
pub(crate) async fn open(
    route: &RouteTarget,
    hello: VnetMsg,
) -> Result<(FramedConn, RouteMsg), DialError> {
    let mut framed = connect(route, hello).await?;
    let first = next_message(&mut framed).await?;
    Ok((framed, first))
}

/// Connects to the route, sends `hello` and reads the route's preamble;
/// whatever the route says next is the caller's to read.
///
/// # Errors
/// Connection, TLS or preamble failure.
pub(crate) async fn connect(route: &RouteTarget, hello: VnetMsg) -> Result<FramedConn, DialError> {
    let stream = TcpStream::connect(route.addr)
        .await
        .map_err(HandshakeError::from)?;
    net::socket::tune(&stream, route.heartbeat);
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
