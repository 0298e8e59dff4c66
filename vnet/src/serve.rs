//! The serving side of a stream: the route asked (`OpenStream`) for one of
//! our serves. Connect to the local service first, then dial the route
//! back with the ticket and the outcome, so a refused service makes the
//! visitor's connection close at once instead of hanging.
use proto::io::{splice, Unframed};
use proto::message::VnetMsg;
use proto::{ServeId, Ticket};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tracing::{debug, info, warn, Instrument};

use crate::status::StreamGuard;
use crate::{data, Shared};

/// How long connecting to a local service may take.
const SERVICE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Spawns the task that answers one `OpenStream`.
pub(crate) fn open_stream(shared: &Arc<Shared>, ticket: Ticket, serve_id: ServeId) {
    let target = shared.local().get(&serve_id).cloned();
    let Some(session) = shared.session.borrow().clone() else {
        return;
    };
    let span = tracing::info_span!("serve", id = %serve_id);
    let task_shared = shared.clone();
    shared.tracker.spawn(
        async move {
            let shared = task_shared;
            let Some(serve) = target else {
                let reason = format!("serve {serve_id} is not served by this vnet");
                warn!(%reason, "stream refused");
                let _ = data::dial(&session.route, VnetMsg::Accept { ticket, result: Err(reason) }).await;
                return;
            };
            let max = shared.settings().vnet.max_connections as usize;
            if serve.traffic.connections() >= max {
                let reason = format!("serve {} is at its connection limit ({max}, max_connections)", serve.config.name);
                warn!(%reason, "stream refused");
                let _ = data::dial(&session.route, VnetMsg::Accept { ticket, result: Err(reason) }).await;
                return;
            }
            let counted = StreamGuard::new(&shared.status, serve.traffic.clone());
            let c = &serve.config;
            let addr = format!("{}:{}", c.ip, c.port);
            let service = match tokio::time::timeout(SERVICE_CONNECT_TIMEOUT, TcpStream::connect((c.ip.as_str(), c.port))).await {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(err)) => Err(format!("serve {} ({addr}) refused: {err}", c.name)),
                Err(_) => Err(format!("serve {} ({addr}) did not answer in time", c.name)),
            };
            let result = service.as_ref().map(|_| ()).map_err(Clone::clone);
            if let Err(reason) = &result {
                warn!(%reason, "cannot reach local service; visitor is told");
            }
            let route_side = data::dial(&session.route, VnetMsg::Accept { ticket, result }).await;
            let (service, route_side) = match (service, route_side) {
                (Ok(service), Ok(route_side)) => (service, route_side),
                (Err(_), _) => return,
                (Ok(_), Err(err)) => return info!(%err, "route did not take the stream"),
            };
            let _ = service.set_nodelay(true);
            let service = Unframed {
                stream: counted.count(service),
                leftover: Default::default(),
            };
            tokio::select! {
                done = splice(route_side, service) => match done {
                    Ok((to_service, from_service)) => debug!(to_service, from_service, "stream closed"),
                    Err(err) => debug!(%err, "stream ended with an error"),
                },
                _ = serve.cancel.cancelled() => debug!("serve closed; stream cut"),
            }
        }
        .instrument(span),
    );
}
