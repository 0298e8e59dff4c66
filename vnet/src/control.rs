//! The control connection: connect, say hello, register the active serves,
//! then follow the route's events until the link drops; reconnect with
//! exponential backoff and jitter (1 s doubling to 30 s).
//!
//! One task owns the connection and all request bookkeeping. Which serves
//! should be registered is read from the status (the model), so after a
//! reconnect exactly the active ones are registered again, with the ids
//! they had (a dynamic id is kept when still free).
use futures::{SinkExt, StreamExt};
use proto::auth::{AuthError, VnetExchange};
use proto::codec::VnetCodec;
use proto::features::Features;
use proto::message::{Request, Response, RouteMsg, ServeSpec, VnetMsg};
use proto::text::Escaped;
use proto::ServeId;
use proto::{Refusal, RefusalCode};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tracing::{debug, error, info, warn, Instrument};

use crate::data;
use crate::error::DialError;
use crate::{serve, spare, unserve, Command, LocalServe, ServeState, Session, Shared, VnetError};

/// How long connecting and the hello may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

type Link = Framed<data::Conn, VnetCodec>;
/// Everyone waiting for one registration's outcome.
type Waiters = Vec<oneshot::Sender<Result<ServeId, VnetError>>>;

/// What a request in flight was for.
enum InFlight {
    Register(String, Waiters),
    Unregister,
    /// A keep-alive ping; any answer will do.
    Heartbeat,
    Reply(oneshot::Sender<Result<Response, VnetError>>),
}

/// Requests sent and not yet answered, by id.
#[derive(Default)]
struct Requests {
    in_flight: HashMap<u32, InFlight>,
    last_id: u32,
}

impl Requests {
    /// The waiters of a registration of `key` in flight, if there is one.
    fn registering(&mut self, key: &str) -> Option<&mut Waiters> {
        self.in_flight.values_mut().find_map(|f| match f {
            InFlight::Register(k, waiters) if k == key => Some(waiters),
            _ => None,
        })
    }

    fn track(&mut self, what: InFlight) -> u32 {
        self.last_id = self.last_id.wrapping_add(1);
        self.in_flight.insert(self.last_id, what);
        self.last_id
    }
}

/// Why a session ended.
enum Ended {
    Lost(String),
    Reconnect,
    Shutdown,
}

/// Runs until shutdown.
pub(crate) async fn run(shared: Arc<Shared>, mut commands: mpsc::Receiver<Command>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let connected = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            connected = tokio::time::timeout(CONNECT_TIMEOUT, connect(&shared)) => connected,
        };
        let settings = shared.settings();
        match connected {
            Ok(Ok((link, session))) => {
                backoff = BACKOFF_MIN;
                info!(route = %session.route.addr, vnet = %session.vnet_id, name = %settings.vnet.name, group = %settings.vnet.group, "connected to route");
                shared.session.send_replace(Some(session.clone()));
                shared.status.send_modify(|s| {
                    s.vnet_id = Some(session.vnet_id);
                    s.route_error = None;
                    s.connects += 1;
                });
                let spares_end = shared.shutdown.child_token();
                let spares = spare::keep(shared.clone(), session.clone(), spares_end.clone());
                shared
                    .tracker
                    .spawn(spares.instrument(tracing::debug_span!("spares")));
                let ended = follow(&shared, link, session, &mut commands).await;
                spares_end.cancel();
                forget_session(&shared);
                match ended {
                    Ended::Shutdown => return,
                    Ended::Reconnect => {
                        info!("reconnecting with new settings");
                        continue;
                    }
                    Ended::Lost(why) => warn!(%why, "lost the route; reconnecting"),
                }
            }
            Ok(Err(err)) => {
                warn!(route = %settings.route.addr(), %err, "cannot connect to route");
                shared
                    .status
                    .send_modify(|s| s.route_error = Some(err.to_string()));
            }
            Err(_) => {
                warn!(route = %settings.route.addr(), "route did not answer in time");
                shared
                    .status
                    .send_modify(|s| s.route_error = Some("route did not answer in time".into()));
            }
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
                Some(command) = commands.recv() => match command {
                    Command::Reconnect => break,
                    other => refuse(other, VnetError::NotConnected),
                },
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

/// Answers a command that cannot be carried out now. A registration stays
/// pending: it happens when the route is back.
fn refuse(command: Command, err: VnetError) {
    match command {
        Command::Request(_, reply) => {
            let _ = reply.send(Err(err));
        }
        Command::Register(_, Some(reply)) => {
            let _ = reply.send(Err(err));
        }
        Command::Register(_, None)
        | Command::Unregister(_)
        | Command::Send(_)
        | Command::Reconnect => {}
    }
}

async fn connect(shared: &Shared) -> Result<(Link, Session), DialError> {
    let settings = shared.settings();
    let addrs = tokio::net::lookup_host(settings.route.addr())
        .await
        .map_err(net::HandshakeError::from)?;
    let mut last = None;
    for addr in addrs {
        match handshake(addr, &settings).await {
            Err(DialError::Handshake(err)) => last = Some(DialError::Handshake(err)),
            done => return done,
        }
    }
    Err(last.unwrap_or(DialError::Refused(Refusal::new(
        RefusalCode::NotFound,
        "route address resolved to nothing",
    ))))
}

/// Hello, challenge, confirmation, welcome: see `proto::auth`. The route
/// must prove it knows our token before we prove we do.
async fn handshake(
    addr: std::net::SocketAddr,
    settings: &crate::Settings,
) -> Result<(Link, Session), DialError> {
    let (name, group) = (&settings.vnet.name, &settings.vnet.group);
    let token = &settings.route.token;
    let (exchange, pake) = VnetExchange::start(token, name, group);
    let hello = VnetMsg::Hello {
        name: name.clone(),
        group: group.clone(),
        pake,
        features: Features::ours(),
    };
    let target = data::RouteTarget {
        addr,
        tls: settings.tls.clone(),
    };
    let auth = |text: &str| DialError::Refused(Refusal::new(RefusalCode::Auth, text));
    let (mut link, confirm, secret) = match data::open(&target, hello).await? {
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
            Err(AuthError::Mismatch) if !route_has_token => {
                return Err(auth("the route has no token: remove token= from [route], or give the route the same one"));
            }
            Err(AuthError::Mismatch) if !token.is_set() => {
                return Err(auth("the route requires a token: set token= in [route]"));
            }
            Err(AuthError::Mismatch) => {
                return Err(auth(
                    "the route could not prove it knows our token: the tokens differ",
                ));
            }
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
            features: _,
        } => Ok((
            link,
            Session {
                vnet_id,
                id: session,
                secret,
                passes: Arc::default(),
                route: target,
                heartbeat: Duration::from_secs(u64::from(
                    heartbeat_secs.clamp(1, settings.route.heartbeat),
                )),
            },
        )),
        RouteMsg::Refused(refusal) => Err(DialError::Refused(refusal)),
        _ => Err(DialError::Unexpected("message before welcome")),
    }
}

/// After the link drops: the route has withdrawn our serves. Streams
/// already flowing keep going on their own data connections.
fn forget_session(shared: &Shared) {
    shared.session.send_replace(None);
    shared.visiting_spares.clear(shared);
    shared.available.send_modify(|a| a.clear());
    shared.local().clear();
    shared.status.send_modify(|s| {
        s.vnet_id = None;
        for serve in s.serves.values_mut() {
            if serve.config.active {
                serve.state = ServeState::Pending;
            }
        }
    });
}

/// The registration request for serve `key`, if it should be registered.
/// A serve registered before keeps asking for the id it had.
fn registration(shared: &Shared, key: &str) -> Option<Request> {
    let status = shared.status.borrow();
    let serve = status.serves.get(key).filter(|s| s.config.active)?;
    let c = &serve.config;
    Some(Request::RegisterServe(ServeSpec {
        name: c.name.clone(),
        serve_id: serve.last_id.or(c.serve_id),
        kind: "tcp".into(),
        ip: c.ip.clone(),
        port: c.port,
        info: c.info.clone(),
    }))
}

/// Serves one live control connection; returns why it ended.
async fn follow(
    shared: &Arc<Shared>,
    mut link: Link,
    session: Session,
    commands: &mut mpsc::Receiver<Command>,
) -> Ended {
    let mut requests = Requests::default();
    let keys: Vec<String> = shared.status.borrow().serves.keys().cloned().collect();
    for key in keys {
        let Some(body) = registration(shared, &key) else {
            continue;
        };
        let id = requests.track(InFlight::Register(key, Vec::new()));
        if let Err(err) = link.feed(VnetMsg::Request { id, body }).await {
            return Ended::Lost(err.to_string());
        }
    }
    if let Err(err) = link.flush().await {
        return Ended::Lost(err.to_string());
    }
    // Ping every third of the heartbeat; a route silent for a whole one is
    // gone (cable pulled, process frozen) and we reconnect.
    let heartbeat = session.heartbeat;
    let mut pings =
        tokio::time::interval_at(tokio::time::Instant::now() + heartbeat / 3, heartbeat / 3);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let silence = tokio::time::sleep(heartbeat);
    tokio::pin!(silence);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return Ended::Shutdown,
            _ = &mut silence => return Ended::Lost(format!("no word from the route for {heartbeat:?}")),
            _ = pings.tick() => {
                let id = requests.track(InFlight::Heartbeat);
                if let Err(err) = link.send(VnetMsg::Request { id, body: Request::Ping }).await {
                    return Ended::Lost(err.to_string());
                }
            }
            Some(command) = commands.recv() => {
                let msg = match command {
                    Command::Reconnect => return Ended::Reconnect,
                    Command::Request(body, reply) => {
                        let id = requests.track(InFlight::Reply(reply));
                        VnetMsg::Request { id, body }
                    }
                    Command::Register(key, reply) => {
                        // Queued while connecting, this serve may already be
                        // registered (or on its way) by the connect-time
                        // sweep: join that outcome instead of registering
                        // twice.
                        let registered = shared.status.borrow().serve_id(&key);
                        if let Some(id) = registered {
                            if let Some(reply) = reply { let _ = reply.send(Ok(id)); }
                            continue;
                        }
                        if let Some(waiters) = requests.registering(&key) {
                            waiters.extend(reply);
                            continue;
                        }
                        match registration(shared, &key) {
                            Some(body) => VnetMsg::Request { id: requests.track(InFlight::Register(key, reply.into_iter().collect())), body },
                            None => {
                                refuse(Command::Register(key, reply), VnetError::Invalid("serve is not active".into()));
                                continue;
                            }
                        }
                    }
                    Command::Unregister(serve_id) => {
                        let id = requests.track(InFlight::Unregister);
                        VnetMsg::Request { id, body: Request::UnregisterServe { serve_id } }
                    }
                    Command::Send(msg) => msg,
                };
                if let Err(err) = link.send(msg).await {
                    return Ended::Lost(err.to_string());
                }
            },
            frame = link.next() => {
                if let Some(Ok(_)) = &frame {
                    silence.as_mut().reset(tokio::time::Instant::now() + heartbeat);
                }
                match frame {
                None => return Ended::Lost("route closed the connection".into()),
                Some(Err(err)) => return Ended::Lost(err.to_string()),
                Some(Ok(RouteMsg::Response { id, body })) => match requests.in_flight.remove(&id) {
                    Some(InFlight::Register(key, reply)) => registered(shared, key, body, reply),
                    Some(InFlight::Heartbeat) => {}
                    Some(InFlight::Unregister) => {
                        if let Response::Error(reason) = body { debug!(%reason, "unregister"); }
                    }
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
                Some(Ok(RouteMsg::UnserveAsk { ask, from, from_name, ip, port })) => {
                    unserve::on_ask(shared, ask, from, from_name, ip, port);
                }
                Some(Ok(other)) => return Ended::Lost(format!("unexpected message from route: {other:?}")),
                }
            },
        }
    }
}

/// Applies the route's answer to a registration.
fn registered(shared: &Shared, key: String, answer: Response, waiters: Waiters) {
    let outcome = match answer {
        Response::Registered { serve_id } => Ok(serve_id),
        Response::Error(refusal) => Err(VnetError::Refused(refusal)),
        other => Err(VnetError::Protocol(format!("unexpected answer {other:?}"))),
    };
    let mut withdraw = None;
    shared.status.send_modify(|s| {
        let Some(serve) = s.serves.get_mut(&key).filter(|s| s.config.active) else {
            // Closed or deleted while the request was in flight.
            withdraw = outcome.as_ref().ok().copied();
            return;
        };
        serve.state = match &outcome {
            Ok(serve_id) => {
                let c = &serve.config;
                match c.serve_id {
                    Some(wanted) if wanted != *serve_id => {
                        warn!(serve = %key, wanted = %wanted, assigned = %serve_id, "serve id was taken; the route assigned a new one");
                    }
                    _ => info!(serve = %key, id = %serve_id, addr = %format!("{}:{}", c.ip, c.port), "serve registered"),
                }
                // Keep the id: a reconnect asks for it again.
                serve.last_id = Some(*serve_id);
                shared.local().insert(
                    *serve_id,
                    LocalServe {
                        config: serve.config.clone(),
                        cancel: shared.shutdown.child_token(),
                        traffic: serve.traffic.clone(),
                    },
                );
                ServeState::Registered(*serve_id)
            }
            Err(reason) => {
                let reason = reason.to_string();
                error!(serve = %key, reason = %Escaped(&reason), "serve refused by the route");
                ServeState::Refused(reason)
            }
        };
    });
    if let Some(serve_id) = withdraw {
        let _ = shared.commands.try_send(Command::Unregister(serve_id));
    }
    for waiter in waiters {
        let _ = waiter.send(outcome.clone());
    }
}
