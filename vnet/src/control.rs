//! The control connection: connect, say hello, register serves, then
//! follow the route's events until the link drops; reconnect with
//! exponential backoff and jitter (1 s doubling to 30 s).
//!
//! One task owns the connection and all request bookkeeping, so nothing
//! here needs a lock except the shared serve table that stream tasks read.
use futures::{SinkExt, StreamExt};
use proto::codec::VnetCodec;
use proto::message::{Request, Response, RouteMsg, ServeSpec, VnetMsg};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tracing::{debug, error, info, warn};

use crate::config::ServeConfig;
use crate::data::{self, DialError};
use crate::{serve, Command, ServeState, Session, Shared, VnetError};

/// How long connecting and the hello may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

type Link = Framed<TcpStream, VnetCodec>;

/// What a request in flight was for.
enum InFlight {
    Register(ServeConfig),
    Reply(oneshot::Sender<Result<Response, VnetError>>),
}

/// Requests sent and not yet answered, by id.
#[derive(Default)]
struct Requests {
    in_flight: HashMap<u32, InFlight>,
    last_id: u32,
}

impl Requests {
    fn track(&mut self, what: InFlight) -> u32 {
        self.last_id = self.last_id.wrapping_add(1);
        self.in_flight.insert(self.last_id, what);
        self.last_id
    }
}

/// Runs until shutdown.
pub(crate) async fn run(
    shared: Arc<Shared>,
    serves: Vec<ServeConfig>,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let connected = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            connected = tokio::time::timeout(CONNECT_TIMEOUT, connect(&shared)) => connected,
        };
        match connected {
            Ok(Ok((link, session))) => {
                backoff = BACKOFF_MIN;
                info!(route = %session.route, vnet = %session.vnet_id, name = %shared.settings.name, group = %shared.settings.group, "connected to route");
                shared.session.send_replace(Some(session));
                shared
                    .status
                    .send_modify(|s| s.vnet_id = Some(session.vnet_id));
                let why = follow(&shared, link, &serves, &mut commands).await;
                forget_session(&shared);
                if shared.shutdown.is_cancelled() {
                    return;
                }
                warn!(%why, "lost the route; reconnecting");
            }
            Ok(Err(err)) => warn!(route = %shared.route.addr(), %err, "cannot connect to route"),
            Err(_) => warn!(route = %shared.route.addr(), "route did not answer in time"),
        }
        let delay = jitter(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
        debug!(?delay, "next attempt");
        let wake = tokio::time::sleep(delay);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                _ = &mut wake => break,
                Some(command) = commands.recv() => refuse(command, VnetError::NotConnected),
            }
        }
    }
}

/// Spreads reconnects of many vnets over time: 75-125% of `base`.
fn jitter(base: Duration) -> Duration {
    let quarter = base.as_millis() as u64 / 4;
    let spread = if quarter == 0 {
        0
    } else {
        rand::random::<u64>() % (2 * quarter)
    };
    base - Duration::from_millis(quarter) + Duration::from_millis(spread)
}

fn refuse(command: Command, err: VnetError) {
    match command {
        Command::Request(_, reply) => {
            let _ = reply.send(Err(err));
        }
    }
}

async fn connect(shared: &Shared) -> Result<(Link, Session), DialError> {
    let addrs = tokio::net::lookup_host(shared.route.addr())
        .await
        .map_err(proto::io::HandshakeError::from)?;
    let mut last = None;
    for addr in addrs {
        let hello = VnetMsg::Hello {
            name: shared.settings.name.clone(),
            group: shared.settings.group.clone(),
        };
        match data::open(addr, hello).await {
            Ok((link, RouteMsg::Welcome { vnet_id, session })) => {
                return Ok((
                    link,
                    Session {
                        vnet_id,
                        key: session,
                        route: addr,
                    },
                ));
            }
            Ok((_, RouteMsg::Refused { reason })) => return Err(DialError::Refused(reason)),
            Ok(_) => return Err(DialError::Unexpected("message before welcome")),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or(DialError::Refused(
        "route address resolved to nothing".into(),
    )))
}

fn forget_session(shared: &Shared) {
    shared.session.send_replace(None);
    shared.available.send_modify(|a| a.clear());
    shared.local().clear();
    shared.status.send_modify(|s| {
        s.vnet_id = None;
        for state in s.serves.values_mut() {
            *state = ServeState::Pending;
        }
    });
}

fn spec(serve: &ServeConfig) -> ServeSpec {
    ServeSpec {
        name: serve.name.clone(),
        serve_id: serve.serve_id,
        kind: "tcp".into(),
        ip: serve.ip.clone(),
        port: serve.port,
        info: serve.info.clone(),
    }
}

/// Serves one live control connection; returns why it ended.
async fn follow(
    shared: &Arc<Shared>,
    mut link: Link,
    serves: &[ServeConfig],
    commands: &mut mpsc::Receiver<Command>,
) -> String {
    let mut requests = Requests::default();
    for serve in serves {
        let id = requests.track(InFlight::Register(serve.clone()));
        if let Err(err) = link
            .feed(VnetMsg::Request {
                id,
                body: Request::RegisterServe(spec(serve)),
            })
            .await
        {
            return err.to_string();
        }
    }
    if let Err(err) = link.flush().await {
        return err.to_string();
    }
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return "shutting down".into(),
            Some(command) = commands.recv() => match command {
                Command::Request(body, reply) => {
                    let id = requests.track(InFlight::Reply(reply));
                    if let Err(err) = link.send(VnetMsg::Request { id, body }).await {
                        return err.to_string();
                    }
                }
            },
            frame = link.next() => match frame {
                None => return "route closed the connection".into(),
                Some(Err(err)) => return err.to_string(),
                Some(Ok(RouteMsg::Response { id, body })) => match requests.in_flight.remove(&id) {
                    Some(InFlight::Register(serve)) => registered(shared, serve, body),
                    Some(InFlight::Reply(reply)) => { let _ = reply.send(Ok(body)); }
                    None => warn!(id, "response to no request"),
                },
                Some(Ok(RouteMsg::ServeUp(entry))) => {
                    debug!(serve = %entry.serve_id, vnet = %entry.vnet_id, name = %entry.spec.name, "serve up");
                    shared.available.send_modify(|a| { a.insert(entry.serve_id, entry); });
                }
                Some(Ok(RouteMsg::ServeDown { serve_id })) => {
                    debug!(serve = %serve_id, "serve down");
                    shared.available.send_modify(|a| { a.remove(&serve_id); });
                }
                Some(Ok(RouteMsg::OpenStream { ticket, serve_id })) => serve::open_stream(shared, ticket, serve_id),
                Some(Ok(other)) => return format!("unexpected message from route: {other:?}"),
            },
        }
    }
}

fn registered(shared: &Shared, serve: ServeConfig, answer: Response) {
    let key = serve.key.clone();
    let state = match answer {
        Response::Registered { serve_id } => {
            match serve.serve_id {
                Some(wanted) if wanted != serve_id => {
                    warn!(serve = %key, wanted = %wanted, assigned = %serve_id, "serve id was taken; the route assigned a new one");
                }
                _ => {
                    info!(serve = %key, id = %serve_id, addr = %format!("{}:{}", serve.ip, serve.port), "serve registered")
                }
            }
            shared.local().insert(serve_id, serve);
            ServeState::Registered(serve_id)
        }
        Response::Error(reason) => {
            error!(serve = %key, %reason, "serve refused by the route");
            ServeState::Refused(reason)
        }
        other => {
            error!(serve = %key, answer = ?other, "unexpected answer to a registration");
            ServeState::Refused("unexpected answer".into())
        }
    };
    shared.status.send_modify(|s| {
        s.serves.insert(key, state);
    });
}
