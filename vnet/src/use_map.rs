//! A use: a local listener whose connections are carried to a remote serve.
//!
//! The listener is bound as soon as the local port is known (at once when
//! configured, else when the serve first appears and tells its own port)
//! and stays bound. While the serve is not available the use is in
//! standby: connections are closed at once with a log line. It opens by
//! itself when the route announces the serve again.
use proto::io::{splice, Unframed};
use proto::message::VnetMsg;
use proto::ServeId;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, error, info, warn, Instrument};

use crate::config::UseConfig;
use crate::status::StreamGuard;
use crate::{data, Shared};

/// Runs one use until shutdown.
pub(crate) async fn run(shared: Arc<Shared>, use_: UseConfig) {
    let serve_id = use_
        .serve_id
        .expect("only uses with a serve id are started");
    let key = use_.key.clone();
    let span = tracing::info_span!("use", name = %key, serve = %serve_id);
    async move {
        let mut available = shared.available.subscribe();
        let port = match use_.port {
            Some(port) => port,
            None => {
                info!("standby: waiting for the serve to learn its port");
                let entry = tokio::select! {
                    _ = shared.shutdown.cancelled() => return,
                    seen = available.wait_for(|a| a.contains_key(&serve_id)) => match seen {
                        Ok(a) => a[&serve_id].spec.port,
                        Err(_) => return,
                    },
                };
                entry
            }
        };
        let listener = match TcpListener::bind((use_.ip, port)).await {
            Ok(listener) => listener,
            Err(err) => {
                let reason = format!("cannot listen on {}:{port}: {err}", use_.ip);
                error!(%reason, "use failed");
                return set_status(&shared, &key, |u| u.error = Some(reason));
            }
        };
        let local = listener.local_addr().ok();
        let mut open = available.borrow_and_update().contains_key(&serve_id);
        let shown = local.map_or_else(|| format!("{}:{port}", use_.ip), |a| a.to_string());
        info!(addr = %shown, state = if open { "open" } else { "standby" }, "use listening");
        set_status(&shared, &key, |u| {
            u.local = local;
            u.open = open;
        });
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                changed = available.changed() => {
                    if changed.is_err() { return; }
                    let now = available.borrow_and_update().get(&serve_id).map(|e| (e.vnet_id, e.vnet_name.clone()));
                    if now.is_some() != open {
                        open = now.is_some();
                        match now {
                            Some((vnet, vnet_name)) => info!(%vnet, %vnet_name, "serve available; use open"),
                            None => info!("serve gone; standby, new connections are refused until it returns"),
                        }
                        set_status(&shared, &key, |u| u.open = open);
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((client, peer)) if open => {
                        let span = tracing::info_span!("conn", %peer);
                        shared.tracker.spawn(visit(shared.clone(), client, serve_id).instrument(span));
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
    .instrument(span)
    .await;
}

fn set_status(shared: &Shared, key: &str, change: impl FnOnce(&mut crate::UseStatus)) {
    shared.status.send_modify(|s| {
        if let Some(u) = s.uses.get_mut(key) {
            change(u);
        }
    });
}

/// Carries one accepted connection to the serve.
async fn visit(shared: Arc<Shared>, client: TcpStream, serve_id: ServeId) {
    let _counted = StreamGuard::new(&shared.status);
    let _ = client.set_nodelay(true);
    let Some(session) = *shared.session.borrow() else {
        return info!("connection refused: not connected to the route");
    };
    let hello = VnetMsg::Visit {
        serve_id,
        session: session.key,
    };
    let dialed = tokio::select! {
        _ = shared.shutdown.cancelled() => return,
        dialed = data::dial(session.route, hello) => dialed,
    };
    let route_side = match dialed {
        Ok(route_side) => route_side,
        Err(err) => return info!(%err, "connection refused"),
    };
    let client = Unframed {
        stream: client,
        leftover: Default::default(),
    };
    tokio::select! {
        done = splice(client, route_side) => match done {
            Ok((up, down)) => debug!(up, down, "connection closed"),
            Err(err) => debug!(%err, "connection ended with an error"),
        },
        _ = shared.shutdown.cancelled() => {}
    }
}
