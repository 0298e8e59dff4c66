//! Idle relayed connections hold no pipes. In a test binary of its own,
//! so no other test opens pipes while they are counted.
#![cfg(target_os = "linux")]

use bytes::Bytes;
use net::relay::bridge;
use net::Unframed;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Pipe descriptors this process has open.
fn open_pipes() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("pipe:"))
        .count()
}

async fn socket_pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let (connected, accepted) = tokio::join!(
        TcpStream::connect(listener.local_addr().unwrap()),
        listener.accept()
    );
    (connected.unwrap(), accepted.unwrap().0)
}

/// On the current-thread runtime the relays run between the test's steps,
/// so once an echo has come back its relay has gone idle.
#[tokio::test]
async fn idle_relays_hold_no_pipes() {
    const RELAYS: usize = 50;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let before = open_pipes();
    let mut open = Vec::new();
    let busy = async {
        for _ in 0..RELAYS {
            let (mut client, a) = socket_pair(&listener).await;
            let (b, mut server) = socket_pair(&listener).await;
            let relay = tokio::spawn(bridge(
                Unframed {
                    stream: a,
                    leftover: Bytes::new(),
                },
                Unframed {
                    stream: b,
                    leftover: Bytes::new(),
                },
            ));
            let mut buf = vec![0u8; 256 * 1024];
            client.write_all(&buf).await.unwrap();
            server.read_exact(&mut buf).await.unwrap();
            server.write_all(&buf).await.unwrap();
            client.read_exact(&mut buf).await.unwrap();
            open.push((client, server, relay));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), busy)
        .await
        .unwrap();
    // Held per direction, these would be 2 * RELAYS pipes of two
    // descriptors each; only this thread's few spares may remain.
    let held = open_pipes() - before;
    assert!(
        held <= 16,
        "{held} pipe descriptors for {RELAYS} idle relays"
    );

    // And the idle relays still work.
    for (mut client, mut server, relay) in open {
        client.write_all(b"ping").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping");
        server.shutdown().await.unwrap();
        let moved = relay.await.unwrap().unwrap();
        assert_eq!(moved, (256 * 1024 + 4, 256 * 1024));
    }
}
