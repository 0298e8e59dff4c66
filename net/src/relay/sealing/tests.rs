//! Sealed streams end to end as the vnets carry them: a client, the
//! visiting vnet's bridge into the route, a middle standing for the
//! route (relaying, altering or cutting), the serving vnet's bridge, the
//! service. Untouched: byte-exact both ways with a half-close each way.
//! Otherwise: both ends reset, and nothing altered reaches either.
use super::*;
use crate::relay::bridge;
use crate::test_sockets::socket_pair;
use crate::Unframed;
use bytes::Bytes;
use proto::e2e::pairing::{Initiator, PairKey, Party, PublicKey, Responder};
use proto::e2e::stream::{StreamHeader, HEADER_LEN};
use proto::e2e::{Cipher, GroupSecret};
use proto::ServeId;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

fn pair_keys() -> (PairKey, PairKey) {
    let secret = GroupSecret::new("s");
    let party = |name, key| Party {
        name,
        key: PublicKey([key; 32]),
        cipher: Cipher::preferred(),
    };
    let (a, offer) = Initiator::start(&secret, "g", party("home", 1), "office");
    let (b, answer) = Responder::answer(&secret, "g", party("office", 2), "home", &offer).unwrap();
    let (confirm, a) = a.finish(&answer).unwrap();
    (a, b.check(&confirm).unwrap())
}

/// What the middle does to the bytes from the visiting side.
#[derive(Clone, Copy, Debug)]
enum Middle {
    Relay,
    /// Flips one bit of the byte at this offset.
    Flip(usize),
    /// Passes this many bytes, then ends cleanly (a FIN, no reset).
    Cut(usize),
}

fn unframed<S>(stream: S) -> Unframed<S> {
    Unframed {
        stream,
        leftover: Bytes::new(),
    }
}

/// The whole path; returns the client's and the service's sockets and
/// the two vnets' bridges.
async fn path(middle: Middle) -> (TcpStream, TcpStream, [JoinHandle<io::Result<()>>; 2]) {
    let (a, b) = pair_keys();
    let serve = ServeId::new(700).unwrap();
    let (client, client_side) = socket_pair(None).await;
    let (visiting_route, from_visitor) = socket_pair(None).await;
    let (to_server, serving_route) = socket_pair(None).await;
    let (service_side, service) = socket_pair(None).await;
    // As the vnets do: a local side whose stream does not start, or ends
    // badly, is reset.
    crate::socket::reset_on_close(&client_side, true);
    crate::socket::reset_on_close(&service_side, true);
    tokio::spawn(run_middle(from_visitor, to_server, middle));
    let (header, crypto) = a.visit(serve, 0);
    let sealed_client = Sealing::new(client_side, crypto, &header.encode());
    let visiting = tokio::spawn(async move {
        bridge(unframed(sealed_client), unframed(visiting_route))
            .await
            .map(drop)
    });
    let serving = tokio::spawn(async move {
        let mut route = serving_route;
        let mut header = [0u8; HEADER_LEN];
        route.read_exact(&mut header).await?;
        let refused = || io::Error::new(io::ErrorKind::InvalidData, "not this pair's stream");
        let header = StreamHeader::decode(&header).ok_or_else(refused)?;
        let crypto = b.serve(serve, &header).ok_or_else(refused)?;
        let sealed_service = Sealing::new(service_side, crypto, &[]);
        bridge(unframed(route), unframed(sealed_service))
            .await
            .map(drop)
    });
    (client, service, [visiting, serving])
}

async fn run_middle(from_visitor: TcpStream, to_server: TcpStream, middle: Middle) {
    let (mut vr, mut vw) = from_visitor.into_split();
    let (mut sr, mut sw) = to_server.into_split();
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut vw).await;
        let _ = vw.shutdown().await;
    });
    let mut seen = 0usize;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match vr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &mut buf[..n];
        let pass = match middle {
            Middle::Relay => n,
            Middle::Flip(at) => {
                if (seen..seen + n).contains(&at) {
                    chunk[at - seen] ^= 0x01;
                }
                n
            }
            Middle::Cut(keep) => keep.saturating_sub(seen).min(n),
        };
        if sw.write_all(&chunk[..pass]).await.is_err() || pass < n {
            break;
        }
        seen += n;
        if matches!(middle, Middle::Cut(keep) if seen >= keep) {
            break;
        }
    }
    let _ = sw.shutdown().await;
    let _ = back.await;
}

/// Bytes on the wire for `len` bytes sent in full records: the header,
/// the records, the close record.
fn sealed_len(len: usize) -> usize {
    HEADER_LEN + len + len.div_ceil(MAX_PAYLOAD) * OVERHEAD + OVERHEAD
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn both_ways_byte_exact_with_a_half_close_each_way() {
    let (mut client, mut service, bridges) = path(Middle::Relay).await;
    let (up, down) = (pattern(3_000_000), pattern(1_000_001));
    let run = async {
        tokio::join!(
            async {
                client.write_all(&up).await.unwrap();
                client.shutdown().await.unwrap();
                let mut got = Vec::new();
                client.read_to_end(&mut got).await.unwrap();
                got
            },
            async {
                let mut got = Vec::new();
                service.read_to_end(&mut got).await.unwrap();
                service.write_all(&down).await.unwrap();
                service.shutdown().await.unwrap();
                got
            }
        )
    };
    let (got_down, got_up) = timeout(LIMIT, run).await.unwrap();
    assert!(got_up == up, "upload differs");
    assert!(got_down == down, "download differs");
    for bridge in bridges {
        timeout(LIMIT, bridge).await.unwrap().unwrap().unwrap();
    }
}

/// Sends `data` from the client and reads on both ends until each ends:
/// what the service got, and how each end ended.
async fn run_broken(middle: Middle, data: &[u8]) -> (Vec<u8>, io::Result<()>, io::Result<()>) {
    let (mut client, mut service, _bridges) = path(middle).await;
    let (client_end, (got, service_end)) = timeout(LIMIT, async {
        tokio::join!(
            async {
                let _ = client.write_all(data).await;
                let _ = client.shutdown().await;
                let mut rest = Vec::new();
                client.read_to_end(&mut rest).await.map(drop)
            },
            async {
                let mut got = Vec::new();
                let end = service.read_to_end(&mut got).await.map(drop);
                (got, end)
            }
        )
    })
    .await
    .unwrap();
    (got, service_end, client_end)
}

#[tokio::test]
async fn an_altered_byte_resets_both_ends_and_reaches_neither() {
    let data = pattern(200_000);
    // In the header, in a record's length, in its payload, in its tag,
    // far in, and in the close record.
    let end = sealed_len(data.len());
    for at in [0, 5, 20, 25, 60, 16_430, 150_000, end - 5] {
        let (got, service_end, client_end) = run_broken(Middle::Flip(at), &data).await;
        let service_err =
            service_end.expect_err(&format!("flip at {at}: clean end at the service"));
        assert_eq!(
            service_err.kind(),
            io::ErrorKind::ConnectionReset,
            "flip at {at}"
        );
        let client_err = client_end.expect_err(&format!("flip at {at}: clean end at the client"));
        assert_eq!(
            client_err.kind(),
            io::ErrorKind::ConnectionReset,
            "flip at {at}"
        );
        assert!(
            data.starts_with(&got),
            "flip at {at}: altered bytes reached the service"
        );
    }
}

#[tokio::test]
async fn a_cut_resets_both_ends_never_a_clean_end() {
    let data = pattern(100_000);
    let end = sealed_len(data.len());
    for keep in [0, 1, 20, 41, 16_450, 50_000, end - 1] {
        let (got, service_end, client_end) = run_broken(Middle::Cut(keep), &data).await;
        let service_err =
            service_end.expect_err(&format!("cut at {keep}: clean end at the service"));
        assert_eq!(
            service_err.kind(),
            io::ErrorKind::ConnectionReset,
            "cut at {keep}"
        );
        assert!(
            client_end.is_err(),
            "cut at {keep}: clean end at the client"
        );
        assert!(data.starts_with(&got));
    }
}

#[tokio::test]
async fn the_route_sees_no_plain_text() {
    // A recording middle: what the route would see of a marker.
    let (a, b) = pair_keys();
    let serve = ServeId::new(700).unwrap();
    let (header, crypto) = a.visit(serve, 9);
    let (mut client, client_side) = socket_pair(None).await;
    let (route, mut recorder) = socket_pair(None).await;
    let sealed = Sealing::new(client_side, crypto, &header.encode());
    let relay = tokio::spawn(bridge(unframed(sealed), unframed(route)));
    let marker = b"MARKER-the-route-must-not-see";
    client.write_all(marker).await.unwrap();
    client.shutdown().await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The header, the marker's record and the close record.
    while seen.len() < HEADER_LEN + 2 * OVERHEAD + marker.len() {
        let n = timeout(LIMIT, recorder.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        !seen.windows(6).any(|w| w == b"MARKER"),
        "plain text on the way"
    );
    // And the serving side opens it.
    let header = StreamHeader::decode(seen[..HEADER_LEN].try_into().unwrap()).unwrap();
    let mut opener = b.serve(serve, &header).unwrap().opener;
    let mut records = seen[HEADER_LEN..].to_vec();
    match opener.open(&mut records).unwrap() {
        Opened::Data { payload, .. } => assert_eq!(&records[payload], marker),
        other => panic!("expected data, got {other:?}"),
    }
    drop(recorder);
    let _ = timeout(LIMIT, relay).await.unwrap();
}

/// Hands out its bytes in chunks of the given sizes, in turn.
struct Chunked {
    data: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    turn: usize,
}

impl AsyncRead for Chunked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let size = self.sizes[self.turn % self.sizes.len()];
        let n = size.min(self.data.len() - self.at).min(out.remaining());
        out.put_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        self.turn += 1;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn records_of_any_size_in_any_chunking_open_byte_exact() {
    // Full records between small ones, so that reads stopping at a
    // record's end and records moved to the buffer's start both happen.
    let lengths = [
        1,
        100,
        MAX_PAYLOAD,
        5,
        MAX_PAYLOAD,
        MAX_PAYLOAD - 1,
        3000,
        2,
    ];
    let chunkings = [
        vec![1],
        vec![7, MAX_RECORD, 3],
        vec![MAX_RECORD],
        vec![200_000],
        vec![2, MAX_RECORD - 2],
    ];
    let (a, b) = pair_keys();
    let serve = ServeId::new(700).unwrap();
    for (number, sizes) in chunkings.into_iter().enumerate() {
        let (header, mut visiting) = a.visit(serve, number as u64);
        let serving = b.serve(serve, &header).unwrap();
        let (mut wire, mut sent) = (Vec::new(), Vec::new());
        for len in lengths {
            let payload = pattern(len + sent.len())[sent.len()..].to_vec();
            visiting.sealer.seal(&payload, &mut wire);
            sent.extend_from_slice(&payload);
        }
        visiting.sealer.seal_close(&mut wire);
        let mut input = Chunked {
            data: wire,
            at: 0,
            sizes: sizes.clone(),
            turn: 0,
        };
        let (local, mut service) = tokio::io::duplex(1 << 20);
        let mut sealing = Sealing::new(local, serving, &[]);
        let pulled = timeout(LIMIT, async {
            let mut total = 0;
            loop {
                let n = std::future::poll_fn(|cx| {
                    sealing.poll_pull_sealed(cx, Pin::new(&mut input) as _)
                })
                .await?;
                if n == 0 {
                    sealing.shutdown().await?;
                    return io::Result::Ok(total);
                }
                total += n;
            }
        });
        let pulled = pulled.await.unwrap().unwrap();
        assert_eq!(pulled, input.data.len(), "chunks of {sizes:?}");
        let mut got = Vec::new();
        service.read_to_end(&mut got).await.unwrap();
        assert!(got == sent, "chunks of {sizes:?}: bytes differ");
    }
}

#[tokio::test]
async fn an_idle_sealed_stream_holds_no_buffer() {
    let (a, b) = pair_keys();
    let serve = ServeId::new(700).unwrap();
    let (header, mut visiting) = a.visit(serve, 0);
    let (local, mut service) = tokio::io::duplex(1 << 16);
    let mut sealing = Sealing::new(local, b.serve(serve, &header).unwrap(), &[]);
    let (mut route, mut input) = tokio::io::duplex(1 << 16);
    let mut record = Vec::new();
    visiting.sealer.seal(b"x", &mut record);
    route.write_all(&record).await.unwrap();
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let pulled = sealing.poll_pull_sealed(&mut cx, Pin::new(&mut input) as _);
    assert!(matches!(pulled, Poll::Ready(Ok(n)) if n == record.len()));
    let mut got = [0u8; 1];
    service.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"x");
    let pulled = sealing.poll_pull_sealed(&mut cx, Pin::new(&mut input) as _);
    assert!(pulled.is_pending());
    assert!(
        sealing.incoming.buf.is_none(),
        "an idle stream kept its buffer"
    );
}

#[tokio::test]
async fn written_sealed_bytes_open_byte_exact() {
    // Writing (rather than the bridge's pull) takes the same path.
    let (a, b) = pair_keys();
    let serve = ServeId::new(700).unwrap();
    let (header, mut visiting) = a.visit(serve, 0);
    let (mut wire, sent) = (Vec::new(), pattern(200_000));
    for chunk in sent.chunks(MAX_PAYLOAD - 1000) {
        visiting.sealer.seal(chunk, &mut wire);
    }
    visiting.sealer.seal_close(&mut wire);
    let (local, mut service) = tokio::io::duplex(1 << 20);
    let mut sealing = Sealing::new(local, b.serve(serve, &header).unwrap(), &[]);
    timeout(LIMIT, async {
        sealing.write_all(&wire).await?;
        sealing.shutdown().await
    })
    .await
    .unwrap()
    .unwrap();
    let mut got = Vec::new();
    service.read_to_end(&mut got).await.unwrap();
    assert!(got == sent, "bytes differ");
}
