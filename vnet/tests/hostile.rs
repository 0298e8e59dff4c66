//! Hostile input at the route: garbage, oversized frames, wrong versions
//! and connections that never finish their handshake are dropped, while a
//! transfer through the same route keeps its pace.
use std::net::SocketAddr;
use std::time::Duration;
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// How many hostile connections of each kind.
const ATTACKERS: usize = 250;

/// Reads until the peer closes; true if it closed (EOF or reset).
async fn closed_by_peer(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
}

/// Writes `bytes`, then expects the route to hang up.
async fn hostile(addr: SocketAddr, bytes: Vec<u8>) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return true;
    };
    let _ = stream.write_all(&bytes).await;
    closed_by_peer(stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_are_dropped_while_traffic_keeps_flowing() {
    let route = Route::with(route::RouteConfig {
        handshake_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let addr = route.addr;
    let target = sink().await;
    let text = |body: String| format!("[route]\nip=127.0.0.1\nport={}\n{body}", addr.port());
    let start = |body: String| Vnet {
        handle: vnet::start(
            vnet::VnetConfig::parse("t.ini", &text(body)).unwrap(),
            CancellationToken::new(),
        ),
    };
    let home = start(serve_section("sink", 720, target));
    let office = start(use_section("sink", 720));
    let use_addr = office.open_use("sink").await;

    // Four kinds of hostile peer, 1,000 connections in all, plus 250
    // half-open ones that never say anything (dropped at the handshake
    // timeout). Sent in waves of 100 while the transfer below runs.
    let mut wrong_version = proto::preamble::encode().to_vec();
    wrong_version[5] ^= 0xff;
    let mut oversized = proto::preamble::encode().to_vec();
    oversized.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut bad_json = proto::preamble::encode().to_vec();
    bad_json.extend_from_slice(&5u32.to_be_bytes());
    bad_json.extend_from_slice(b"{{{{{");
    let mut payloads = Vec::new();
    for i in 0..ATTACKERS {
        let garbage: Vec<u8> = (0..64).map(|b| (b * 7 + i) as u8).collect();
        payloads.extend([
            garbage,
            wrong_version.clone(),
            oversized.clone(),
            bad_json.clone(),
        ]);
    }
    let attack = tokio::spawn(async move {
        let mut dropped = 0;
        for wave in payloads.chunks(100) {
            let wave: Vec<_> = wave
                .iter()
                .map(|bytes| tokio::spawn(hostile(addr, bytes.clone())))
                .collect();
            for peer in wave {
                assert!(peer.await.unwrap(), "a hostile peer was not dropped");
                dropped += 1;
            }
        }
        let mut silent = Vec::new();
        for _ in 0..ATTACKERS {
            silent.push(tokio::spawn(closed_by_peer(
                TcpStream::connect(addr).await.unwrap(),
            )));
        }
        for peer in silent {
            assert!(peer.await.unwrap(), "a half-open peer was not dropped");
            dropped += 1;
        }
        dropped
    });

    // Meanwhile a transfer through the same route keeps its pace.
    const LEN: u64 = 100 << 20;
    let moved = tokio::time::timeout(Duration::from_secs(10), send_to_sink(use_addr, LEN))
        .await
        .expect("100 MiB did not pass within 10 s under attack");
    assert_eq!(moved, LEN);
    assert_eq!(
        within("every hostile peer dropped", attack).await.unwrap(),
        5 * ATTACKERS
    );
    // The route still serves everyone: a control round trip and a new
    // mapped connection.
    within("ping", office.handle.ping()).await.unwrap();
    assert_eq!(
        within("another transfer", send_to_sink(use_addr, 1 << 20)).await,
        1 << 20
    );

    office.stop().await;
    home.stop().await;
    route.stop().await;
}
