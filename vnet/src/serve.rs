//! The serving side of a stream: the route wants one of our serves. Connect
//! to the local service first, then tell the route the outcome, so a
//! refused service makes the visitor's connection close at once instead of
//! hanging.
//!
//! The route asks in one of two ways: on a spare data connection
//! (`Open`, answered on it with `Opened`), or on the control connection
//! (`OpenStream`, answered by dialing back with its ticket).
use net::handshake::send_message;
use net::relay::{bridge, Relayable};
use net::Unframed;
use proto::codec::VnetCodec;
use proto::message::VnetMsg;
use proto::pass::Purpose;
use proto::{Refusal, RefusalCode, ServeId, Ticket};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn, Instrument};

use crate::data::{self, Conn};
use crate::model::StreamGuard;
use crate::{LocalServe, ServeState, Shared};

/// How long connecting to a local service may take.
const SERVICE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Spawns the task that answers one `OpenStream`: by dialing the route
/// with the ticket and the outcome.
pub(crate) fn open_stream(shared: &Arc<Shared>, ticket: Ticket, serve_id: ServeId) {
    let Some(session) = shared.session.borrow().clone() else {
        return;
    };
    let reply = move |result: Result<(), Refusal>| async move {
        let reached = result.is_ok();
        let accept = VnetMsg::Accept {
            ticket,
            pass: session.pass(Purpose::Accept(ticket)),
            result,
        };
        match data::dial(&session.route, accept).await {
            Ok(route_side) => Some(route_side),
            Err(err) if reached => {
                info!(%err, "route did not take the stream");
                None
            }
            Err(_) => None,
        }
    };
    spawn_stream(shared, serve_id, reply);
}

/// Spawns the task that answers `Open` on a spare data connection: on
/// that connection, which then carries the stream.
pub(crate) fn open_on_spare(
    shared: &Arc<Shared>,
    mut spare: Framed<Conn, VnetCodec>,
    serve_id: ServeId,
) {
    let reply = move |result: Result<(), Refusal>| async move {
        let reached = result.is_ok();
        match send_message(&mut spare, VnetMsg::Opened { result }).await {
            Ok(()) if reached => Some(Unframed::from_framed(spare)),
            Ok(()) => None,
            Err(err) => {
                info!(%err, "route did not take the stream");
                None
            }
        }
    };
    spawn_stream(shared, serve_id, reply);
}

/// Spawns a stream to `serve_id`: reaches the local service, tells the
/// route the outcome with `reply` (which gives back the route's side of
/// the stream), and carries the stream if both worked.
fn spawn_stream<R, F>(shared: &Arc<Shared>, serve_id: ServeId, reply: R)
where
    R: FnOnce(Result<(), Refusal>) -> F + Send + 'static,
    F: Future<Output = Option<Unframed<Conn>>> + Send,
{
    let span = tracing::info_span!("serve", id = %serve_id);
    let task_shared = shared.clone();
    shared.tracker.spawn(
        async move {
            let shared = task_shared;
            let serve = match admit(&shared, serve_id).await {
                Ok(serve) => serve,
                Err(reason) => {
                    reply(Err(reason)).await;
                    return;
                }
            };
            let counted = StreamGuard::new(&shared.status, serve.traffic.clone());
            let service = connect(&serve).await;
            let route_side = reply(service.as_ref().map(|_| ()).map_err(Clone::clone)).await;
            if let (Ok(service), Some(route_side)) = (service, route_side) {
                carry(&serve, route_side, counted.count(service)).await;
            }
        }
        .instrument(span),
    );
}

/// How long a stream for a serve id we do not know yet waits for its
/// registration to be confirmed.
const REGISTRATION_GRACE: Duration = Duration::from_secs(2);

/// The serve a stream asks for, if it is ours and below its connection
/// limit; otherwise why not, for the visitor.
///
/// The route announces a serve to the group as it registers it, and a
/// visitor may then reach us on a spare before the route's `Registered`
/// answer has come in on the control connection. So an id we do not know
/// yet gets a short wait for that answer.
async fn admit(shared: &Shared, serve_id: ServeId) -> Result<LocalServe, Refusal> {
    let known = || shared.local().get(&serve_id).cloned();
    let serve = match known() {
        Some(serve) => Some(serve),
        None => {
            let mut status = shared.status.subscribe();
            let registered = status.wait_for(|s| {
                s.serves
                    .values()
                    .any(|v| v.state == ServeState::Registered(serve_id))
            });
            let _ = tokio::time::timeout(REGISTRATION_GRACE, registered).await;
            known()
        }
    };
    let Some(serve) = serve else {
        let reason = format!("serve {serve_id} is not served by this vnet");
        warn!(%reason, "stream refused");
        return Err(Refusal::new(RefusalCode::NotFound, reason));
    };
    let max = shared.settings().vnet.max_connections as usize;
    if serve.traffic.connections() >= max {
        let reason = format!(
            "serve {} is at its connection limit ({max}, max_connections)",
            serve.config.name
        );
        warn!(%reason, "stream refused");
        return Err(Refusal::new(RefusalCode::Limit, reason));
    }
    Ok(serve)
}

/// Connects to the serve's local service; the error is for the visitor.
async fn connect(serve: &LocalServe) -> Result<TcpStream, Refusal> {
    let c = &serve.config;
    let addr = format!("{}:{}", c.ip, c.port);
    let connected = tokio::time::timeout(
        SERVICE_CONNECT_TIMEOUT,
        TcpStream::connect((c.ip.as_str(), c.port)),
    )
    .await;
    let reason = match connected {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            return Ok(stream);
        }
        Ok(Err(err)) => format!("serve {} ({addr}) refused: {err}", c.name),
        Err(_) => format!("serve {} ({addr}) did not answer in time", c.name),
    };
    warn!(%reason, "cannot reach local service; visitor is told");
    Err(Refusal::new(RefusalCode::Unreachable, reason))
}

/// Carries a started stream until both sides are done or the serve closes.
async fn carry<S: Relayable>(serve: &LocalServe, route_side: Unframed<Conn>, service: S) {
    let service = Unframed {
        stream: service,
        leftover: Default::default(),
    };
    tokio::select! {
        done = bridge(route_side, service) => match done {
            Ok((to_service, from_service)) => debug!(to_service, from_service, "stream closed"),
            Err(err) => debug!(%err, "stream ended with an error"),
        },
        _ = serve.cancel.cancelled() => debug!("serve closed; stream cut"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::handshake::next_message;
    use proto::codec::RouteCodec;
    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    /// Confirms the registration of serve `key` under `id`, as the control
    /// connection does when the route's `Registered` answer comes in.
    fn confirm_registration(shared: &Shared, key: &str, id: ServeId) {
        shared.status.send_modify(|s| {
            let serve = s.serves.get_mut(key).expect("configured serve");
            shared.local().insert(
                id,
                LocalServe {
                    config: serve.config.clone(),
                    cancel: CancellationToken::new(),
                    traffic: serve.traffic.clone(),
                },
            );
            serve.state = ServeState::Registered(id);
        });
    }

    /// On one thread, the stream task runs up to its wait at the yield;
    /// without the wait it would refuse there.
    #[tokio::test]
    async fn a_stream_on_a_spare_waits_for_its_registration_to_be_confirmed() {
        let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let text = format!(
            "[route]\nip=127.0.0.1\nport=1\n[serve.echo]\nserveid=700\nip=127.0.0.1\nport={}\n",
            service.local_addr().unwrap().port()
        );
        let config = crate::VnetConfig::parse("t.ini", &text).unwrap();
        let handle = crate::start(config, CancellationToken::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (ours, theirs) = tokio::join!(
            TcpStream::connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        let spare = Framed::new(Conn::Plain(ours.unwrap()), VnetCodec::new());
        let mut route_end = Framed::new(theirs.unwrap().0, RouteCodec::new());
        let id = ServeId::new(700).unwrap();

        open_on_spare(&handle.shared, spare, id);
        tokio::task::yield_now().await;
        confirm_registration(&handle.shared, "echo", id);
        let answer = tokio::time::timeout(Duration::from_secs(20), next_message(&mut route_end))
            .await
            .expect("an answer in time")
            .expect("a frame");
        assert_eq!(answer, VnetMsg::Opened { result: Ok(()) });
        handle.shutdown();
    }
}
