//! A use: a local listener whose connections are carried to a remote serve.
//!
//! The listener is bound as soon as the local port is known (at once when
//! configured, else when the serve first appears and tells its own port)
//! and stays bound. While the serve is not available the use is in
//! standby: connections are closed at once with a log line. It opens by
//! itself when the route announces the serve again. The mapping of an
//! unserve grant is removed instead, once its serve has gone.
use net::relay::bridge;
use net::Unframed;
use proto::message::ServeEntry;
use proto::{ServeId, VnetId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn, Instrument};

use crate::error::DialError;
use crate::model::StreamGuard;
use crate::{visit, Shared, Traffic, UseStatus};

/// Starts the use `key` as the status describes it. Does nothing if it is
/// running already or has no serve id.
pub(crate) fn spawn(shared: &Arc<Shared>, key: &str) {
    let (config, traffic, grant) = {
        let status = shared.status.borrow();
        let Some(u) = status.uses.get(key) else {
            return;
        };
        (u.config.clone(), u.traffic.clone(), u.grant)
    };
    let Some(serve_id) = config.serve_id else {
        return;
    };
    let cancel = shared.shutdown.child_token();
    let (done_tx, done) = oneshot::channel();
    let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
    {
        let mut tasks = shared.use_tasks();
        if tasks.contains_key(key) {
            return;
        }
        tasks.insert(
            key.to_string(),
            UseTask {
                cancel: cancel.clone(),
                done,
                generation,
            },
        );
    }
    let span = tracing::info_span!("use", name = %key, serve = %serve_id);
    let task = Use {
        shared: shared.clone(),
        key: key.to_string(),
        serve_id,
        cancel,
        traffic,
        grant,
        max_connections: shared.settings().vnet.max_connections as usize,
    };
    let owner = shared.clone();
    let key = key.to_string();
    shared.tracker.spawn(
        async move {
            task.run(config.ip, config.port).await;
            // An ended task (a failed bind, say) must not block the next
            // `use open`; a newer task under the same key is not ours.
            let mut tasks = owner.use_tasks();
            if tasks.get(&key).is_some_and(|t| t.generation == generation) {
                tasks.remove(&key);
            }
            drop(tasks);
            drop(done_tx);
        }
        .instrument(span),
    );
}

/// A running use, as its owner stops it.
pub(crate) struct UseTask {
    cancel: CancellationToken,
    /// Resolves (with an error) once the task has ended and its listener
    /// is closed.
    done: oneshot::Receiver<()>,
    /// Tells this task's entry from a later one under the same key.
    generation: u64,
}

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Stops the use `key`: its listener and connections close. Await the
/// returned receiver to know the port is free again.
pub(crate) fn stop(shared: &Shared, key: &str) -> Option<oneshot::Receiver<()>> {
    let task = shared.use_tasks().remove(key)?;
    task.cancel.cancel();
    Some(task.done)
}

struct Use {
    shared: Arc<Shared>,
    key: String,
    serve_id: ServeId,
    cancel: CancellationToken,
    traffic: Arc<Traffic>,
    /// The granting vnet, for the mapping of an unserve grant.
    grant: Option<VnetId>,
    /// `[vnet] max_connections`, read when the use started.
    max_connections: usize,
}

impl Use {
    /// The serve this use reaches, if it is available: for a grant's
    /// mapping only while the granting vnet holds the id.
    fn target(&self, available: &BTreeMap<ServeId, ServeEntry>) -> Option<(VnetId, String)> {
        let entry = available.get(&self.serve_id)?;
        if self.grant.is_some_and(|from| from != entry.vnet_id) {
            return None;
        }
        Some((entry.vnet_id, entry.vnet_name.clone()))
    }

    fn set_status(&self, change: impl FnOnce(&mut UseStatus)) {
        if self.cancel.is_cancelled() {
            return; // stopped: the status now belongs to whoever stopped us
        }
        self.shared.status.send_modify(|s| {
            if let Some(u) = s.uses.get_mut(&self.key) {
                change(u);
            }
        });
    }

    async fn run(self, ip: std::net::IpAddr, port: Option<u16>) {
        let serve_id = self.serve_id;
        let mut available = self.shared.available.subscribe();
        let port = match port {
            Some(port) => port,
            None => {
                info!("waiting for the serve to learn its port");
                tokio::select! {
                    _ = self.cancel.cancelled() => return,
                    seen = available.wait_for(|a| a.contains_key(&serve_id)) => match seen {
                        Ok(a) => a[&serve_id].spec.port,
                        Err(_) => return,
                    },
                }
            }
        };
        let listener = match net::listen::bind(std::net::SocketAddr::new(ip, port)) {
            Ok(listener) => listener,
            Err(err) => {
                let reason = format!("cannot listen on {ip}:{port}: {err}");
                // The span may be filtered out at warn level; name the use here.
                error!(r#use = %self.key, %reason, "use failed");
                return self.set_status(|u| u.error = Some(reason));
            }
        };
        let local = listener.local_addr().ok();
        let mut open = self.target(&available.borrow_and_update()).is_some();
        if self.grant.is_some() && !open {
            // The grant went while the mapping was being set up.
            return self.withdrawn();
        }
        let shown = local.map_or_else(|| format!("{ip}:{port}"), |a| a.to_string());
        info!(addr = %shown, state = if open { "open" } else { "standby" }, "use listening");
        self.set_status(|u| {
            u.local = local;
            u.open = open;
            u.error = None;
        });
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return info!(addr = %shown, "use closed"),
                changed = available.changed() => {
                    if changed.is_err() { return; }
                    let now = self.target(&available.borrow_and_update());
                    if now.is_some() == open {
                        continue;
                    }
                    open = now.is_some();
                    match now {
                        Some((vnet, vnet_name)) => info!(%vnet, %vnet_name, "serve available; use open"),
                        None if self.grant.is_some() => return self.withdrawn(),
                        None => info!("serve gone; standby, new connections are refused until it returns"),
                    }
                    self.set_status(|u| u.open = open);
                }
                accepted = listener.accept() => match accepted {
                    Ok((_, peer)) if open && self.traffic.connections() >= self.max_connections => {
                        warn!(%peer, max_connections = self.max_connections, "connection refused: the use is at its connection limit");
                    }
                    Ok((client, peer)) if open => {
                        let span = tracing::info_span!("conn", %peer);
                        let carried = carry(self.shared.clone(), client, serve_id, self.cancel.clone(), self.traffic.clone());
                        self.shared.tracker.spawn(carried.instrument(span));
                    }
                    Ok((_, peer)) => info!(%peer, "connection refused: serve not available (standby)"),
                    Err(err) => {
                        warn!(%err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// The grant behind this mapping was withdrawn: remove the use.
    fn withdrawn(self) {
        info!("grant withdrawn by its vnet; mapping removed");
        if !self.cancel.is_cancelled() {
            // Our own task: nothing to wait for, we are about to return.
            drop(stop(&self.shared, &self.key));
            self.shared.status.send_modify(|s| {
                s.uses.remove(&self.key);
            });
        }
    }
}

/// Carries one accepted connection to the serve.
async fn carry(
    shared: Arc<Shared>,
    client: TcpStream,
    serve_id: ServeId,
    cancel: CancellationToken,
    traffic: Arc<Traffic>,
) {
    let counted = StreamGuard::new(&shared.status, traffic);
    let _ = client.set_nodelay(true);
    let Some(session) = shared.session.borrow().clone() else {
        return info!("connection refused: not connected to the route");
    };
    let mut client = counted.count(client);
    let started = tokio::select! {
        _ = cancel.cancelled() => return,
        started = visit::start(&shared, &session, serve_id, &mut client) => started,
    };
    let route_side = match started {
        Ok(route_side) => route_side,
        Err(DialError::ClientGone(err)) => {
            return debug!(%err, "client left before its stream started")
        }
        Err(err) => return info!(%err, "connection refused"),
    };
    let client = Unframed {
        stream: client,
        leftover: Default::default(),
    };
    tokio::select! {
        done = bridge(client, route_side) => match done {
            Ok((up, down)) => debug!(up, down, "connection closed"),
            Err(err) => debug!(%err, "connection ended with an error"),
        },
        _ = cancel.cancelled() => debug!("use closed; connection cut"),
    }
}
