//! One vnet's control session, from its hello to its leaving.
//!
//! After the token exchange ([`auth`]) the vnet joins its group in the
//! registry, gets its welcome and the group's serves, and its session
//! opens a spare pool. Then one loop serves it: it reads the vnet's
//! messages ([`requests`] answers them) and watches the heartbeat, the
//! session's cancel token and its writer. It never writes: everything for
//! the vnet, its own answers included, goes through its link's queues to
//! the writer task ([`crate::link`]), so a vnet that stops reading cannot
//! keep its heartbeat from being watched. When the loop ends, for
//! whatever reason, the vnet, its serves and its spares are gone, and a
//! vnet lost (silent, or not reading) has its streams reset.
use futures::stream::SplitStream;
use futures::StreamExt;
use proto::auth::SessionSecret;
use proto::codec::ProtoError;
use proto::features::{Feature, Features};
use proto::message::{RouteMsg, VnetMsg};
use proto::text::Escaped;
use proto::{Refusal, RefusalCode, MAX_FRAME_LEN};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};
use tracing::{debug, info, warn};

use crate::admission::Place;
use crate::config::RouteConfig;
use crate::conn::{refuse, Half};
use crate::counters::Dropped;
use crate::link::{self, VnetLink, WriteFailed};
use crate::registry::Arrival;
use crate::state::Hub;
use auth::NotProved;
use requests::{Peer, Violation};

mod auth;
mod requests;

pub use auth::Hello;

/// Why a control session ended.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    /// Its cancel token: the route shuts down.
    #[error("dropped by the route")]
    Dropped,
    /// The vnet was cut off: it did not read what the route queued for it.
    #[error("cut off: {0}")]
    CutOff(&'static str),
    /// The vnet took nothing the route wrote to it for a heartbeat, or the
    /// writing failed.
    #[error("{0}")]
    NotWritten(#[from] WriteFailed),
    /// Nothing came from the vnet for a whole heartbeat.
    #[error("heartbeat missed")]
    HeartbeatMissed,
    /// The vnet closed the connection.
    #[error("connection closed")]
    Closed,
    /// The vnet sent what has no place here.
    #[error("protocol violation: {0}")]
    Violation(#[from] Violation),
    /// The socket or the framing failed.
    #[error(transparent)]
    Broken(#[from] ProtoError),
}

/// Takes a control connection whose hello has been read: the token
/// exchange (under the handshake timeout, and while it keeps its `place`
/// among the unauthenticated), then the session.
pub async fn join(mut conn: Half, hello: Hello, peer: SocketAddr, place: Place, hub: Arc<Hub>) {
    let config = hub.config();
    let proof = auth::prove(&mut conn, &hello, &config.token, config.handshake_timeout);
    let proved = tokio::select! {
        proved = proof => proved,
        _ = hub.shutdown.cancelled() => return,
        _ = place.evicted.cancelled() => {
            hub.counters.dropped(Dropped::Evicted);
            return debug!("dropped peer: others made progress");
        }
    };
    drop(place);
    match proved {
        Ok(secret) => {
            // Proved: now the larger frames of a control connection.
            conn.codec_mut().set_limit(MAX_FRAME_LEN);
            run(conn, hello, secret, peer, hub, &config).await
        }
        Err(NotProved::Refused(refusal)) => {
            let failed = refusal.code == RefusalCode::Auth;
            if failed && hub.admission.failed(peer.ip(), std::time::Instant::now()) {
                warn!(%peer, "too many failed token proofs: this address is turned away for a while");
            }
            refuse_vnet(conn, &hello.name, &hello.group, refusal, &hub).await
        }
        Err(NotProved::TimedOut(_)) => {
            hub.counters.dropped(Dropped::TimedOut);
            let name = Escaped(&hello.name);
            warn!(%name, "dropped peer: authentication not finished in time")
        }
    }
}

/// Turns a vnet away, saying why in the log too.
async fn refuse_vnet(conn: Half, name: &str, group: &str, refusal: Refusal, hub: &Hub) {
    let (name, group) = (Escaped(name), Escaped(group));
    warn!(%name, %group, reason = %refusal, "vnet refused");
    refuse(conn, refusal, &hub.counters).await
}

/// Runs the session of a vnet that has proved the token.
/// `config` is the one the vnet proved its token under: one reload cannot
/// give a session two sets of settings.
async fn run(
    conn: Half,
    hello: Hello,
    secret: SessionSecret,
    addr: SocketAddr,
    hub: Arc<Hub>,
    config: &RouteConfig,
) {
    let Hello {
        name,
        group,
        features,
        ..
    } = hello;
    let cancel = hub.shutdown.child_token();
    // Visiting spares wait on this token, so they close with this
    // connection; idle serving spares are closed below.
    let _close_spares = cancel.clone().drop_guard();
    let (link, queues) = VnetLink::new(cancel);
    let max_vnets = config.max_vnets;
    let common = Features::ours().common(&features);
    let arrival = Arrival {
        addr,
        unix: now_unix(),
        e2e: common.has(Feature::E2e),
    };
    let joined = hub
        .registry()
        .join(&group, &name, link.clone(), secret, arrival, max_vnets);
    let (vnet_id, session_id, snapshot) = match joined {
        Ok(joined) => joined,
        Err(refusal) => return refuse_vnet(conn, &name, &group, refusal, &hub).await,
    };
    hub.spares.open(session_id);
    let (shown_name, shown_group) = (Escaped(&name), Escaped(&group));
    info!(vnet = %vnet_id, name = %shown_name, group = %shown_group, "vnet joined");
    let heartbeat = config.heartbeat;
    let welcome = RouteMsg::Welcome {
        vnet_id,
        session: session_id,
        heartbeat_secs: u32::try_from(heartbeat.as_secs()).unwrap_or(u32::MAX),
        features: common,
    };
    // The greeting goes first: nothing else is queued for a vnet before
    // its welcome.
    for msg in std::iter::once(welcome).chain(snapshot) {
        link.event(msg);
    }
    let (sink, reader) = conn.split();
    let writer = tokio::spawn(link::write(sink, queues, heartbeat));
    let mut session = Session {
        reader,
        writer,
        link: link.clone(),
        heartbeat,
        silence: Box::pin(tokio::time::sleep(heartbeat)),
        peer: Peer {
            hub: &hub,
            group: &group,
            name: &name,
            vnet_id,
        },
    };
    let ended = session.serve().await;
    session.writer.abort();

    let mut registry = hub.registry();
    for serve in registry.leave(&group, vnet_id) {
        hub.traffic.withdrawn(&group, serve);
    }
    drop(registry);
    hub.asks().forget(&group, vnet_id);
    // Idle spares must not outlive the session; one arriving now is
    // refused by the closed pool.
    hub.spares.close(session_id);
    if ended.vnet_is_lost() {
        link.lost.cancel();
    }
    match ended {
        Ended::Closed | Ended::Dropped => {
            info!(vnet = %vnet_id, name = %shown_name, why = %ended, "vnet left")
        }
        _ => warn!(vnet = %vnet_id, name = %shown_name, why = %ended, "vnet left"),
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Ended {
    /// Whether the vnet itself is gone or frozen (silent, or not taking
    /// what the route writes), rather than just this connection ending.
    fn vnet_is_lost(&self) -> bool {
        matches!(
            self,
            Ended::HeartbeatMissed | Ended::CutOff(_) | Ended::NotWritten(WriteFailed::Stuck(_))
        )
    }
}

/// A joined vnet's control session: the reading side and the watches.
struct Session<'a> {
    reader: SplitStream<Half>,
    /// Writes what the link's queues bring; its end ends the session.
    writer: JoinHandle<Result<(), WriteFailed>>,
    link: VnetLink,
    /// A vnet pings well within this; silence this long means it is gone
    /// (cable pulled, process frozen).
    heartbeat: Duration,
    silence: Pin<Box<Sleep>>,
    peer: Peer<'a>,
}

impl Session<'_> {
    /// Serves the vnet until the session ends; says why.
    async fn serve(&mut self) -> Ended {
        loop {
            if let Err(ended) = self.step().await {
                return ended;
            }
        }
    }

    /// Waits for the next message from the vnet, or for the session's end.
    async fn step(&mut self) -> Result<(), Ended> {
        tokio::select! {
            _ = self.link.cancel.cancelled() => Err(match self.link.cut_reason() {
                Some(why) => Ended::CutOff(why),
                None => Ended::Dropped,
            }),
            _ = self.silence.as_mut() => Err(Ended::HeartbeatMissed),
            written = &mut self.writer => Err(match written {
                Ok(Err(failed)) => failed.into(),
                _ => Ended::Dropped,
            }),
            frame = self.reader.next() => self.received(frame),
        }
    }

    /// Handles what came from the vnet; its answer goes on the link.
    fn received(&mut self, frame: Option<Result<VnetMsg, ProtoError>>) -> Result<(), Ended> {
        let msg = frame.ok_or(Ended::Closed)??;
        self.silence.as_mut().reset(Instant::now() + self.heartbeat);
        if let Some(reply) = self.peer.handle(msg)? {
            self.link.event(reply);
        }
        Ok(())
    }
}
