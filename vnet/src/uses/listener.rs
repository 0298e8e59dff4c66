//! One use's task: a local listener whose connections are carried to a
//! remote serve.
//!
//! The listener is bound as soon as the local port is known (at once when
//! configured, else when the serve first appears and tells its own port)
//! and stays bound. While the serve is not available the use is in
//! standby: connections are closed at once with a log line. It opens by
//! itself when the route announces the serve again.
//!
//! The mapping of an unserve grant does the same while its serve is gone
//! with its vnet (either vnet, or the route, reconnecting), and knows the
//! granting vnet again by its name when its id changed. It ends when the
//! granting vnet withdraws the grant, or when the serve has been gone
//! for [`GRANT_STANDBY`].
use proto::{ServeId, VnetId};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn, Instrument};

use crate::model::{GroupServes, Model, UseStatus};
use crate::outcome;
use crate::traffic::Traffic;
use crate::visiting::{self, Visiting};

/// How long the mapping of a grant waits in standby for its serve to come
/// back: longer than a grant lives unused by default, so a granting vnet
/// that comes back with the grant finds the mapping still there.
pub(crate) const GRANT_STANDBY: Duration = Duration::from_secs(600);

/// The vnet that granted a mapped grant, as last seen.
#[derive(Debug, Clone)]
struct Granter {
    id: VnetId,
    /// Learned when the grant's serve is first seen; how the granting
    /// vnet is known again after its id changed (a route restart).
    name: Option<String>,
}

/// How a use's task ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Closed or stopped; whoever stopped it owns its status.
    Stopped,
    /// It could not listen; the reason goes into its status once the task
    /// is gone, so a `use open` seeing the error can start a new one.
    Failed(String),
    /// The grant behind this mapping was withdrawn: the use goes.
    Withdrawn,
}

/// A running use.
pub(crate) struct Listener {
    pub key: String,
    pub serve_id: ServeId,
    /// Cancelled when the use is stopped; cuts its connections too.
    pub cancel: CancellationToken,
    pub traffic: Arc<Traffic>,
    /// The granting vnet, for the mapping of an unserve grant.
    pub grant: Option<VnetId>,
    /// `[vnet] max_connections`, read when the use started.
    pub max_connections: usize,
    /// Whether its streams may go on a direct link (`direct=`).
    pub direct: bool,
    pub model: Model,
    /// The group's serves: whether ours is available.
    pub group: watch::Receiver<GroupServes>,
    /// What each carried connection needs.
    pub visiting: Visiting,
    pub tracker: TaskTracker,
}

impl Listener {
    /// The serve this use reaches, if it is available: for a grant's
    /// mapping only while the granting vnet (by id, or by name after its
    /// id changed) holds the id.
    fn target(
        &self,
        available: &GroupServes,
        granter: &mut Option<Granter>,
    ) -> Option<(VnetId, String)> {
        let entry = available.get(&self.serve_id)?;
        if let Some(granter) = granter {
            let same_name = granter.name.as_deref() == Some(entry.vnet_name.as_str());
            if entry.vnet_id != granter.id && !same_name {
                return None;
            }
            granter.id = entry.vnet_id;
            granter.name = Some(entry.vnet_name.clone());
        }
        Some((entry.vnet_id, entry.vnet_name.clone()))
    }

    fn set_status(&self, change: impl FnOnce(&mut UseStatus)) {
        if self.cancel.is_cancelled() {
            return; // stopped: the status now belongs to whoever stopped us
        }
        self.model.send_modify(|s| {
            if let Some(u) = s.uses.get_mut(&self.key) {
                change(u);
            }
        });
    }

    /// Listens on `ip:port` (the serve's port when `None`) and carries
    /// connections until stopped.
    pub(crate) async fn run(self, ip: IpAddr, port: Option<u16>) -> Exit {
        let serve_id = self.serve_id;
        let mut available = self.group.clone();
        let port = match port {
            Some(port) => port,
            None => {
                info!("waiting for the serve to learn its port");
                tokio::select! {
                    _ = self.cancel.cancelled() => return Exit::Stopped,
                    seen = available.wait_for(|a| a.contains_key(&serve_id)) => match seen {
                        Ok(a) => a[&serve_id].spec.port,
                        Err(_) => return Exit::Stopped,
                    },
                }
            }
        };
        let bound = net::listen::bind(SocketAddr::new(ip, port))
            .and_then(|l| net::listen::for_relaying(&l, None).map(|()| l));
        let listener = match bound {
            Ok(listener) => listener,
            Err(err) => {
                let addr = SocketAddr::new(ip, port);
                let held = match err.kind() {
                    std::io::ErrorKind::AddrInUse => net::listen::holder(addr)
                        .map_or_else(String::new, |who| format!(" (held by {who})")),
                    _ => String::new(),
                };
                let reason = format!("cannot listen on {addr}: {err}{held}");
                // The span may be filtered out at warn level; name the use here.
                error!(target: outcome::USE, r#use = %self.key, %reason, "use failed");
                return Exit::Failed(reason);
            }
        };
        let local = listener.local_addr().ok();
        let mut granter = self.grant.map(|id| Granter { id, name: None });
        let mut open = self
            .target(&available.borrow_and_update(), &mut granter)
            .is_some();
        if granter.is_some() && !open {
            // The grant went while the mapping was being set up.
            return self.withdrawn();
        }
        // While a grant's serve is gone: when to give up on it.
        let mut give_up: Option<Instant> = None;
        let shown = local.map_or_else(|| format!("{ip}:{port}"), |a| a.to_string());
        let state = if open { "open" } else { "standby" };
        info!(target: outcome::USE, addr = %shown, state, "use listening");
        self.set_status(|u| {
            u.local = local;
            u.open = open;
            u.error = None;
        });
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    info!(target: outcome::USE, addr = %shown, "use closed");
                    return Exit::Stopped;
                }
                changed = available.changed() => {
                    if changed.is_err() {
                        return Exit::Stopped;
                    }
                    let group = available.borrow_and_update().clone();
                    let now = self.target(&group, &mut granter);
                    if let Some(granter) = &granter {
                        // Withdrawn by the granting vnet, or its id taken by
                        // another: the grant is over. Merely gone: standby.
                        let withdrawn = group.withdrawn_by(self.serve_id) == Some(granter.id);
                        let taken = group.contains_key(&self.serve_id);
                        if now.is_none() && (withdrawn || taken) {
                            return self.withdrawn();
                        }
                        give_up = match (&now, give_up) {
                            (Some(_), _) => None,
                            (None, None) => Some(Instant::now() + GRANT_STANDBY),
                            (None, later) => later,
                        };
                    }
                    self.serve_changed(now, &mut open);
                }
                _ = sleep_until_some(give_up) => {
                    info!(after = ?GRANT_STANDBY, "the grant's serve did not come back; mapping removed");
                    return Exit::Withdrawn;
                }
                accepted = listener.accept() => self.accepted(accepted, open).await,
            }
        }
    }

    /// The serve appeared or went (`now`): open or standby.
    fn serve_changed(&self, now: Option<(VnetId, String)>, open: &mut bool) {
        if now.is_some() == *open {
            return;
        }
        *open = now.is_some();
        match &now {
            Some((vnet, vnet_name)) => {
                let vnet_name = proto::text::Escaped(vnet_name);
                info!(%vnet, %vnet_name, "serve available; use open")
            }
            None => info!("serve gone; standby, new connections are refused until it returns"),
        }
        let open = *open;
        let grant = now.filter(|_| self.grant.is_some()).map(|(vnet, _)| vnet);
        self.set_status(|u| {
            u.open = open;
            // The granting vnet may have come back under another id.
            if let Some(vnet) = grant {
                u.grant = Some(vnet);
            }
        });
    }

    /// Carries an accepted connection, or closes it with a log line.
    async fn accepted(&self, accepted: std::io::Result<(TcpStream, SocketAddr)>, open: bool) {
        match accepted {
            Ok((_, peer)) if open && self.traffic.connections() >= self.max_connections => {
                warn!(
                    %peer,
                    max_connections = self.max_connections,
                    "connection refused: the use is at its connection limit"
                );
            }
            Ok((client, peer)) if open => {
                let span = tracing::info_span!("conn", %peer);
                let carried = visiting::carry(
                    self.visiting.clone(),
                    client,
                    (self.serve_id, self.direct),
                    self.cancel.clone(),
                    self.traffic.clone(),
                );
                self.tracker.spawn(carried.instrument(span));
            }
            Ok((_, peer)) => info!(%peer, "connection refused: serve not available (standby)"),
            Err(err) => {
                warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// The grant behind this mapping was withdrawn.
    fn withdrawn(&self) -> Exit {
        info!("grant withdrawn by its vnet; mapping removed");
        Exit::Withdrawn
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UseConfig;
    use crate::model::Status;
    use crate::paths::relay::spares::VisitingSpares;
    use proto::message::{ServeEntry, ServeSpec};

    fn entry(serve_id: ServeId, vnet: u16, name: &str) -> ServeEntry {
        ServeEntry {
            serve_id,
            vnet_id: VnetId(vnet),
            vnet_name: name.to_string(),
            spec: ServeSpec {
                name: "jupyter".into(),
                serve_id: Some(serve_id),
                kind: "tcp".into(),
                ip: "127.0.0.1".into(),
                port: 8888,
                info: String::new(),
            },
        }
    }

    /// A grant's mapping (granted by vnet 01) on serve 001, running, once
    /// it listens and is open.
    async fn grant_mapping(
        group: watch::Receiver<GroupServes>,
    ) -> (CancellationToken, tokio::task::JoinHandle<Exit>) {
        let ip = IpAddr::from([127, 0, 0, 1]);
        let mut status = Status::default();
        let config = UseConfig {
            key: "unserve-001".into(),
            serve_id: ServeId::new(1),
            ip,
            port: Some(0),
            active: true,
            direct: None,
        };
        status.uses.insert(
            config.key.clone(),
            UseStatus {
                config,
                local: None,
                open: false,
                error: None,
                grant: Some(VnetId(1)),
                from_shell: false,
                traffic: Arc::default(),
            },
        );
        let model = watch::Sender::new(status);
        let mut seen = model.subscribe();
        let (_sessions, sessions) = watch::channel(None);
        let cancel = CancellationToken::new();
        let listener = Listener {
            key: "unserve-001".into(),
            serve_id: ServeId::new(1).unwrap(),
            cancel: cancel.clone(),
            traffic: Arc::default(),
            grant: Some(VnetId(1)),
            max_connections: 8,
            direct: false,
            model: model.clone(),
            group: group.clone(),
            visiting: Visiting {
                model: model.clone(),
                sessions,
                spares: VisitingSpares::new(model),
                group,
                e2e: None,
                direct: None,
            },
            tracker: TaskTracker::new(),
        };
        let task = tokio::spawn(listener.run(ip, Some(0)));
        let opened = seen.wait_for(|s| s.uses["unserve-001"].open);
        let opened = tokio::time::timeout(Duration::from_secs(5), opened).await;
        opened.expect("the mapping opens").unwrap();
        (cancel, task)
    }

    /// A grant's mapping whose serve then went with its vnet (not
    /// withdrawn): in standby. The group's sender, to bring it back.
    async fn mapping_in_standby() -> (
        watch::Sender<GroupServes>,
        CancellationToken,
        tokio::task::JoinHandle<Exit>,
    ) {
        let id = ServeId::new(1).unwrap();
        let mut serves = GroupServes::default();
        serves.up(entry(id, 1, "home"));
        let (group, watched) = watch::channel(serves);
        let (cancel, task) = grant_mapping(watched).await;
        group.send_modify(|serves| serves.down(id, false));
        (group, cancel, task)
    }

    #[tokio::test(start_paused = true)]
    async fn a_grants_mapping_waits_for_its_serve_then_goes() {
        let (_group, _cancel, task) = mapping_in_standby().await;
        tokio::time::sleep(GRANT_STANDBY - Duration::from_secs(1)).await;
        assert!(!task.is_finished(), "gave up before the standby ended");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let exit = tokio::time::timeout(Duration::from_secs(1), task).await;
        assert_eq!(exit.expect("ended").unwrap(), Exit::Withdrawn);
    }

    #[tokio::test(start_paused = true)]
    async fn a_serve_back_in_time_keeps_the_mapping() {
        let (group, cancel, task) = mapping_in_standby().await;
        tokio::time::sleep(GRANT_STANDBY / 2).await;
        // Back under a new id of its vnet (a route restart), same name.
        let id = ServeId::new(1).unwrap();
        group.send_modify(|serves| serves.up(entry(id, 2, "home")));
        tokio::time::sleep(GRANT_STANDBY * 2).await;
        assert!(!task.is_finished(), "a mapping whose serve came back went");
        cancel.cancel();
        assert_eq!(task.await.unwrap(), Exit::Stopped);
    }
}
