//! TCP lanes (see `proto::direct::lane`): streams on a TCP connection of
//! their own between two linked vnets, which the kernel relays without
//! copying, where one can reach the other's lane port.
//!
//! [`LaneListener`] takes lane connections for every link of this vnet:
//! each must open with a hello proved by the key this vnet gave that
//! link, then waits as a spare for a stream's header. [`LanePool`] keeps
//! a few connections open to the other end's lane, for our streams to
//! start on without a connect; once one cannot be made (a NAT in the
//! way), the link carries the streams itself for the rest of its life.
use futures::stream::{FuturesUnordered, StreamExt};
use proto::direct::lane::{LaneHello, LaneKey};
use proto::direct::StreamHeader;
use proto::pass::ReplayWindow;
use proto::VnetId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::serving::{self, Path, Serving};

/// Spare lane connections kept per link while streams start one by one.
const SPARES: usize = 4;
/// The most kept per link: a stream that finds none idle (it goes on
/// QUIC) raises the number by one, up to this, so a burst of streams
/// finds spares next time.
const MAX_SPARES: usize = 32;
/// Back to [`SPARES`] after this long without a stream taking one.
const SHRINK_AFTER: Duration = Duration::from_secs(30);
/// How long a lane connection may take to connect, and to prove itself.
const LANE_TIMEOUT: Duration = Duration::from_secs(3);
/// Lane connections that have not proved themselves yet, at most.
const UNPROVED: usize = 64;
/// Proved lane connections waiting for a stream, per link, at most: the
/// other end keeps up to [`MAX_SPARES`], as many more cover its
/// replacements.
const WAITING_PER_LINK: usize = 2 * MAX_SPARES;

/// Probes an idle lane connection after this long, so one a NAT or
/// firewall dropped silently is noticed (and not handed a stream).
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Keep-alive probes for the lane connections this vnet takes: a spare
/// may sit idle for long, and the probes keep a NAT's or firewall's state
/// for it alive at both ends. The end that opened it needs none of its
/// own: its spares go when the link goes, and a dead path kills the link
/// within its idle timeout.
fn keep_alive() -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE)
        .with_interval(Duration::from_secs(5))
        .with_retries(3)
}

/// A key given to one link, and what its connections are for.
struct Granted {
    key: LaneKey,
    peer: VnetId,
    seen: ReplayWindow,
    /// Cancelled when the link closes: its idle spares go.
    closed: CancellationToken,
    /// Room for its proved connections waiting for a stream.
    waiting: Arc<Semaphore>,
}

/// This vnet's lane listener and the keys it gave. Cheap to clone.
#[derive(Clone)]
pub(crate) struct LaneListener {
    port: u16,
    granted: Arc<Mutex<HashMap<[u8; 8], Granted>>>,
}

impl LaneListener {
    /// Listens on every address, on `port` if it is free (the direct
    /// socket's number, one hole to open in a firewall), else on any.
    pub(crate) fn bind(port: u16) -> std::io::Result<(Self, TcpListener)> {
        let listener = ["[::]", "0.0.0.0"]
            .iter()
            .flat_map(|ip| [port, 0].map(|p| format!("{ip}:{p}")))
            .find_map(|addr| net::listen::bind(addr.parse().ok()?).ok())
            .ok_or_else(|| std::io::Error::other("no address to listen on"))?;
        net::listen::for_relaying(&listener, Some(&keep_alive()))?;
        let port = listener.local_addr()?.port();
        let lanes = Self {
            port,
            granted: Arc::default(),
        };
        Ok((lanes, listener))
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    fn granted(&self) -> MutexGuard<'_, HashMap<[u8; 8], Granted>> {
        self.granted.lock().expect("lane keys poisoned")
    }

    /// A key for the link with `peer`, good until `closed`.
    pub(crate) fn offer(&self, peer: VnetId, closed: CancellationToken) -> (u16, LaneKey) {
        let key = LaneKey {
            id: rand::random(),
            secret: rand::random(),
        };
        let granted = Granted {
            key: key.clone(),
            peer,
            seen: ReplayWindow::default(),
            closed,
            waiting: Arc::new(Semaphore::new(WAITING_PER_LINK)),
        };
        self.granted().insert(key.id, granted);
        (self.port, key)
    }

    /// The link of key `id` closed: its lane connections are refused.
    pub(crate) fn withdraw(&self, id: &[u8; 8]) {
        self.granted().remove(id);
    }

    /// Takes lane connections until `shutdown`.
    pub(crate) async fn run(
        self,
        listener: TcpListener,
        serving: Serving,
        shutdown: CancellationToken,
    ) {
        let unproved = Arc::new(Semaphore::new(UNPROVED));
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => return,
                permit = unproved.clone().acquire_owned() => permit.expect("never closed"),
            };
            let (conn, from) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        debug!(%err, "lane accept failed");
                        continue;
                    }
                },
            };
            let lanes = self.clone();
            let serving_now = serving.clone();
            serving.tracker.spawn(async move {
                let proved = lanes.prove(conn).await;
                drop(permit);
                match proved {
                    Ok((conn, peer, closed, room)) => {
                        spare(serving_now, conn, peer, closed, room).await
                    }
                    Err(why) => info!(%from, %why, "lane connection refused"),
                }
            });
        }
    }

    /// Reads a lane connection's hello and checks it.
    async fn prove(&self, mut conn: TcpStream) -> Result<Proved, &'static str> {
        net::listen::ready(&conn, Some(&keep_alive()));
        let mut hello = [0u8; LaneHello::LEN];
        match tokio::time::timeout(LANE_TIMEOUT, conn.read_exact(&mut hello)).await {
            Ok(Ok(_)) => {}
            _ => return Err("no hello in time"),
        }
        let hello = LaneHello::decode(&hello).ok_or("not a lane hello")?;
        let mut granted = self.granted();
        let link = granted.get_mut(&hello.key_id).ok_or("a key of no link")?;
        if !link.key.verify(&hello) {
            return Err("a hello not made with its key");
        }
        if !link.seen.admit(hello.counter) {
            return Err("a hello seen before");
        }
        let room = (link.waiting.clone().try_acquire_owned())
            .map_err(|_| "too many of its link's connections wait already")?;
        Ok((conn, link.peer, link.closed.clone(), room))
    }
}

/// A proved lane connection, its link's vnet, the link's end, and its
/// place among the link's waiting connections.
type Proved = (TcpStream, VnetId, CancellationToken, OwnedSemaphorePermit);

/// A proved lane connection: waits for a stream's header, then serves
/// the stream in this task. A lane stream lives on its own TCP
/// connection: it outlives a link that closes (its own failures reset
/// it), so it is never cut for the link's sake.
async fn spare(
    serving: Serving,
    mut conn: TcpStream,
    peer: VnetId,
    closed: CancellationToken,
    room: OwnedSemaphorePermit,
) {
    let mut header = [0u8; StreamHeader::LEN];
    let read = tokio::select! {
        _ = closed.cancelled() => return,
        read = conn.read_exact(&mut header) => read,
    };
    drop(room);
    let Some(header) = read.ok().and_then(|_| StreamHeader::decode(&header)) else {
        return debug!(vnet = %peer, "lane connection closed or malformed before a stream");
    };
    let reply = move |result: Result<(), proto::Refusal>| async move {
        // A refused stream is reset (armed above) when `conn` drops.
        result.ok().map(|()| net::Unframed {
            stream: conn,
            leftover: Default::default(),
        })
    };
    let never = CancellationToken::new();
    let from = (header.serve_id, Some(peer));
    // Boxed: inline, the stream's state would size every waiting spare.
    Box::pin(serving::serve(serving, from, never, Path::Direct, reply)).await;
}

/// Spare connections to the other end's lane, for one link.
pub(crate) struct LanePool {
    addr: SocketAddr,
    key: LaneKey,
    counter: AtomicU64,
    idle: Mutex<Vec<TcpStream>>,
    /// How many to keep idle, [`SPARES`] to [`MAX_SPARES`].
    wanted: AtomicUsize,
    taken: Notify,
    /// Told of each spare that joins the idle ones.
    added: Notify,
}

impl LanePool {
    /// A pool for the lane at `addr`, proved with `key`.
    pub(crate) fn new(addr: SocketAddr, key: LaneKey) -> Arc<Self> {
        Arc::new(Self {
            addr,
            key,
            counter: AtomicU64::new(0),
            idle: Mutex::default(),
            wanted: AtomicUsize::new(SPARES),
            taken: Notify::new(),
            added: Notify::new(),
        })
    }

    fn idle(&self) -> MutexGuard<'_, Vec<TcpStream>> {
        self.idle.lock().expect("lane spares poisoned")
    }

    /// A spare connection, if one is idle (then it is replaced). Finding
    /// none raises the number kept.
    pub(crate) fn take(&self) -> Option<TcpStream> {
        let conn = self.idle().pop();
        if conn.is_none() {
            let _ = self
                .wanted
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < MAX_SPARES).then_some(n + 1)
                });
        }
        self.taken.notify_one();
        conn
    }

    /// Keeps the wanted number of connections idle, opening them side by
    /// side, until `closed`, or until one cannot be made.
    pub(crate) async fn keep(self: Arc<Self>, peer: VnetId, closed: CancellationToken) {
        // Opened inside this task rather than each in its own: a spawn
        // per stream would wake another worker thread each time.
        let mut opening = FuturesUnordered::new();
        loop {
            let wanted = self.wanted.load(Ordering::Relaxed);
            while self.idle().len() + opening.len() < wanted {
                opening.push(self.open());
            }
            let opened = tokio::select! {
                _ = closed.cancelled() => return self.idle().clear(),
                Some(opened) = opening.next() => opened,
                _ = self.taken.notified() => continue,
                _ = tokio::time::sleep(SHRINK_AFTER) => {
                    self.wanted.store(SPARES, Ordering::Relaxed);
                    self.idle().truncate(SPARES);
                    continue;
                }
            };
            match opened {
                Ok(conn) => {
                    self.idle().push(conn);
                    self.added.notify_waiters();
                }
                Err(err) => {
                    self.idle().clear();
                    let addr = self.addr;
                    return info!(vnet = %peer, %addr, %err, "no TCP lane to this vnet; its streams go on the link's QUIC streams");
                }
            }
        }
    }

    /// Connects to the lane and proves the connection. It is made ready
    /// for a stream here, off the stream's path: no Nagle delay, and armed
    /// to reset on close (a stream that ends badly, or a spare dropped).
    async fn open(&self) -> std::io::Result<TcpStream> {
        let connect = TcpStream::connect(self.addr);
        let mut conn = tokio::time::timeout(LANE_TIMEOUT, connect)
            .await
            .map_err(|_| std::io::Error::other("no answer in time"))??;
        conn.set_nodelay(true)?;
        net::socket::reset_on_close(&conn, true);
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        conn.write_all(&self.key.hello(counter).encode()).await?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests;
