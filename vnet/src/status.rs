//! What a running vnet knows about itself: every serve and use with its
//! config and state, published on a `watch` channel so tests and the shell
//! can wait for a state instead of sleeping. Byte and connection counters
//! live in shared [`Traffic`] cells, updated by the stream tasks without
//! republishing the whole status.
use net::relay::Relayable;
use proto::{ServeId, VnetId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::config::{ServeConfig, UseConfig};

/// A snapshot of the vnet's state.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Our id at the route while the control connection is up.
    pub vnet_id: Option<VnetId>,
    /// Why the last attempt to reach the route failed, until one succeeds.
    pub route_error: Option<String>,
    /// Control connections established so far; grows by one per
    /// (re)connect.
    pub connects: u64,
    /// Serves by key (the part after `serve.`).
    pub serves: BTreeMap<String, ServeStatus>,
    /// Uses by key.
    pub uses: BTreeMap<String, UseStatus>,
    /// Mapped connections open right now, as visitor and as server.
    /// Returns to 0 when every connection has been torn down.
    pub streams: usize,
    /// Spare data connections to the route (`[vnet] spares`).
    pub spares: SpareCounts,
}

/// Spare data connections idle now, and streams started on one so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SpareCounts {
    /// Idle, for our uses.
    pub idle_visit: usize,
    /// Idle, for our serves.
    pub idle_serve: usize,
    /// Streams our uses started on a spare.
    pub used_visit: u64,
    /// Streams to our serves the route asked for on a spare (including
    /// any this vnet then refused).
    pub used_serve: u64,
}

/// A serve and where its registration stands.
#[derive(Debug, Clone)]
pub struct ServeStatus {
    /// As configured (or created from the shell); `active` says whether it
    /// should be registered.
    pub config: ServeConfig,
    /// Registration state.
    pub state: ServeState,
    /// The id last granted by the route; asked for again after a
    /// reconnect, so users of a dynamic id keep reaching it.
    pub last_id: Option<ServeId>,
    /// A time-limited grant made for another vnet (unserve).
    pub grant: Option<String>,
    /// Connections and bytes.
    pub traffic: Arc<Traffic>,
}

/// Where a serve's registration stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "detail")]
pub enum ServeState {
    /// Not active: not registered.
    Inactive,
    /// Waiting for the route (not connected, or request in flight).
    Pending,
    /// Registered under this id.
    Registered(ServeId),
    /// The route refused it; the text says why.
    Refused(String),
}

/// A use and where it stands.
#[derive(Debug, Clone)]
pub struct UseStatus {
    /// As configured; `active` says whether it should listen.
    pub config: UseConfig,
    /// The local address it listens on, once bound.
    pub local: Option<SocketAddr>,
    /// Whether the serve is available, so connections are carried.
    /// Otherwise an active use is in standby and refuses connections.
    pub open: bool,
    /// Why the use cannot work (for example, its port is taken).
    pub error: Option<String>,
    /// For the mapping of a grant received by unserve: the vnet that
    /// granted it. The mapping is removed when the grant is withdrawn, and
    /// never reaches a serve of another vnet under the same id.
    pub grant: Option<VnetId>,
    /// Connections and bytes.
    pub traffic: Arc<Traffic>,
}

impl ServeStatus {
    /// A serve not yet registered.
    pub fn new(config: ServeConfig) -> Self {
        let state = if config.active {
            ServeState::Pending
        } else {
            ServeState::Inactive
        };
        Self {
            config,
            state,
            last_id: None,
            grant: None,
            traffic: Arc::default(),
        }
    }
}

impl UseStatus {
    /// A use not yet started.
    pub fn new(config: UseConfig) -> Self {
        Self {
            config,
            local: None,
            open: false,
            error: None,
            grant: None,
            traffic: Arc::default(),
        }
    }

    /// One word for people: off, failed, waiting, standby or open.
    pub fn state(&self) -> &'static str {
        match (self.config.active, &self.error, self.local, self.open) {
            (false, _, _, _) => "off",
            (true, Some(_), _, _) => "failed",
            (true, None, None, _) => "waiting",
            (true, None, Some(_), false) => "standby",
            (true, None, Some(_), true) => "open",
        }
    }
}

impl Status {
    /// The id a serve is registered under, if it is.
    pub fn serve_id(&self, key: &str) -> Option<ServeId> {
        match self.serves.get(key).map(|s| &s.state) {
            Some(ServeState::Registered(id)) => Some(*id),
            _ => None,
        }
    }

    /// The local address of a use that is open, if it is.
    pub fn open_use(&self, key: &str) -> Option<SocketAddr> {
        self.uses.get(key).filter(|u| u.open).and_then(|u| u.local)
    }
}

/// Live counters of one serve or use.
#[derive(Debug, Default)]
pub struct Traffic {
    open: watch::Sender<usize>,
    /// Bytes from the local side into the tunnel.
    sent: AtomicU64,
    /// Bytes from the tunnel to the local side.
    received: AtomicU64,
    /// Connections opened so far, closed ones included.
    opened: AtomicU64,
}

impl Traffic {
    /// Connections open now.
    pub fn connections(&self) -> usize {
        *self.open.borrow()
    }

    /// Bytes sent into the tunnel and received from it.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }

    /// Connections opened so far, closed ones included: a connection too
    /// short to be seen open still counts as use.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Watches the open-connection count (grants expire on it).
    pub fn watch_connections(&self) -> watch::Receiver<usize> {
        self.open.subscribe()
    }
}

/// Counts one open stream while it lives: in [`Status::streams`] and in
/// its serve's or use's [`Traffic`].
pub(crate) struct StreamGuard<'a> {
    status: &'a watch::Sender<Status>,
    traffic: Arc<Traffic>,
}

impl<'a> StreamGuard<'a> {
    pub(crate) fn new(status: &'a watch::Sender<Status>, traffic: Arc<Traffic>) -> Self {
        status.send_modify(|s| s.streams += 1);
        traffic.opened.fetch_add(1, Ordering::Relaxed);
        traffic.open.send_modify(|n| *n += 1);
        Self { status, traffic }
    }

    /// Wraps the local side of the stream so its bytes are counted.
    pub(crate) fn count<S>(&self, stream: S) -> Counted<S> {
        Counted {
            inner: stream,
            traffic: self.traffic.clone(),
        }
    }
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.traffic.open.send_modify(|n| *n -= 1);
        self.status.send_modify(|s| s.streams -= 1);
    }
}

/// The local side of a stream, counting bytes read from it (sent into the
/// tunnel) and written to it (received from the tunnel).
pub(crate) struct Counted<S> {
    inner: S,
    traffic: Arc<Traffic>,
}

/// Bytes relayed in the kernel bypass `poll_read`/`poll_write` and are
/// counted here instead.
impl<S: Relayable> Relayable for Counted<S> {
    fn socket(&self) -> Option<&TcpStream> {
        self.inner.socket()
    }

    fn plain_tcp(&self) -> Option<&TcpStream> {
        self.inner.plain_tcp()
    }

    fn bytes_read(&self, n: u64) {
        self.traffic.sent.fetch_add(n, Ordering::Relaxed);
        self.inner.bytes_read(n);
    }

    fn bytes_written(&self, n: u64) {
        self.traffic.received.fetch_add(n, Ordering::Relaxed);
        self.inner.bytes_written(n);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.traffic.sent.fetch_add(n, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.traffic.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use net::relay::bridge;
    use net::Unframed;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn socket_pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let (connected, accepted) = tokio::join!(
            TcpStream::connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        (connected.unwrap(), accepted.unwrap().0)
    }

    /// As a serve relays: the route's side (with read-ahead) to the local
    /// service, whose bytes are counted. On Linux this takes the kernel
    /// path, where only the hooks can count.
    #[tokio::test]
    async fn relayed_bytes_are_counted_both_ways() {
        let status = watch::Sender::new(Status::default());
        let traffic = Arc::new(Traffic::default());
        let guard = StreamGuard::new(&status, traffic.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (mut far, route_side) = socket_pair(&listener).await;
        let (service, mut local) = socket_pair(&listener).await;
        #[cfg(target_os = "linux")]
        let spliced = net::relay::splice::spliced_on_this_thread();
        let relay = tokio::spawn(bridge(
            Unframed {
                stream: route_side,
                leftover: Bytes::from_static(b"early "),
            },
            Unframed {
                stream: guard.count(service),
                leftover: Bytes::new(),
            },
        ));
        let (to_service, from_service) = (vec![1u8; 300_000], vec![2u8; 200_000]);
        let talk = async {
            let (mut up, mut down) = (Vec::new(), Vec::new());
            tokio::join!(
                async {
                    far.write_all(&to_service).await.unwrap();
                    far.shutdown().await.unwrap();
                    far.read_to_end(&mut down).await.unwrap();
                },
                async {
                    local.write_all(&from_service).await.unwrap();
                    local.shutdown().await.unwrap();
                    local.read_to_end(&mut up).await.unwrap();
                }
            );
            assert_eq!(&up[..6], b"early ");
            assert!(up[6..] == to_service[..] && down == from_service);
            relay.await.unwrap().unwrap()
        };
        let moved = tokio::time::timeout(Duration::from_secs(20), talk)
            .await
            .unwrap();
        assert_eq!(moved, (300_006, 200_000));
        assert_eq!(traffic.bytes(), (200_000, 300_006));
        #[cfg(target_os = "linux")]
        assert_eq!(
            net::relay::splice::spliced_on_this_thread() - spliced,
            500_000,
            "the kernel path was not taken"
        );
        drop(guard);
    }
}
