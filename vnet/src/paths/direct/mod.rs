//! The direct path: one QUIC link per pair of vnets, straight between
//! them, carrying the streams of every use between the two, each with its
//! own flow control. The route only introduces the pair; it never sees
//! the link's traffic, and streams on the link go on while it is away.
//!
//! A stream never waits for a link: while none is up, it goes through
//! the route, and asking for it ([`Direct::link`]) starts one in the
//! background (see [`attempt`]). A link that dies sends new streams back
//! through the route at once; its streams end in a reset, and the next
//! attempt waits out a backoff that grows to several minutes, so a pair
//! that cannot go direct (symmetric NATs, UDP blocked) stays quietly on
//! the relay.
//!
//! - [`identity`]: the link certificate and the checks that admit only
//!   the vnet introduced.
//! - [`socket`]: the UDP socket, probes to the route, punches.
//! - [`attempt`]: turning an introduction into a link; [`hello`] the
//!   first exchange on it; `bind` (with `secret=`) proves both ends hold
//!   the pair key.
//! - `intake`: links others open to us, and our card and probes for
//!   each session; `established`: a link from its hellos to its end.
//! - [`links`]: where the link with each vnet stands.
//! - [`stream`]: one stream on a link, reset unless it ended cleanly.
//! - [`serve`]: streams the peer opens to our serves.
pub(crate) mod attempt;
mod bind;
mod established;
pub(crate) mod hello;
pub(crate) mod identity;
mod intake;
pub(crate) mod lane;
pub(crate) mod links;
pub(crate) mod serve;
pub(crate) mod socket;
pub(crate) mod stream;

use proto::direct::{Fingerprint, Introduction, StreamHeader};
use proto::text::Escaped;
use proto::{ServeId, VnetId};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, Instrument};

use crate::control::command::ControlSender;
use crate::control::session::Session;
use crate::e2e::E2e;
use crate::model::{DirectState, Model};
use crate::serving::Serving;
use attempt::Outcome;
use identity::{Expected, Identity};
use lane::LaneListener;
use links::{Introduced, Link, Links, Lookup};
use proto::direct::lane::LinkHello;
use socket::DirectSocket;
use stream::QuicStream;

/// How often a link's round trip is published.
const RTT_EVERY: Duration = Duration::from_secs(5);

/// What our end of a link offered, undone when the link closes.
struct Offered {
    hello: LinkHello,
    /// The lane key given, if any.
    key_id: Option<[u8; 8]>,
    /// Cancelled when the link closes: lane spares both ways go.
    closed: CancellationToken,
}

/// The direct path of this vnet. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Direct(Arc<Inner>);

struct Inner {
    endpoint: quinn::Endpoint,
    socket: DirectSocket,
    identity: Identity,
    expected: Expected,
    links: Mutex<Links>,
    /// Our TCP lane, offered on every link; none with a TLS route (the
    /// lane would carry in the clear what the route's TLS protects) or
    /// with `secret=` (likewise what end to end seals).
    lanes: Option<LaneListener>,
    /// With `secret=`: links are bound to the pair keys.
    e2e: Option<E2e>,
    /// Its listener, until `run` takes it.
    lane_listener: Mutex<Option<tokio::net::TcpListener>>,
    /// The live session: vnet ids hold for one.
    sessions: watch::Receiver<Option<Session>>,
    control: ControlSender,
    serving: Serving,
    model: Model,
    /// Cancelled when the vnet stops: attempts end with it.
    shutdown: CancellationToken,
}

impl Direct {
    /// The direct path on `socket`, answering streams with `serving`.
    ///
    /// # Errors
    /// The QUIC endpoint cannot be made on the socket.
    pub(crate) fn new(
        socket: DirectSocket,
        identity: Identity,
        control: ControlSender,
        (serving, sessions): (Serving, watch::Receiver<Option<Session>>),
        (shutdown, lane): (CancellationToken, bool),
        e2e: Option<E2e>,
    ) -> std::io::Result<Self> {
        let expected = Expected::default();
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(
            quinn::crypto::rustls::QuicServerConfig::try_from(identity.server(expected.clone()))
                .map_err(std::io::Error::other)?,
        ));
        server.transport_config(attempt::transport());
        let quic = socket.quic.try_clone()?;
        let endpoint = quinn::Endpoint::new(
            attempt::endpoint_config(),
            Some(server),
            quic,
            Arc::new(quinn::TokioRuntime),
        )?;
        let model = serving.model.clone();
        let bound = endpoint.local_addr().ok();
        model.send_modify(|s| s.direct_socket = bound);
        let (lanes, lane_listener) = match lane && e2e.is_none() {
            true => {
                let port = bound.map_or(0, |a| a.port());
                let (lanes, listener) = LaneListener::bind(port)?;
                (Some(lanes), Some(listener))
            }
            false => (None, None),
        };
        let lane_port = lanes.as_ref().map(LaneListener::port);
        model.send_modify(|s| s.lane_port = lane_port);
        Ok(Self(Arc::new(Inner {
            endpoint,
            socket,
            identity,
            expected,
            links: Mutex::default(),
            lanes,
            e2e,
            lane_listener: Mutex::new(lane_listener),
            sessions,
            control,
            serving,
            model,
            shutdown,
        })))
    }

    /// Runs the direct path's tasks until `shutdown`: accepting links,
    /// telling each session's route our card and probing it, and trying
    /// the introductions the route sends.
    pub(crate) async fn run(self, mut introductions: mpsc::Receiver<Introduction>) {
        let shutdown = self.0.shutdown.clone();
        let tracker = self.0.serving.tracker.clone();
        tracker.spawn(self.clone().accept_links(shutdown.clone()));
        tracker.spawn(self.clone().follow_sessions(shutdown.clone()));
        let listener = self.0.lane_listener.lock().expect("lane listener").take();
        if let (Some(lanes), Some(listener)) = (self.0.lanes.clone(), listener) {
            let serving = self.0.serving.clone();
            tracker.spawn(lanes.run(listener, serving, shutdown.clone()));
        }
        loop {
            let intro = tokio::select! {
                _ = shutdown.cancelled() => break,
                intro = introductions.recv() => match intro {
                    Some(intro) => intro,
                    None => break,
                },
            };
            self.introduced(intro);
        }
        self.0.endpoint.close(0u32.into(), b"vnet stopping");
    }

    /// The links' state, once the ids of an earlier session are forgotten.
    fn links(&self) -> MutexGuard<'_, Links> {
        let session = self.0.sessions.borrow().as_ref().map(|s| s.id);
        let mut links = self.0.links.lock().expect("direct links poisoned");
        if links.on_session(session) {
            self.0.expected.clear();
            self.0.model.send_modify(|s| s.direct.clear());
        }
        links
    }

    /// The link to `peer` if one is up; otherwise none, and one is asked
    /// for in the background if no attempt runs or waits.
    pub(crate) fn link(&self, peer: VnetId) -> Option<Link> {
        // An older route does not introduce (and would drop a vnet that
        // asks): links from an earlier session only.
        let introduces = self.0.sessions.borrow().as_ref().is_some_and(|s| s.direct);
        let lookup = self.links().lookup(peer, Instant::now(), introduces);
        match lookup {
            Lookup::Up(link) => return Some(link),
            Lookup::Relay => return None,
            Lookup::Ask => {}
        }
        self.publish(peer, DirectState::Asking);
        let direct = self.clone();
        self.0.serving.tracker.spawn(async move {
            let asked = direct
                .0
                .control
                .request(proto::message::Request::Introduce { vnet_id: peer })
                .await;
            if let Err(err) = asked {
                direct.failed(
                    peer,
                    None,
                    &format!("the route did not introduce it: {err}"),
                );
            }
        });
        None
    }

    /// Opens a stream to `serve_id` on `link`; its header goes with the
    /// first bytes. A link with as many streams open as the other end
    /// allows opens none: the stream goes through the route rather than
    /// wait for one of them to end.
    pub(crate) async fn open(
        link: &quinn::Connection,
        serve_id: ServeId,
    ) -> std::io::Result<QuicStream> {
        use futures::FutureExt;
        let Some(opened) = link.open_bi().now_or_never() else {
            return Err(std::io::Error::other(format!(
                "the link has {} streams open, its most",
                attempt::MAX_STREAMS
            )));
        };
        let (mut send, recv) = opened.map_err(std::io::Error::other)?;
        let header = StreamHeader { serve_id }.encode();
        // Buffered by quinn: no round trip before the client's bytes.
        send.write_all(&header)
            .await
            .map_err(std::io::Error::other)?;
        Ok(QuicStream::new(send, recv))
    }

    /// The route introduced `intro.peer`: try a link, unless one to its
    /// certificate is up.
    fn introduced(&self, intro: Introduction) {
        let peer = intro.peer;
        let introduced = self.links().introduced(peer, intro.cert);
        let done = match introduced {
            Introduced::Adopted(link) => {
                debug!(vnet = %peer, "introduced again; the link is up");
                return self.publish_up(peer, &link);
            }
            Introduced::Attempt(done) => done,
        };
        self.0.expected.insert(intro.cert, peer, &intro.peer_name);
        self.publish(peer, DirectState::Trying);
        let span = tracing::info_span!("direct", vnet = %peer);
        let direct = self.clone();
        let attempt = async move {
            let inner = &direct.0;
            let offered = direct.offer(peer);
            let ends = attempt::Ends {
                endpoint: &inner.endpoint,
                socket: &inner.socket,
                identity: &inner.identity,
                hello: &offered.hello,
            };
            let shutdown = &inner.shutdown;
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => Outcome::Ended,
                outcome = attempt::run(ends, &intro, &done) => outcome,
            };
            match outcome {
                Outcome::Dialed(link, theirs) => {
                    let peer = (peer, intro.peer_name.as_str());
                    direct.establish(peer, link, theirs, offered, true).await
                }
                Outcome::Failed(why) => {
                    direct.withdraw(&offered);
                    direct.failed(peer, Some(intro.cert), &why)
                }
                Outcome::Ended => direct.withdraw(&offered),
            }
        };
        self.0.serving.tracker.spawn(attempt.instrument(span));
    }

    /// An attempt for `peer` failed: wait before the next, longer each time.
    fn failed(&self, peer: VnetId, cert: Option<Fingerprint>, reason: &str) {
        let Some(wait) = self.links().failed(peer, Instant::now()) else {
            return;
        };
        if let Some(cert) = cert {
            self.0.expected.remove(&cert);
        }
        self.publish(peer, DirectState::Relay(reason.to_string()));
        let next = format!("{}s", wait.as_secs());
        info!(vnet = %peer, reason = %Escaped(reason), "no direct link; streams stay on the route, next attempt in {next}");
    }

    fn publish(&self, peer: VnetId, state: DirectState) {
        self.0.model.send_modify(|s| {
            s.direct.insert(peer, state);
        });
    }

    /// The addresses of the direct socket, for tests and logs.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.0.endpoint.local_addr().ok()
    }
}
