//! The control connection to the route: connect and authenticate, register
//! the active serves, then follow the route's events until the link drops;
//! reconnect with exponential backoff and jitter (1 s doubling to 30 s).
//!
//! One task owns the connection and all request bookkeeping; others reach
//! it only through a [`command::ControlSender`]. What it learns it
//! publishes: the live [`session::Session`] and the group's serves on
//! `watch` channels, registrations in the model and the local-serves
//! table. What the route asks of us it hands on ([`asks`]): streams to
//! the relay path's serving side, unserve asks to the grants.
//!
//! - [`handshake`]: resolving, connecting, proving the token.
//! - [`follow`]: one live session, one small method per event.
//! - [`registrations`]: registering serves and applying the answers.
//! - [`requests`]: requests in flight, by id.
//! - [`writer`]: writing without blocking the loop that reads.
pub(crate) mod asks;
pub(crate) mod command;
pub(crate) mod follow;
pub(crate) mod handshake;
pub(crate) mod parts;
pub(crate) mod registrations;
pub(crate) mod requests;
pub(crate) mod session;
pub(crate) mod writer;

use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::error::VnetError;
use crate::model::ServeState;
use command::Command;
use follow::Ended;
use parts::ControlParts;

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Runs until shutdown.
pub(crate) async fn run(parts: ControlParts, mut commands: mpsc::Receiver<Command>) {
    let mut backoff = BACKOFF_MIN;
    let mut failed: Option<String> = None;
    loop {
        let wanted = parts.current.get();
        let connecting = handshake::connect(&wanted, &parts.shutdown);
        let connected = tokio::select! {
            _ = parts.shutdown.cancelled() => return,
            connected = tokio::time::timeout(handshake::CONNECT_TIMEOUT, connecting) => connected,
        };
        let settings = parts.current.get();
        match connected {
            Ok(Ok((link, session))) => {
                backoff = BACKOFF_MIN;
                info!(
                    route = %session.route.addr,
                    vnet = %session.vnet_id,
                    name = %settings.options.name,
                    group = %settings.options.group,
                    "connected to route"
                );
                // What was kept from the last session for direct links
                // goes: this session's ids may differ, and the route lists
                // the group anew as we register our serves again.
                parts.group.send_modify(|a| a.clear());
                parts.local.clear();
                parts.session.send_replace(Some(session.clone()));
                parts.model.send_modify(|s| {
                    s.vnet_id = Some(session.vnet_id);
                    s.route_error = None;
                    s.connects += 1;
                });
                let (ended, lost) = (session.ended.clone(), session.lost.clone());
                let why = follow::follow(&parts, link, session, &mut commands).await;
                ended.cancel();
                if let Ended::Lost(why) = &why {
                    if why.route_is_gone() {
                        lost.cancel();
                    }
                }
                forget_session(&parts);
                match why {
                    Ended::Shutdown => return,
                    Ended::Reconnect => {
                        info!("reconnecting with new settings");
                        continue;
                    }
                    Ended::Lost(why) => warn!(%why, "lost the route; reconnecting"),
                }
            }
            Ok(Err(err)) => failed = Some(err.to_string()),
            Err(_) => failed = Some("route did not answer in time".into()),
        }
        let delay = jitter(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if let Some(why) = failed.take() {
            let (route, next) = (
                settings.route.addr(),
                format!("{:.1}s", delay.as_secs_f64()),
            );
            warn!(%route, %why, "cannot connect to route; next attempt in {next}");
            parts.model.send_modify(|s| s.route_error = Some(why));
        } else {
            debug!(?delay, "next attempt");
        }
        if !wait_to_retry(&parts, &mut commands, delay).await {
            return;
        }
    }
}

/// Waits `delay` before the next attempt, refusing commands that need the
/// route meanwhile; a reconnect command cuts the wait short. `false` when
/// the vnet stops.
async fn wait_to_retry(
    parts: &ControlParts,
    commands: &mut mpsc::Receiver<Command>,
    delay: Duration,
) -> bool {
    let wake = tokio::time::sleep(delay);
    tokio::pin!(wake);
    loop {
        tokio::select! {
            _ = parts.shutdown.cancelled() => return false,
            _ = &mut wake => return true,
            Some(command) = commands.recv() => match command {
                Command::Reconnect => return true,
                Command::DirectDown(vnet) => parts.group.send_modify(|a| a.drop_kept(vnet)),
                other => other.refuse(VnetError::NotConnected),
            },
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

/// After the link drops: the route has withdrawn our serves. Streams
/// already flowing keep going on their own data connections, unless the
/// route is gone (see `Session::lost`). The serves of vnets we have a
/// direct link with stay known, and our own registrations stay in the
/// table the serving side reads, so streams go on starting on direct
/// links until a new session begins.
fn forget_session(parts: &ControlParts) {
    parts.session.send_replace(None);
    // Read first: the model is never borrowed while the group is locked.
    let linked: Vec<proto::VnetId> = (parts.model.borrow().direct.iter())
        .filter(|(_, state)| state.is_up())
        .map(|(vnet, _)| *vnet)
        .collect();
    parts
        .group
        .send_modify(|a| a.keep_vnets(|vnet| linked.contains(&vnet)));
    parts.model.send_modify(|s| {
        s.vnet_id = None;
        for serve in s.serves.values_mut() {
            if serve.config.active {
                serve.state = ServeState::Pending;
            }
        }
    });
}
