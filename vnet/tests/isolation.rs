//! No head-of-line blocking: a mapped connection whose reader has stopped
//! must not slow another one, nor the control connection.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Upper bound on what the firehose writes, so the test stays bounded.
const FIREHOSE_CAP: u64 = 1 << 30;

/// A service that writes as fast as it can to each connection (up to the
/// cap), counting what the kernel accepted.
async fn firehose(written: Arc<AtomicU64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let written = written.clone();
            tokio::spawn(async move {
                let chunk = vec![0x5a; 64 * 1024];
                while written.load(Ordering::Relaxed) < FIREHOSE_CAP {
                    if stream.write_all(&chunk).await.is_err() {
                        break;
                    }
                    written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_does_not_stall_other_connections_or_ping() {
    let route = Route::start().await;
    let written = Arc::new(AtomicU64::new(0));
    let hose = firehose(written.clone()).await;
    let drain = sink().await;
    let home = Vnet::start(
        &route,
        &format!(
            "{}{}",
            serve_section("hose", 701, hose),
            serve_section("sink", 702, drain)
        ),
    );
    let office = Vnet::start(
        &route,
        &format!("{}{}", use_section("hose", 701), use_section("sink", 702)),
    );
    let hose_addr = office.open_use("hose").await;
    let sink_addr = office.open_use("sink").await;

    // The stalled reader: connected, never reads. Wait until the firehose
    // has pushed data into the path: 512 KiB is less than its four
    // connections hold at the kernel's default buffer sizes, so it is
    // reached whether or not the kernel grows the buffers.
    let stalled = TcpStream::connect(hose_addr).await.unwrap();
    within("firehose fills the stalled path", async {
        while written.load(Ordering::Relaxed) < 512 << 10 {
            // A control round trip paces the poll instead of a sleep.
            office.handle.ping().await.unwrap();
        }
    })
    .await;

    // Another mapped connection on the same vnets moves 100 MiB within
    // 10 s, and pings during that transfer stay prompt too.
    const LEN: u64 = 100 << 20;
    let transfer = tokio::spawn(tokio::time::timeout(
        Duration::from_secs(10),
        send_to_sink(sink_addr, LEN),
    ));
    let mut worst_during = Duration::ZERO;
    while !transfer.is_finished() {
        worst_during = worst_during.max(within("ping", office.handle.ping()).await.unwrap());
    }
    let moved = transfer
        .await
        .unwrap()
        .expect("100 MiB did not pass within 10 s while another reader was stalled");
    assert_eq!(moved, LEN);
    assert!(
        worst_during < Duration::from_millis(50),
        "ping took {worst_during:?} during the transfer"
    );

    // The stalled path is really stalled: the firehose is blocked far
    // below its cap.
    let before = written.load(Ordering::Relaxed);
    assert!(before < FIREHOSE_CAP, "the stalled reader was not stalled");

    // The control connection still answers promptly.
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        worst = worst.max(within("ping", office.handle.ping()).await.unwrap());
    }
    assert!(
        worst < Duration::from_millis(50),
        "ping took {worst:?} with a stalled reader"
    );

    drop(stalled);
    office.idle().await;
    home.idle().await;
    office.stop().await;
    home.stop().await;
    route.stop().await;
}
