//! The kernel relay between real loopback sockets. Tests on the
//! current-thread runtime run the relay on their own thread, so
//! [`spliced_on_this_thread`] counts exactly their bytes.
use super::*;
use crate::handshake::Unframed;
use crate::relay::bridge;
use crate::test_sockets::socket_pair;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);
const BLOCK: usize = 64 * 1024;
const MIB: u64 = 1024 * 1024;

type RelayTask = JoinHandle<io::Result<(u64, u64)>>;

/// client ⇄ a [bridge] b ⇄ server, with the given leftovers on a and b.
async fn relay(
    a_left: &'static [u8],
    b_left: &'static [u8],
    buffers: Option<u32>,
) -> (TcpStream, TcpStream, RelayTask) {
    let (client, a) = socket_pair(buffers).await;
    let (b, server) = socket_pair(buffers).await;
    let a = Unframed {
        stream: a,
        leftover: Bytes::from_static(a_left),
    };
    let b = Unframed {
        stream: b,
        leftover: Bytes::from_static(b_left),
    };
    (client, server, tokio::spawn(bridge(a, b)))
}

/// A stream of 64 KiB blocks: one pseudo-random block with its index in
/// the first 8 bytes, so lost, repeated or reordered blocks show.
struct Pattern(Vec<u8>);

impl Pattern {
    fn new(seed: u64) -> Self {
        let mut x = seed | 1;
        let base = (0..BLOCK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Self(base)
    }

    fn block(&self, i: u64) -> Vec<u8> {
        let mut block = self.0.clone();
        block[..8].copy_from_slice(&i.to_le_bytes());
        block
    }

    async fn send(&self, to: &mut (impl AsyncWrite + Unpin), blocks: u64, sent: &AtomicU64) {
        for i in 0..blocks {
            to.write_all(&self.block(i)).await.unwrap();
            sent.fetch_add(BLOCK as u64, Ordering::Relaxed);
        }
        to.shutdown().await.unwrap();
    }

    /// Reads `blocks` blocks and then EOF.
    async fn expect(&self, from: &mut (impl AsyncRead + Unpin), blocks: u64) {
        let mut got = vec![0u8; BLOCK];
        for i in 0..blocks {
            from.read_exact(&mut got).await.unwrap();
            assert!(got == self.block(i), "block {i} arrived damaged");
        }
        assert_eq!(
            from.read(&mut got).await.unwrap(),
            0,
            "no EOF after the data"
        );
    }
}

#[tokio::test]
async fn plain_sockets_are_relayed_in_the_kernel() {
    let before = spliced_on_this_thread();
    let (mut client, mut server, task) = relay(b"", b"", None).await;
    let pattern = Pattern::new(1);
    let sent = AtomicU64::new(0);
    let moved = async {
        tokio::join!(
            pattern.send(&mut client, 16, &sent),
            pattern.expect(&mut server, 16)
        );
        server.shutdown().await.unwrap();
        assert_eq!(client.read(&mut [0u8; 1]).await.unwrap(), 0);
    };
    timeout(LIMIT, moved).await.unwrap();
    let done = timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
    assert_eq!(done, (16 * BLOCK as u64, 0));
    assert_eq!(spliced_on_this_thread() - before, 16 * BLOCK as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_mib_both_ways_at_once() {
    let (client, server, task) = relay(b"", b"", None).await;
    let blocks = 64 * MIB / BLOCK as u64;
    let end = |stream: TcpStream, send_seed, expect_seed| {
        tokio::spawn(async move {
            let (mut r, mut w) = stream.into_split();
            let (send, expect) = (Pattern::new(send_seed), Pattern::new(expect_seed));
            let sent = AtomicU64::new(0);
            tokio::join!(
                send.send(&mut w, blocks, &sent),
                expect.expect(&mut r, blocks)
            );
        })
    };
    let (up, down) = (end(client, 7, 8), end(server, 8, 7));
    timeout(LIMIT, async { tokio::try_join!(up, down).unwrap() })
        .await
        .unwrap();
    let done = timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
    assert_eq!(done, (64 * MIB, 64 * MIB));
}

#[tokio::test]
async fn half_close_is_passed_on_after_leftovers() {
    // The client stops sending first; the server goes on.
    let (mut client, mut server, task) = relay(b"[a]", b"[b]", None).await;
    let first = async {
        client.write_all(b"up").await.unwrap();
        client.shutdown().await.unwrap();
        let mut up = Vec::new();
        server.read_to_end(&mut up).await.unwrap();
        assert_eq!(up, b"[a]up");
        server.write_all(b"still talking").await.unwrap();
        server.shutdown().await.unwrap();
        let mut down = Vec::new();
        client.read_to_end(&mut down).await.unwrap();
        assert_eq!(down, b"[b]still talking");
    };
    timeout(LIMIT, first).await.unwrap();
    let done = timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
    assert_eq!(done, (5, 16));

    // The server stops sending first; the client goes on.
    let (mut client, mut server, task) = relay(b"", b"", None).await;
    let second = async {
        server.write_all(b"bye").await.unwrap();
        server.shutdown().await.unwrap();
        let mut down = Vec::new();
        client.read_to_end(&mut down).await.unwrap();
        assert_eq!(down, b"bye");
        client.write_all(b"one more thing").await.unwrap();
        client.shutdown().await.unwrap();
        let mut up = Vec::new();
        server.read_to_end(&mut up).await.unwrap();
        assert_eq!(up, b"one more thing");
    };
    timeout(LIMIT, second).await.unwrap();
    let done = timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
    assert_eq!(done, (14, 3));
}

#[tokio::test]
async fn a_stalled_reader_holds_back_the_writer() {
    // Four 256 KiB socket buffers (the kernel doubles them) and one pipe
    // are all that may sit between a writer and a reader that stopped.
    let (client, mut server, task) = relay(b"", b"", Some(256 * 1024)).await;
    let blocks = 64 * MIB / BLOCK as u64;
    let sent = Arc::new(AtomicU64::new(0));
    let writer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut client = client;
            Pattern::new(3).send(&mut client, blocks, &sent).await;
            client
        })
    };
    // A relay without back-pressure would take all 64 MiB in well under
    // this; with it, the writer waits for the reader however long.
    let mut writer = writer;
    assert!(
        timeout(Duration::from_secs(2), &mut writer).await.is_err(),
        "the writer pushed 64 MiB into a relay whose reader had stopped"
    );
    let held = sent.load(Ordering::Relaxed);
    assert!(held <= 8 * MIB, "{held} bytes went in while nobody read");

    timeout(LIMIT, Pattern::new(3).expect(&mut server, blocks))
        .await
        .unwrap();
    let mut client = timeout(LIMIT, writer).await.unwrap().unwrap();
    server.shutdown().await.unwrap();
    assert_eq!(client.read(&mut [0u8; 1]).await.unwrap(), 0);
    let done = timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
    assert_eq!(done, (64 * MIB, 0));
}

/// Sets a thread-local switch for one test and resets it even if the test
/// fails, since libtest may run the next test on the same thread.
struct RefusePipes;

impl RefusePipes {
    fn on() -> Self {
        REFUSE_PIPES.set(true);
        Self
    }
}

impl Drop for RefusePipes {
    fn drop(&mut self) {
        REFUSE_PIPES.set(false);
    }
}

#[tokio::test]
async fn without_pipes_bytes_are_copied() {
    let _refuse = RefusePipes::on();
    let before = spliced_on_this_thread();
    let (mut client, mut server, task) = relay(b"<", b">", None).await;
    let (up, down) = (Pattern::new(5), Pattern::new(6));
    let talk = async {
        let mut got = [0u8; 1];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"<");
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b">");
        let none = AtomicU64::new(0);
        tokio::join!(up.send(&mut client, 32, &none), up.expect(&mut server, 32),);
        tokio::join!(
            down.send(&mut server, 32, &none),
            down.expect(&mut client, 32),
        );
    };
    timeout(LIMIT, talk).await.unwrap();
    let done = timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
    assert_eq!(done, (1 + 2 * MIB, 1 + 2 * MIB));
    assert_eq!(spliced_on_this_thread(), before, "a refused pipe was used");
}

/// Writes "before ", an urgent "!", then "after".
async fn write_around_an_urgent_byte(client: &mut TcpStream) {
    client.write_all(b"before ").await.unwrap();
    client.writable().await.unwrap();
    let urgent = || Ok(send(&*client, b"!", SendFlags::OOB)?);
    assert_eq!(client.try_io(Interest::WRITABLE, urgent).unwrap(), 1);
    client.write_all(b"after").await.unwrap();
}

#[tokio::test]
async fn urgent_data_does_not_stall_either_path() {
    for refuse_pipes in [false, true] {
        let _refuse = refuse_pipes.then(RefusePipes::on);
        let (mut client, mut server, task) = relay(b"", b"", None).await;
        let talk = async {
            write_around_an_urgent_byte(&mut client).await;
            // Nothing more comes until the rest has arrived: a relay stuck
            // at the urgent mark would wait here forever.
            let mut got = [0u8; 12];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"before after", "read(2) drops the urgent byte");
            client.shutdown().await.unwrap();
            server.shutdown().await.unwrap();
            assert_eq!(server.read(&mut got).await.unwrap(), 0);
            assert_eq!(client.read(&mut got).await.unwrap(), 0);
        };
        timeout(LIMIT, talk).await.unwrap();
        let done = timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
        assert_eq!(done, (12, 0));
    }
}

/// All of it written, urgent byte and FIN included, before the relay first
/// reads: bridge(2) then stops at the mark with 0, which is not the end.
#[tokio::test]
async fn urgent_data_just_before_eof_loses_nothing() {
    for refuse_pipes in [false, true] {
        let _refuse = refuse_pipes.then(RefusePipes::on);
        let (mut client, mut server, task) = relay(b"", b"", None).await;
        let talk = async {
            write_around_an_urgent_byte(&mut client).await;
            client.shutdown().await.unwrap();
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"before after", "read(2) drops the urgent byte");
            server.shutdown().await.unwrap();
            assert_eq!(client.read(&mut [0u8; 4]).await.unwrap(), 0);
        };
        timeout(LIMIT, talk).await.unwrap();
        let done = timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
        assert_eq!(done, (12, 0));
    }
}

/// Requests and replies of a few bytes, each a burst that the relay ends
/// with a peek: a readiness cleared while bytes wait would stall one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_exchanges_never_stall() {
    let (mut client, mut server, task) = relay(b"", b"", None).await;
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 256];
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                server.shutdown().await.unwrap();
                return;
            }
            server.write_all(&buf[..n]).await.unwrap();
        }
    });
    let mut sent = 0u64;
    let talk = async {
        let mut got = vec![0u8; 256];
        for i in 0..2_000usize {
            let len = 1 + i % 200;
            let msg: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            client.write_all(&msg).await.unwrap();
            client.read_exact(&mut got[..len]).await.unwrap();
            assert_eq!(&got[..len], &msg[..], "exchange {i}");
            sent += len as u64;
        }
        client.shutdown().await.unwrap();
        assert_eq!(client.read(&mut got).await.unwrap(), 0);
    };
    timeout(LIMIT, talk).await.expect("an exchange stalled");
    timeout(LIMIT, echo).await.unwrap().unwrap();
    let done = timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
    assert_eq!(done, (sent, sent));
}
