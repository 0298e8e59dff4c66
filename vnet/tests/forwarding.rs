//! Bytes through route and two vnets: both ways, large, concurrent,
//! half-closed, and torn down without leaks.
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A route plus `home` serving a tagged echo as 700 and `office` using it.
async fn pair() -> (Route, Vnet, Vnet, std::net::SocketAddr) {
    let route = Route::start().await;
    let echo = tagged_echo("home-echo").await;
    let home = Vnet::start(
        &route,
        &format!("[vnet]\nname=home\n{}", serve_section("echo", 700, echo)),
    );
    let office = Vnet::start(
        &route,
        &format!("[vnet]\nname=office\n{}", use_section("echo", 700)),
    );
    home.registered("echo").await;
    let addr = office.open_use("echo").await;
    (route, home, office, addr)
}

/// Sends `len` pattern bytes through `addr` and checks the echo by
/// checksum, writing and reading at once.
async fn echo_transfer(addr: std::net::SocketAddr, len: usize, seed: u64) {
    let (stream, tag) = connect_tagged(addr).await;
    assert_eq!(tag, "home-echo");
    let data = pattern(seed, len);
    let mut sent = Checksum::default();
    sent.update(&data);
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Checksum::default();
    let mut total = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = within("echo data", r.read(&mut buf)).await.unwrap();
        if n == 0 {
            break;
        }
        got.update(&buf[..n]);
        total += n;
    }
    within("writer", writer).await.unwrap();
    assert_eq!(total, len);
    assert_eq!(got.0, sent.0, "checksum mismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_flow_both_ways() {
    let (route, home, office, addr) = pair().await;
    let (mut stream, tag) = connect_tagged(addr).await;
    assert_eq!(tag, "home-echo");
    stream.write_all(b"ping through the tunnel").await.unwrap();
    let mut back = [0u8; 23];
    within("echo", stream.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, b"ping through the tunnel");
    drop(stream);
    office.idle().await;
    home.idle().await;
    office.stop().await;
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_and_sixty_four_mib_arrive_intact() {
    let (route, home, office, addr) = pair().await;
    echo_transfer(addr, 1 << 20, 1).await;
    echo_transfer(addr, 64 << 20, 2).await;
    office.idle().await;
    home.idle().await;
    office.stop().await;
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_connections() {
    let (route, home, office, addr) = pair().await;
    let clients: Vec<_> = (0..100u64)
        .map(|i| tokio::spawn(echo_transfer(addr, 16 * 1024 + i as usize, i)))
        .collect();
    for client in clients {
        within("concurrent client", client).await.unwrap();
    }
    office.idle().await;
    home.idle().await;
    office.stop().await;
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_is_passed_on_both_ways() {
    // The service answers only after it has seen the client's EOF, then
    // closes; the client must still get the answer after its own
    // half-close, and then EOF.
    let service = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service_addr = service.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = service.accept().await.unwrap();
        let mut request = Vec::new();
        stream.read_to_end(&mut request).await.unwrap();
        stream
            .write_all(format!("got {} bytes", request.len()).as_bytes())
            .await
            .unwrap();
        stream.shutdown().await.unwrap();
    });
    let route = Route::start().await;
    let home = Vnet::start(&route, &serve_section("svc", 7, service_addr));
    let office = Vnet::start(&route, &use_section("svc", 7));
    home.registered("svc").await;
    let addr = office.open_use("svc").await;
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.write_all(b"twelve bytes").await.unwrap();
    client.shutdown().await.unwrap();
    let mut answer = String::new();
    within(
        "answer after half-close",
        client.read_to_string(&mut answer),
    )
    .await
    .unwrap();
    assert_eq!(answer, "got 12 bytes");
    drop(client);
    office.idle().await;
    home.idle().await;
    office.stop().await;
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_service_closes_the_client_at_once() {
    let route = Route::start().await;
    let port = dead_port().await;
    let home = Vnet::start(&route, &format!("[serve.gone]\nserveid=9\nport={port}\n"));
    let office = Vnet::start(&route, &use_section("gone", 9));
    home.registered("gone").await;
    let addr = office.open_use("gone").await;
    assert_refused(addr).await;
    office.idle().await;
    home.idle().await;
    office.stop().await;
    home.stop().await;
    route.stop().await;
}
