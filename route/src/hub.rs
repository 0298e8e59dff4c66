//! The accept loop and each connection's start: preamble, first frame,
//! then hand-off by kind (control, visitor, serving).
//!
//! The handshake runs inside the connection's own task, under a timeout,
//! so a peer that never finishes it holds up nobody else.
use net::handshake::{next_message, read_preamble, send_message, write_preamble_and};
use net::HandshakeError;
use proto::codec::RouteCodec;
use proto::message::{RouteMsg, VnetMsg};
use proto::preamble::PreambleError;
use proto::text::Escaped;
use proto::{Refusal, RefusalCode, MAX_FRAME_LEN, MAX_HELLO_LEN};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;
use tracing::{info, warn, Instrument};

use crate::state::Hub;
use crate::tls::ServerTls;
use crate::{forward, session, spare, Conn};

/// Accepts until shutdown, one task per connection.
pub async fn accept_loop(listener: TcpListener, hub: Arc<Hub>) {
    loop {
        let accepted = tokio::select! {
            _ = hub.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let span = tracing::info_span!("conn", %peer);
                hub.tracker
                    .spawn(handle(stream, peer, hub.clone()).instrument(span));
            }
            Err(err) => {
                // Out of file descriptors and the like: pause instead of spinning.
                warn!(%err, "accept failed");
                tokio::select! {
                    _ = hub.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
}

async fn handle(stream: TcpStream, peer: SocketAddr, hub: Arc<Hub>) {
    net::socket::tune(&stream);
    let started = tokio::select! {
        started = tokio::time::timeout(hub.config.handshake_timeout, start(stream, hub.config.tls.as_ref())) => started,
        _ = hub.shutdown.cancelled() => return,
    };
    let (conn, first) = match started {
        Ok(Ok(started)) => started,
        Ok(Err(err)) => return warn!(%err, "dropped peer: bad handshake"),
        Err(_) => {
            return warn!(timeout = ?hub.config.handshake_timeout, "dropped peer: handshake not finished in time")
        }
    };
    match first {
        VnetMsg::Hello {
            name,
            group,
            pake,
            features,
        } => {
            let mut conn = conn;
            let token = &hub.config.token;
            let proved = tokio::select! {
                proved = tokio::time::timeout(hub.config.handshake_timeout, session::authenticate(&mut conn, token, &name, &group, pake)) => proved,
                _ = hub.shutdown.cancelled() => return,
            };
            match proved {
                Ok(Ok(secret)) => {
                    // Proved: now the larger frames of a control connection.
                    conn.codec_mut().set_limit(MAX_FRAME_LEN);
                    let joining = session::Joining {
                        name,
                        group,
                        secret,
                        features,
                    };
                    session::run(conn, joining, hub).await
                }
                Ok(Err(refusal)) => {
                    warn!(name = %Escaped(&name), group = %Escaped(&group), reason = %refusal, "vnet refused");
                    let _ = send_message(&mut conn, RouteMsg::Refused(refusal)).await;
                }
                Err(_) => {
                    warn!(name = %Escaped(&name), "dropped peer: authentication not finished in time")
                }
            }
        }
        VnetMsg::Visit { serve_id, pass } => forward::visit(conn, serve_id, pass, hub).await,
        VnetMsg::Accept {
            ticket,
            pass,
            result,
        } => forward::accept(conn, ticket, pass, result, hub).await,
        VnetMsg::Spare { role, pass } => spare::arrived(conn, role, pass, hub).await,
        VnetMsg::Request { .. }
        | VnetMsg::UnserveAnswer { .. }
        | VnetMsg::Auth { .. }
        | VnetMsg::Opened { .. } => {
            info!(%peer, "dropped peer: request before hello");
            let mut conn = conn;
            let refusal = Refusal::new(RefusalCode::Protocol, "expected a hello first");
            let _ = send_message(&mut conn, RouteMsg::Refused(refusal)).await;
        }
    }
}

/// Completes TLS if configured, reads the peer's preamble, answers with
/// ours, and reads the first frame.
async fn start(
    stream: TcpStream,
    tls: Option<&ServerTls>,
) -> Result<(Framed<Conn, RouteCodec>, VnetMsg), HandshakeError> {
    let mut stream = match tls {
        None => Conn::Plain(stream),
        Some(tls) => Conn::Tls(Box::new(tls.acceptor.accept(stream).await?.into())),
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
    write_preamble_and::<_, VnetMsg, RouteMsg>(&mut stream, None).await?;
    // Small frames until the peer has proved the token.
    let mut conn = Framed::new(stream, RouteCodec::with_limit(MAX_HELLO_LEN));
    let first = next_message(&mut conn).await?;
    if let Err(err) = first.validate() {
        let refusal = Refusal::new(RefusalCode::Protocol, err.to_string());
        let _ = send_message(&mut conn, RouteMsg::Refused(refusal)).await;
        return Err(HandshakeError::Invalid(err));
    }
    Ok((conn, first))
}
