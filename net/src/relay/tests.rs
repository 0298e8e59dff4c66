//! The bridge: half-close, leftovers, and how it closes: gracefully after
//! a clean end both ways, with a reset on an error or a cut, for both
//! engines.
use super::*;
use crate::test_sockets::socket_pair;
use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

#[tokio::test]
async fn bridge_passes_half_close_and_counts_leftovers() {
    let (client, a) = tokio::io::duplex(1024);
    let (b, server) = tokio::io::duplex(1024);
    let splicer = tokio::spawn(bridge(
        Unframed {
            stream: a,
            leftover: Bytes::from_static(b"hi "),
        },
        Unframed {
            stream: b,
            leftover: Bytes::new(),
        },
    ));
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut server_r, mut server_w) = tokio::io::split(server);
    client_w.write_all(b"there").await.unwrap();
    client_w.shutdown().await.unwrap();
    let mut got = Vec::new();
    server_r.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hi there");
    server_w.write_all(b"reply").await.unwrap();
    server_w.shutdown().await.unwrap();
    let mut back = Vec::new();
    client_r.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"reply");
    assert_eq!(splicer.await.unwrap().unwrap(), (8, 5));
}

/// A TCP socket the bridge must copy through buffers (as with TLS), to
/// test the copy engine on real sockets.
struct Copied(TcpStream);

impl Relayable for Copied {
    fn socket(&self) -> Option<&TcpStream> {
        Some(&self.0)
    }
}

impl AsyncRead for Copied {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Copied {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn unframed<S>(stream: S) -> Unframed<S> {
    Unframed {
        stream,
        leftover: Bytes::new(),
    }
}

/// A connected pair where `near` can hold a lot to send and `far` takes
/// little at a time, so bytes wait in `near`'s send buffer.
async fn narrowing_pair() -> (TcpStream, TcpStream) {
    let listener = tokio::net::TcpSocket::new_v4().unwrap();
    listener.set_recv_buffer_size(4096).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = listener.listen(1).unwrap();
    let near = tokio::net::TcpSocket::new_v4().unwrap();
    near.set_send_buffer_size(1024 * 1024).unwrap();
    let addr = listener.local_addr().unwrap();
    let (near, far) = tokio::join!(near.connect(addr), listener.accept());
    (near.unwrap(), far.unwrap().0)
}

/// client ⇄ a [bridge] b ⇄ server on real sockets; bytes towards the
/// server pile up in b's send buffer. `copied` sends the bytes through
/// the copy engine.
async fn bridged(
    copied: bool,
) -> (
    TcpStream,
    TcpStream,
    tokio::task::JoinHandle<io::Result<(u64, u64)>>,
) {
    let (client, a) = socket_pair(Some(256 * 1024)).await;
    let (b, server) = narrowing_pair().await;
    let relay = if copied {
        tokio::spawn(bridge(unframed(Copied(a)), unframed(Copied(b))))
    } else {
        tokio::spawn(bridge(unframed(a), unframed(b)))
    };
    (client, server, relay)
}

/// Reads until EOF or an error; what was read, and whether it ended in a
/// reset.
async fn read_all(stream: &mut TcpStream) -> (usize, Option<io::ErrorKind>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match timeout(LIMIT, stream.read(&mut buf))
            .await
            .expect("the stream ends")
        {
            Ok(0) => return (total, None),
            Ok(n) => total += n,
            Err(err) => return (total, Some(err.kind())),
        }
    }
}

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_clean_end_closes_gracefully_and_delivers_the_tail() {
    for copied in [false, true] {
        let (mut client, mut server, relay) = bridged(copied).await;
        // The bridge ends while most of this still waits in b's send
        // buffer (the server has read nothing): it must survive the close.
        let sent = pattern(200 * 1024);
        client.write_all(&sent).await.unwrap();
        client.shutdown().await.unwrap();
        server.shutdown().await.unwrap();
        let moved = timeout(LIMIT, relay).await.unwrap().unwrap().unwrap();
        assert_eq!(moved, (sent.len() as u64, 0));
        let mut got = Vec::new();
        timeout(LIMIT, server.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert!(got == sent, "copied={copied}: the tail was lost");
        assert_eq!(read_all(&mut client).await, (0, None), "copied={copied}");
    }
}

#[tokio::test]
async fn a_reset_on_one_side_resets_the_other() {
    for copied in [false, true] {
        let (client, mut server, relay) = bridged(copied).await;
        let mut client = client;
        client.write_all(&pattern(1024 * 1024)).await.ok();
        crate::socket::reset_on_close(&client, true);
        drop(client);
        let (_, ended) = read_all(&mut server).await;
        assert_eq!(
            ended,
            Some(io::ErrorKind::ConnectionReset),
            "copied={copied}: the server saw a clean end after a reset"
        );
        assert!(timeout(LIMIT, relay).await.unwrap().unwrap().is_err());
    }
}

#[tokio::test]
async fn a_cut_stream_resets_both_ends() {
    for copied in [false, true] {
        let (mut client, mut server, relay) = bridged(copied).await;
        client.write_all(b"partial").await.unwrap();
        let mut seen = [0u8; 7];
        timeout(LIMIT, server.read_exact(&mut seen))
            .await
            .unwrap()
            .unwrap();
        relay.abort();
        let _ = relay.await;
        for (side, stream) in [("client", &mut client), ("server", &mut server)] {
            assert_eq!(
                read_all(stream).await,
                (0, Some(io::ErrorKind::ConnectionReset)),
                "copied={copied}: the {side} saw a clean end of a cut stream"
            );
        }
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
