//! The serving side of one stream: the route wants one of our serves.
//! Admit it (ours, registered, below its connection limit), connect to the
//! local service first, tell the route the outcome through the path's
//! `reply`, then carry the stream until both sides are done or the serve
//! closes.
use net::relay::sealing::Sealing;
use net::relay::{bridge, bridge_armed, Relayable};
use net::Unframed;
use proto::e2e::stream::{StreamCrypto, StreamHeader, HEADER_LEN};
use proto::{Refusal, RefusalCode, ServeId, VnetId};
use std::future::Future;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn, Instrument};

use crate::current::Current;
use crate::e2e::E2e;
use crate::local::{LocalServe, LocalServes};
use crate::model::{Model, ServeState, StreamGuard};

/// How long connecting to a local service may take.
const SERVICE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stream for a serve id we do not know yet waits for its
/// registration to be confirmed.
const REGISTRATION_GRACE: Duration = Duration::from_secs(2);

/// What the serving side reads and where its tasks run. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Serving {
    /// Registrations are waited for here; streams are counted here.
    pub model: Model,
    /// Our registered serves by id.
    pub local: LocalServes,
    /// For `max_connections`.
    pub current: Current,
    pub tracker: TaskTracker,
    /// Pair keys with the visiting vnets, with `secret=`.
    pub e2e: Option<E2e>,
}

/// Which path a stream came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Through the route: sealed end to end with `secret=`.
    Relay,
    /// A direct link, whose own encryption ends at the two vnets.
    Direct,
}

/// Spawns a stream to `serve_id`: reaches the local service, tells the
/// visitor the outcome with `reply` (which gives back the path's side of
/// the stream), and carries the stream if both worked. `lost` ends it in
/// a reset: the route, or the direct link, is gone.
pub(crate) fn spawn<R, F, P>(
    serving: &Serving,
    (serve_id, from): (ServeId, Option<VnetId>),
    lost: CancellationToken,
    path: Path,
    reply: R,
) where
    R: FnOnce(Result<(), Refusal>) -> F + Send + 'static,
    F: Future<Output = Option<Unframed<P>>> + Send + 'static,
    P: Relayable + Send + Sync + 'static,
{
    let stream = serve(serving.clone(), (serve_id, from), lost, path, reply);
    serving.tracker.spawn(stream);
}

/// [`spawn`] as a future, for a task that has nothing else to do (a lane
/// connection that brought the stream): one task fewer per stream.
pub(crate) fn serve<R, F, P>(
    serving: Serving,
    (serve_id, from): (ServeId, Option<VnetId>),
    lost: CancellationToken,
    path: Path,
    reply: R,
) -> impl Future<Output = ()> + Send
where
    R: FnOnce(Result<(), Refusal>) -> F + Send + 'static,
    F: Future<Output = Option<Unframed<P>>> + Send + 'static,
    P: Relayable + Send + Sync + 'static,
{
    let span = tracing::info_span!("serve", id = %serve_id);
    async move {
        // The steps before carrying are boxed: they are brief, and
        // inline their state would stay in this task for the stream's
        // life (an idle stream is mostly this task).
        let serve = match Box::pin(admit(&serving, serve_id)).await {
            Ok(serve) => serve,
            Err(reason) => {
                Box::pin(reply(Err(reason))).await;
                return;
            }
        };
        let counted = StreamGuard::new(&serving.model, serve.traffic.clone());
        let service = Box::pin(connect(&serve)).await;
        let outcome = service.as_ref().map(|_| ()).map_err(Clone::clone);
        let route_side = Box::pin(reply(outcome)).await;
        if let (Ok(service), Some(route_side)) = (service, route_side) {
            let service = counted.count(service);
            match serving.e2e.as_ref().filter(|_| path == Path::Relay) {
                None => {
                    let armed = path == Path::Direct;
                    carry(&serve, &lost, (route_side, armed), service).await
                }
                // Boxed whole: inline, its state would size every
                // plain stream's task too.
                Some(e2e) => {
                    let sealed =
                        carry_sealed(e2e, (serve_id, from), &serve, &lost, route_side, service);
                    Box::pin(sealed).await
                }
            }
        }
    }
    .instrument(span)
}

/// The serve a stream asks for, if it is ours and below its connection
/// limit; otherwise why not, for the visitor.
///
/// The route announces a serve to the group as it registers it, and a
/// visitor may then reach us on a spare before the route's `Registered`
/// answer has come in on the control connection. So an id we do not know
/// yet gets a short wait for that answer.
async fn admit(serving: &Serving, serve_id: ServeId) -> Result<LocalServe, Refusal> {
    let known = || serving.local.get(serve_id);
    let serve = match known() {
        Some(serve) => Some(serve),
        None => {
            let mut status = serving.model.subscribe();
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
    let max = serving.current.read(|c| c.options.max_connections) as usize;
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
            // A service whose stream does not start, or ends badly, is reset.
            net::socket::reset_on_close(&stream, true);
            return Ok(stream);
        }
        Ok(Err(err)) => format!("serve {} ({addr}) refused: {err}", c.name),
        Err(_) => format!("serve {} ({addr}) did not answer in time", c.name),
    };
    warn!(%reason, "cannot reach local service; visitor is told");
    Err(Refusal::new(RefusalCode::Unreachable, reason))
}

/// [`carry`], sealed end to end.
async fn carry_sealed<P: Relayable, S: Relayable>(
    e2e: &E2e,
    (serve_id, from): (ServeId, Option<VnetId>),
    serve: &LocalServe,
    lost: &CancellationToken,
    route_side: Unframed<P>,
    service: S,
) {
    match unseal(e2e, (serve_id, from), route_side).await {
        Ok((route_side, crypto)) => {
            let service = Sealing::new(service, crypto, &[]);
            carry(serve, lost, (route_side, true), service).await
        }
        Err(reason) => {
            let vnet = from.map_or_else(|| "?".to_string(), |v| v.to_string());
            warn!(%vnet, %reason, "stream refused: not sealed end to end");
            // Tell the visiting vnet, so it can say why too.
            if let Some(from) = from {
                let why = format!("its stream to serve {serve_id} was refused: {reason}");
                e2e.tell_refused(from, &why).await;
            }
        }
    }
}

/// How long a sealed stream's header may take to come.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a sealed stream's header from the route's side and finds its
/// keys; the route's side goes back with what followed the header.
/// Anything else (a plain stream, an unknown or replayed one) is refused:
/// the route's side is reset. A stream from a vnet that has not paired
/// with us cannot be sealed, so it is refused at once rather than after
/// waiting for a header that a client waiting for its server's greeting
/// would never make come.
async fn unseal<P: Relayable>(
    e2e: &E2e,
    (serve_id, from): (ServeId, Option<VnetId>),
    mut route_side: Unframed<P>,
) -> Result<(Unframed<P>, StreamCrypto), String> {
    let mut header = [0u8; HEADER_LEN];
    let from_leftover = route_side.leftover.len().min(HEADER_LEN);
    header[..from_leftover].copy_from_slice(&route_side.leftover[..from_leftover]);
    let rest = route_side.leftover.split_off(from_leftover);
    if let Some(socket) = route_side.stream.socket() {
        net::socket::reset_on_close(socket, true);
    }
    if let Some(from) = from.filter(|v| !e2e.may_seal_from(*v)) {
        return Err(format!(
            "{}: vnet {from} has not paired with this vnet (no secret= there, another, or a key this vnet no longer has)",
            crate::e2e::UNKNOWN_KEY
        ));
    }
    let read = route_side.stream.read_exact(&mut header[from_leftover..]);
    match tokio::time::timeout(HEADER_TIMEOUT, read).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => return Err(format!("the stream ended before its header: {err}")),
        Err(_) => return Err(format!("no header in {HEADER_TIMEOUT:?}")),
    }
    let header = StreamHeader::decode(&header)
        .ok_or("a stream came without end-to-end encryption (from a vnet without the secret?)")?;
    let crypto = e2e.serve(serve_id, &header).await?;
    route_side.leftover = rest;
    Ok((route_side, crypto))
}

/// Carries a started stream until both sides are done or the serve closes.
/// The service's socket was armed to reset on close when connected; the
/// path's side too if `armed`.
async fn carry<P: Relayable, S: Relayable>(
    serve: &LocalServe,
    lost: &CancellationToken,
    (route_side, armed): (Unframed<P>, bool),
    service: S,
) {
    let service = Unframed {
        stream: service,
        leftover: Default::default(),
    };
    let bridged = async {
        if armed {
            bridge_armed(route_side, service).await
        } else {
            bridge(route_side, service).await
        }
    };
    tokio::select! {
        done = bridged => match done {
            Ok((to_service, from_service)) => debug!(to_service, from_service, "stream closed"),
            Err(err) => debug!(%err, "stream ended with an error"),
        },
        _ = serve.cancel.cancelled() => debug!("serve closed; stream cut"),
        _ = lost.cancelled() => tracing::info!("the route or direct link it came on is lost; stream reset"),
    }
}
