//! Sealed streams end to end through a middle that relays, alters or cuts
//! them: byte-exact with a half-close each way when untouched, an error
//! (never wrong or missing bytes passed on as an end) otherwise.
use super::*;
use crate::relay::bridge;
use crate::test_sockets::socket_pair;
use crate::Unframed;
use proto::e2e::pairing::{Initiator, PairKey, Party, PublicKey, Responder};
use proto::e2e::{Cipher, GroupSecret};
use proto::ServeId;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// What the middle does to the bytes from the visitor's side.
#[derive(Clone, Copy)]
enum Middle {
    Relay,
    /// Flips one bit of the byte at this offset.
    Flip(usize),
    /// Passes this many bytes, then ends cleanly.
    Cut(usize),
}

/// Visitor side sealed on `v`, server side sealed on `s`; between them
/// a middle that handles visitor-to-server bytes as `middle` says and
/// relays the rest. Returns the two sealed ends.
async fn sealed_pair(middle: Middle) -> (Sealed<TcpStream>, Sealed<TcpStream>) {
    let (a, b) = pair_keys();
    let serve = ServeId::new(700).unwrap();
    let (header, visitor) = a.visit(serve, 0);
    let server = b.serve(serve, &header).unwrap();
    let (v, m1) = socket_pair(None).await;
    let (m2, s) = socket_pair(None).await;
    tokio::spawn(run_middle(m1, m2, middle));
    (
        Sealed::new(v, visitor, &Bytes::new()),
        Sealed::new(s, server, &Bytes::new()),
    )
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
        match middle {
            Middle::Relay => {}
            Middle::Flip(at) if (seen..seen + n).contains(&at) => chunk[at - seen] ^= 0x01,
            Middle::Flip(_) => {}
            Middle::Cut(keep) => {
                let room = keep.saturating_sub(seen).min(n);
                let _ = sw.write_all(&chunk[..room]).await;
                if seen + n >= keep {
                    break;
                }
                seen += n;
                continue;
            }
        }
        if sw.write_all(chunk).await.is_err() {
            break;
        }
        seen += n;
    }
    let _ = sw.shutdown().await;
    let _ = back.await;
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn both_ways_byte_exact_with_a_half_close_each_way() {
    let (mut visitor, mut server) = sealed_pair(Middle::Relay).await;
    let (up, down) = (pattern(3_000_000), pattern(1_000_001));
    let run = async {
        tokio::join!(
            async {
                visitor.write_all(&up).await.unwrap();
                visitor.shutdown().await.unwrap();
                let mut got = Vec::new();
                visitor.read_to_end(&mut got).await.unwrap();
                got
            },
            async {
                let mut got = Vec::new();
                server.read_to_end(&mut got).await.unwrap();
                server.write_all(&down).await.unwrap();
                server.shutdown().await.unwrap();
                got
            }
        )
    };
    let (got_down, got_up) = timeout(LIMIT, run).await.unwrap();
    assert!(got_up == up, "upload differs");
    assert!(got_down == down, "download differs");
    // Idle and done: no buffers held.
    assert!(visitor.read.buf.is_none() && server.read.buf.is_none());
    assert_eq!(visitor.write.buf.capacity(), 0);
}

/// Reads what the server side gets until it ends: the bytes, and how.
async fn server_gets(mut server: Sealed<TcpStream>) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let end = loop {
        match timeout(LIMIT, server.read(&mut buf)).await.unwrap() {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) => break Err(err),
        }
    };
    (got, end)
}

#[tokio::test]
async fn an_altered_byte_is_an_error_and_nothing_after_it_is_passed_on() {
    let data = pattern(200_000);
    for at in [0, 1, 2, 30, 16_400, 150_000, 200_000 + 12 * 19] {
        let (mut visitor, server) = sealed_pair(Middle::Flip(at)).await;
        let send = async {
            visitor.write_all(&data).await.unwrap();
            visitor.shutdown().await.unwrap();
        };
        let ((), (got, end)) = tokio::join!(send, server_gets(server));
        let err = end.expect_err(&format!("a flip at {at} went unnoticed"));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            data.starts_with(&got),
            "altered bytes were passed on (flip at {at})"
        );
        assert!(
            got.len() <= at,
            "bytes past the flip at {at} were passed on"
        );
    }
}

#[tokio::test]
async fn a_cut_is_an_error_never_a_clean_end() {
    let data = pattern(100_000);
    for keep in [0, 1, 21, 16_403, 50_000, 100_000 + 6 * 19] {
        let (mut visitor, server) = sealed_pair(Middle::Cut(keep)).await;
        let send = async {
            // The middle may be gone before all is written.
            let _ = visitor.write_all(&data).await;
            let _ = visitor.shutdown().await;
        };
        let ((), (got, end)) = tokio::join!(send, server_gets(server));
        let err = end.expect_err(&format!("a cut after {keep} bytes read as a clean end"));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(data.starts_with(&got));
    }
}

#[tokio::test]
async fn through_the_bridge_a_cut_resets_the_client() {
    // A client, its vnet's bridge into a sealed connection, a middle that
    // cuts, and the server side: the client sees a reset, not an end.
    let (mut client, client_side) = socket_pair(None).await;
    let (visitor, server) = sealed_pair(Middle::Cut(40_000)).await;
    let relay = tokio::spawn(bridge(
        Unframed {
            stream: server,
            leftover: Bytes::new(),
        },
        Unframed {
            stream: client_side,
            leftover: Bytes::new(),
        },
    ));
    let mut visitor = visitor;
    let _ = visitor.write_all(&pattern(100_000)).await;
    let _ = visitor.shutdown().await;
    let ended = timeout(LIMIT, relay).await.unwrap().unwrap();
    assert!(ended.is_err(), "the bridge ended cleanly after a cut");
    let mut got = Vec::new();
    let read = timeout(LIMIT, client.read_to_end(&mut got)).await.unwrap();
    assert_eq!(read.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
}
