//! A route that tampers: a relay between the serving vnet (home) and the
//! real route alters what the route sends home, as whoever runs the route
//! could. In a sealed stream (a bit flipped, a chunk dropped, a cut, the
//! start of an earlier stream replayed, two streams' records swapped),
//! both ends are reset and the service gets only an unaltered prefix of
//! what the client sent. In pairing (a public key substituted, another
//! vnet named), the pair is refused on both sides and nothing reaches the
//! service. An untouched relay first shows that the harness carries
//! streams through.
use super::*;
use futures::{SinkExt, StreamExt};
use proto::e2e::pairing::PublicKey;
use proto::e2e::stream::HEADER_LEN;
use proto::message::PeerMsg;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, watch, Barrier};

/// How the route tampers with what it sends the serving vnet.
#[derive(Clone, Copy, Debug)]
enum Tamper {
    None,
    /// Flips one bit this many bytes into every sealed stream (counted
    /// from its header).
    Flip(usize),
    /// Leaves out `len` bytes from `at`.
    Drop {
        at: usize,
        len: usize,
    },
    /// Passes this many bytes, then ends the connection cleanly (a FIN).
    Cut(usize),
    /// Sends the first sealed stream's bytes again in place of the second.
    ReplayFirst,
    /// Gives each of the first two sealed streams the other's bytes after
    /// its header.
    SwapAfterHeader,
    /// Puts another public key in pairing offers and answers.
    SubstituteKey,
    /// Says pairing messages come from a vnet of another name.
    WrongVnet,
}

const MAGIC: &[u8] = b"VE2E";

/// What the relays of one test share.
struct Shared {
    tamper: Tamper,
    /// Sealed streams seen so far.
    streams: AtomicUsize,
    /// The first stream's bytes from its header on, once it ended.
    first: watch::Sender<Option<Vec<u8>>>,
    /// The vnet sides of the two streams being swapped.
    swapped: Mutex<Vec<Arc<tokio::sync::Mutex<OwnedWriteHalf>>>>,
    both: Barrier,
}

/// Relays the vnet's connections to `route`, tampering as told: the first
/// connection is the control connection, the others carry streams.
async fn tampering_relay(route: SocketAddr, tamper: Tamper) -> SocketAddr {
    let shared = Arc::new(Shared {
        tamper,
        streams: AtomicUsize::new(0),
        first: watch::channel(None).0,
        swapped: Mutex::new(Vec::new()),
        both: Barrier::new(2),
    });
    splitting_relay(
        route,
        move |from, to| tamper_control(from, to, tamper),
        move |from, to| tamper_stream(from, to, shared.clone()),
    )
    .await
}

/// The route's control messages to the vnet, pairing messages altered.
async fn tamper_control(from: OwnedReadHalf, to: OwnedWriteHalf, tamper: Tamper) {
    let Some((mut frames, mut out)) = control_messages(from, to).await else {
        return;
    };
    while let Some(Ok(mut msg)) = frames.next().await {
        if let RouteMsg::Peer { from_name, msg, .. } = &mut msg {
            match (tamper, msg) {
                (Tamper::SubstituteKey, PeerMsg::Offer(offer)) => offer.key = PublicKey([7; 32]),
                (Tamper::SubstituteKey, PeerMsg::Answer(answer)) => answer.key = PublicKey([7; 32]),
                (Tamper::WrongVnet, _) => *from_name = "mallory".into(),
                _ => {}
            }
        }
        if out.send(msg).await.is_err() {
            break;
        }
    }
}

/// The route's bytes on a stream connection to the vnet, the sealed
/// stream in them (from its header's magic on) altered.
async fn tamper_stream(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, shared: Arc<Shared>) {
    let mut seen = Vec::new();
    let mut sent = 0;
    let mut start: Option<(usize, usize)> = None;
    let mut buf = vec![0u8; 16384];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if start.is_none() {
            start = seen
                .windows(MAGIC.len())
                .position(|w| w == MAGIC)
                .map(|at| (at, shared.streams.fetch_add(1, Ordering::SeqCst)));
        }
        // Until the header shows, hold back what could be its start.
        let Some((m, index)) = start else {
            let upto = seen.len().saturating_sub(MAGIC.len() - 1);
            to.write_all(&seen[sent..upto.max(sent)]).await.unwrap();
            sent = upto.max(sent);
            continue;
        };
        let upto = match shared.tamper {
            Tamper::Flip(at) => {
                if (sent..seen.len()).contains(&(m + at)) {
                    seen[m + at] ^= 0x01;
                }
                seen.len()
            }
            Tamper::Drop { at, len } => {
                let gap = m + at..m + at + len;
                let kept: Vec<u8> = (sent..seen.len())
                    .filter(|i| !gap.contains(i))
                    .map(|i| seen[i])
                    .collect();
                to.write_all(&kept).await.unwrap();
                sent = seen.len();
                continue;
            }
            Tamper::Cut(at) => {
                let upto = seen.len().min(m + at);
                to.write_all(&seen[sent..upto]).await.unwrap();
                if upto == m + at {
                    let _ = to.shutdown().await;
                    return;
                }
                sent = upto;
                continue;
            }
            Tamper::ReplayFirst if index == 1 => {
                to.write_all(&seen[sent..m]).await.unwrap();
                let mut first = shared.first.subscribe();
                let first = first.wait_for(Option::is_some).await.unwrap().clone();
                to.write_all(&first.unwrap()).await.unwrap();
                let _ = to.shutdown().await;
                return;
            }
            Tamper::SwapAfterHeader if index < 2 => {
                to.write_all(&seen[sent..m + HEADER_LEN]).await.unwrap();
                let rest = seen[m + HEADER_LEN..].to_vec();
                return swap(from, to, rest, index, &shared).await;
            }
            _ => seen.len(),
        };
        to.write_all(&seen[sent..upto]).await.unwrap();
        sent = upto;
    }
    if let Some((m, 0)) = start {
        shared.first.send_replace(Some(seen[m..].to_vec()));
    }
    let _ = to.write_all(&seen[sent..]).await;
    let _ = to.shutdown().await;
}

/// Carries the rest of stream `index` to the other swapped stream's vnet
/// side, once both have sent their headers.
async fn swap(
    mut from: OwnedReadHalf,
    to: OwnedWriteHalf,
    rest: Vec<u8>,
    index: usize,
    shared: &Shared,
) {
    shared
        .swapped
        .lock()
        .unwrap()
        .push(Arc::new(tokio::sync::Mutex::new(to)));
    shared.both.wait().await;
    let other = shared.swapped.lock().unwrap()[1 - index].clone();
    other.lock().await.write_all(&rest).await.unwrap();
    let mut buf = vec![0u8; 16384];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if other.lock().await.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = other.lock().await.shutdown().await;
}

/// What a connection to the service brought, and how it ended.
#[derive(Debug)]
struct Received {
    bytes: Vec<u8>,
    end: Result<(), ErrorKind>,
}

/// A service that reads each connection to its end, answers a clean end
/// with `got N`, and reports what it received.
async fn recording_service() -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let end = stream.read_to_end(&mut bytes).await.map(drop);
                if end.is_ok() {
                    let reply = format!("got {}", bytes.len());
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                }
                let _ = tx.send(Received {
                    bytes,
                    end: end.map_err(|e| e.kind()),
                });
            });
        }
    });
    (addr, rx)
}

/// Sends `data` through the use and reads the reply; how it ended.
async fn client(use_addr: SocketAddr, data: &[u8]) -> Result<Vec<u8>, ErrorKind> {
    within("the client's end", async {
        let mut stream = TcpStream::connect(use_addr).await?;
        stream.write_all(data).await?;
        stream.shutdown().await?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    })
    .await
    .map_err(|e| e.kind())
}

struct Setup {
    route: Route,
    home: Vnet,
    office: Vnet,
    used: SocketAddr,
    service: mpsc::UnboundedReceiver<Received>,
}

/// Home serves the recording service through a relay tampering as told;
/// office uses it straight through the route. Both have the secret.
async fn setup(tamper: Tamper) -> Setup {
    let route = Route::start().await;
    let relay = tampering_relay(route.addr, tamper).await;
    let (service_addr, service) = recording_service().await;
    let home = serving_home(relay, "rec", service_addr, Some(SECRET), "").await;
    let (office, used) = using_office(route.addr, "rec", Some(SECRET), "").await;
    Setup {
        route,
        home,
        office,
        used,
        service,
    }
}

impl Setup {
    async fn received(&mut self) -> Received {
        within("the service's end", self.service.recv())
            .await
            .unwrap()
    }

    async fn stop(self) {
        stop_all(self.route, [self.office, self.home]).await;
    }
}

const LEN: usize = 1_000_000;

fn data() -> Vec<u8> {
    pattern(13, LEN)
}

fn is_reset(end: Result<(), ErrorKind>) -> bool {
    matches!(end, Err(ErrorKind::ConnectionReset | ErrorKind::BrokenPipe))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_route_carries_sealed_streams_byte_exact() {
    let mut s = setup(Tamper::None).await;
    let sent = data();
    for _ in 0..2 {
        let reply = client(s.used, &sent).await;
        assert_eq!(reply, Ok(format!("got {LEN}").into_bytes()));
        let received = s.received().await;
        assert!(
            received.bytes == sent && received.end.is_ok(),
            "{:?}",
            received.end
        );
    }
    s.stop().await;
}

/// One stream through a route tampering with it: both ends reset, and
/// the service got an unaltered prefix.
async fn one_stream_altered(tamper: Tamper) {
    let mut s = setup(tamper).await;
    let sent = data();
    let reply = client(s.used, &sent).await;
    assert!(
        matches!(
            reply,
            Err(ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
        ),
        "{tamper:?}: the client ended with {reply:?}, not a reset"
    );
    let received = s.received().await;
    let got = received.bytes.len();
    assert!(
        is_reset(received.end),
        "{tamper:?}: the service ended with {:?} after {got} bytes, not a reset",
        received.end
    );
    assert!(got < LEN, "{tamper:?}: the service got everything");
    assert!(
        received.bytes == sent[..got],
        "{tamper:?}: altered bytes reached the service"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_resets_both_ends() {
    // In the header, in the first record, and far into the stream.
    for at in [6, HEADER_LEN + 40, 300_000] {
        one_stream_altered(Tamper::Flip(at)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_chunk_resets_both_ends() {
    one_stream_altered(Tamper::Drop {
        at: 300_000,
        len: 1000,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_resets_both_ends() {
    for at in [HEADER_LEN + 10, 300_000] {
        one_stream_altered(Tamper::Cut(at)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_stream_start_is_refused() {
    let mut s = setup(Tamper::ReplayFirst).await;
    let sent = data();
    assert_eq!(
        client(s.used, &sent).await,
        Ok(format!("got {LEN}").into_bytes())
    );
    assert_eq!(s.received().await.bytes.len(), LEN);
    let reply = client(s.used, &pattern(14, LEN)).await;
    assert!(reply.is_err(), "the replayed stream got {reply:?}");
    let replayed = s.received().await;
    assert!(
        replayed.bytes.is_empty() && is_reset(replayed.end),
        "the service got {} bytes of a replayed stream, ending {:?}",
        replayed.bytes.len(),
        replayed.end
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_streams_reset_both() {
    let mut s = setup(Tamper::SwapAfterHeader).await;
    let (a, b) = (pattern(21, LEN), pattern(22, LEN));
    let (ra, rb) = tokio::join!(client(s.used, &a), client(s.used, &b));
    assert!(ra.is_err() && rb.is_err(), "{ra:?} {rb:?}");
    for _ in 0..2 {
        let received = s.received().await;
        assert!(
            received.bytes.is_empty() && is_reset(received.end),
            "the service got {} bytes of a swapped stream, ending {:?}",
            received.bytes.len(),
            received.end
        );
    }
    s.stop().await;
}

/// Pairing through a route that alters it: refused on both sides (their
/// `show vnets` says why), the client gets nothing, the service no
/// connection.
async fn pairing_altered(tamper: Tamper) {
    let mut s = setup(tamper).await;
    let reply = client(s.used, &data()).await;
    assert!(
        !matches!(&reply, Ok(r) if !r.is_empty()),
        "{tamper:?}: the client got {reply:?}"
    );
    let home_id = s.home.handle.status().vnet_id.unwrap();
    let office_id = s.office.handle.status().vnet_id.unwrap();
    let office_says = s.office.handle.end_to_end(home_id);
    let home_says = s.home.handle.end_to_end(office_id);
    assert!(
        office_says.starts_with("no: "),
        "{tamper:?}: office says {office_says}"
    );
    assert!(
        home_says.starts_with("no: ") || home_says == "-",
        "{tamper:?}: home says {home_says}"
    );
    assert!(
        s.service.try_recv().is_err(),
        "{tamper:?}: the service was reached"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_substituted_public_key_is_refused() {
    pairing_altered(Tamper::SubstituteKey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_vnet_named_in_pairing_is_refused() {
    pairing_altered(Tamper::WrongVnet).await;
}
