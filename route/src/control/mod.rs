//! One vnet's control session, from its hello to its leaving.
//!
//! After the token exchange ([`auth`]) the vnet joins its group in the
//! registry, gets its welcome and the group's serves, and its session
//! opens a spare pool. Then one loop serves it: it reads the vnet's
//! messages ([`requests`] answers them), watches the heartbeat and the
//! session's cancel token, and writes what the link's queue brings
//! (registry events, dial-back requests, unserve asks and answers). All
//! writes to the socket go through [`Session::write`]. When the loop ends, for whatever reason,
//! the vnet, its serves, its open asks and its spares are gone.
use futures::{SinkExt, StreamExt};
use proto::auth::SessionSecret;
use proto::codec::ProtoError;
use proto::features::Features;
use proto::message::{RouteMsg, VnetMsg};
use proto::text::Escaped;
use proto::{Refusal, MAX_FRAME_LEN};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::conn::{refuse, Half};
use crate::registry::VnetLink;
use crate::state::Hub;
use auth::NotProved;
use requests::{Peer, Violation};

mod auth;
mod requests;

pub use auth::Hello;

/// Messages queued for one vnet before it counts as not reading.
const CONTROL_QUEUE: usize = 1024;

/// Why a control session ended.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    /// Its cancel token: the route shuts down, or the vnet did not read
    /// its queue.
    #[error("dropped by the route")]
    Dropped,
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
/// exchange (under the handshake timeout), then the session.
pub async fn join(mut conn: Half, hello: Hello, hub: Arc<Hub>) {
    let config = &hub.config;
    let proof = auth::prove(&mut conn, &hello, &config.token, config.handshake_timeout);
    let Some(proved) = hub.shutdown.run_until_cancelled(proof).await else {
        return;
    };
    match proved {
        Ok(secret) => {
            // Proved: now the larger frames of a control connection.
            conn.codec_mut().set_limit(MAX_FRAME_LEN);
            run(conn, hello, secret, hub).await
        }
        Err(NotProved::Refused(refusal)) => {
            refuse_vnet(conn, &hello.name, &hello.group, refusal).await
        }
        Err(NotProved::TimedOut(_)) => {
            let name = Escaped(&hello.name);
            warn!(%name, "dropped peer: authentication not finished in time")
        }
    }
}

/// Turns a vnet away, saying why in the log too.
async fn refuse_vnet(conn: Half, name: &str, group: &str, refusal: Refusal) {
    let (name, group) = (Escaped(name), Escaped(group));
    warn!(%name, %group, reason = %refusal, "vnet refused");
    refuse(conn, refusal).await
}

/// Runs the session of a vnet that has proved the token.
async fn run(conn: Half, hello: Hello, secret: SessionSecret, hub: Arc<Hub>) {
    let Hello {
        name,
        group,
        features,
        ..
    } = hello;
    let (tx, queue) = mpsc::channel(CONTROL_QUEUE);
    let cancel = hub.shutdown.child_token();
    // Visiting spares wait on this token, so they close with this
    // connection; idle serving spares are closed below.
    let _close_spares = cancel.clone().drop_guard();
    let link = VnetLink::new(tx, cancel.clone());
    let max_vnets = hub.config.max_vnets;
    let joined = hub
        .registry()
        .join(&group, &name, link, secret, now_unix(), max_vnets);
    let (vnet_id, session_id, snapshot) = match joined {
        Ok(joined) => joined,
        Err(refusal) => return refuse_vnet(conn, &name, &group, refusal).await,
    };
    hub.spares.open(session_id);
    let (shown_name, shown_group) = (Escaped(&name), Escaped(&group));
    info!(vnet = %vnet_id, name = %shown_name, group = %shown_group, "vnet joined");
    let heartbeat = hub.config.heartbeat;
    let welcome = RouteMsg::Welcome {
        vnet_id,
        session: session_id,
        heartbeat_secs: u32::try_from(heartbeat.as_secs()).unwrap_or(u32::MAX),
        features: Features::ours().common(&features),
    };
    let mut session = Session {
        conn,
        queue,
        cancel,
        heartbeat,
        silence: Box::pin(tokio::time::sleep(heartbeat)),
        peer: Peer {
            hub: &hub,
            group: &group,
            name: &name,
            vnet_id,
        },
    };
    let ended = session
        .serve(std::iter::once(welcome).chain(snapshot))
        .await;

    hub.registry().leave(&group, vnet_id);
    hub.asks().forget(&group, vnet_id);
    // Idle spares must not outlive the session; one arriving now is
    // refused by the closed pool.
    hub.spares.close(session_id);
    match ended {
        Ended::Broken(_) | Ended::Violation(_) => {
            warn!(vnet = %vnet_id, name = %shown_name, err = %ended, "vnet left")
        }
        _ => info!(vnet = %vnet_id, name = %shown_name, why = %ended, "vnet left"),
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A joined vnet's control session.
struct Session<'a> {
    conn: Half,
    /// Messages for this vnet from elsewhere: registry events, dial-back
    /// requests, unserve asks and answers. Its sender is the registry's
    /// `VnetLink`.
    queue: mpsc::Receiver<RouteMsg>,
    /// Cancelled to drop the vnet (shutdown, a full queue).
    cancel: CancellationToken,
    /// A vnet pings well within this; silence this long means it is gone
    /// (cable pulled, process frozen).
    heartbeat: Duration,
    silence: Pin<Box<Sleep>>,
    peer: Peer<'a>,
}

impl Session<'_> {
    /// Greets the vnet, then serves it until the session ends; says why.
    async fn serve(&mut self, greeting: impl IntoIterator<Item = RouteMsg>) -> Ended {
        if let Err(err) = self.write(greeting).await {
            return err.into();
        }
        self.silence.as_mut().reset(Instant::now() + self.heartbeat);
        loop {
            if let Err(ended) = self.step().await {
                return ended;
            }
        }
    }

    /// Waits for the next message either way, and passes it on.
    async fn step(&mut self) -> Result<(), Ended> {
        let out = tokio::select! {
            _ = self.cancel.cancelled() => return Err(Ended::Dropped),
            _ = self.silence.as_mut() => return Err(Ended::HeartbeatMissed),
            Some(queued) = self.queue.recv() => queued,
            frame = self.conn.next() => match self.received(frame)? {
                Some(reply) => reply,
                None => return Ok(()),
            },
        };
        Ok(self.write([out]).await?)
    }

    /// Handles what came from the vnet; the reply to write, if any now.
    fn received(
        &mut self,
        frame: Option<Result<VnetMsg, ProtoError>>,
    ) -> Result<Option<RouteMsg>, Ended> {
        let msg = frame.ok_or(Ended::Closed)??;
        self.silence.as_mut().reset(Instant::now() + self.heartbeat);
        Ok(self.peer.handle(msg)?)
    }

    /// Writes `msgs` and flushes them together. The one place this session
    /// writes to its socket.
    async fn write(&mut self, msgs: impl IntoIterator<Item = RouteMsg>) -> Result<(), ProtoError> {
        for msg in msgs {
            self.conn.feed(msg).await?;
        }
        self.conn.flush().await
    }
}
