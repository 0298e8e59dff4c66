//! Opening the control connection: resolve the route's name, try each
//! address, and on the first that answers run hello, challenge,
//! confirmation and welcome (see `proto::auth`). The route must prove it
//! knows our token before we prove we do. Yields the framed link and the
//! new [`Session`].
use futures::SinkExt;
use proto::auth::{AuthError, VnetExchange};
use proto::features::Features;
use proto::message::{RouteMsg, VnetMsg};
use proto::{Refusal, RefusalCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::session::Session;
use crate::current::InForce;
use crate::error::DialError;
use crate::link::{self, FramedConn, RouteTarget};

/// How long connecting and the handshake may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the route as `settings` say; the session's `ended` token
/// is a child of `shutdown`.
///
/// # Errors
/// The name does not resolve, no address answers, or the route refuses
/// (or cannot prove it knows our token).
pub(crate) async fn connect(
    settings: &InForce,
    shutdown: &CancellationToken,
) -> Result<(FramedConn, Session), DialError> {
    let addrs = tokio::net::lookup_host(settings.route.addr())
        .await
        .map_err(net::HandshakeError::from)?;
    let mut last = None;
    for addr in addrs {
        match handshake(addr, settings, shutdown).await {
            Err(DialError::Handshake(err)) => last = Some(DialError::Handshake(err)),
            done => return done,
        }
    }
    Err(last.unwrap_or(DialError::Refused(Refusal::new(
        RefusalCode::NotFound,
        "route address resolved to nothing",
    ))))
}

/// Refusing the route for a token that does not match, saying which side
/// to fix.
fn token_mismatch(settings: &InForce, route_has_token: bool) -> DialError {
    let text = if !route_has_token {
        "the route has no token: remove token= from [route], or give the route the same one"
    } else if !settings.route.token.is_set() {
        "the route requires a token: set token= in [route]"
    } else {
        "the route could not prove it knows our token: the tokens differ"
    };
    DialError::Refused(Refusal::new(RefusalCode::Auth, text))
}

async fn handshake(
    addr: SocketAddr,
    settings: &InForce,
    shutdown: &CancellationToken,
) -> Result<(FramedConn, Session), DialError> {
    let (name, group) = (&settings.options.name, &settings.options.group);
    let (exchange, pake) = VnetExchange::start(&settings.route.token, name, group);
    let hello = VnetMsg::Hello {
        name: name.clone(),
        group: group.clone(),
        pake,
        features: Features::ours(),
    };
    let target = RouteTarget {
        addr,
        tls: settings.tls.clone(),
        heartbeat: Duration::from_secs(u64::from(settings.route.heartbeat)),
    };
    let (mut link, confirm, secret) = match link::open(&target, hello).await? {
        (
            link,
            RouteMsg::Challenge {
                pake,
                confirm,
                token: route_has_token,
            },
        ) => match exchange.finish(&pake, &confirm) {
            Ok((ours, secret)) => (link, ours, secret),
            Err(AuthError::Malformed) => return Err(DialError::Unexpected("key-exchange message")),
            Err(AuthError::Mismatch) => return Err(token_mismatch(settings, route_has_token)),
        },
        (_, RouteMsg::Refused(refusal)) => return Err(DialError::Refused(refusal)),
        _ => return Err(DialError::Unexpected("message instead of a challenge")),
    };
    link.send(VnetMsg::Auth { confirm })
        .await
        .map_err(net::HandshakeError::from)?;
    match net::handshake::next_message(&mut link).await? {
        RouteMsg::Welcome {
            vnet_id,
            session,
            heartbeat_secs,
            features,
        } => {
            let heartbeat =
                Duration::from_secs(u64::from(heartbeat_secs.clamp(1, settings.route.heartbeat)));
            let session = Session {
                vnet_id,
                id: session,
                secret,
                passes: Arc::default(),
                route: RouteTarget {
                    heartbeat,
                    ..target
                },
                heartbeat,
                ended: shutdown.child_token(),
                lost: CancellationToken::new(),
                e2e: features.has(proto::features::Feature::E2e),
                direct: features.has(proto::features::Feature::Direct),
            };
            Ok((link, session))
        }
        RouteMsg::Refused(refusal) => Err(DialError::Refused(refusal)),
        _ => Err(DialError::Unexpected("message before welcome")),
    }
}
