//! Spare data connections (`[vnet] spares`): streams start on them, used
//! ones are replaced, refusals still close the client, a new session after
//! a route restart opens fresh ones, and with spares off every stream dials
//! the route as before.
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vnet::SpareCounts;

/// `home` serving a tagged echo as 700 and `office` using it, both with
/// `spares` spares.
async fn pair(route: &Route, spares: u32) -> (Vnet, Vnet, std::net::SocketAddr) {
    let echo = tagged_echo("home-echo").await;
    let home = Vnet::start(
        route,
        &format!(
            "[vnet]\nname=home\nspares={spares}\ndirect=off\n{}",
            serve_section("echo", 700, echo)
        ),
    );
    let office = Vnet::start(
        route,
        &format!(
            "[vnet]\nname=office\nspares={spares}\ndirect=off\n{}",
            use_section("echo", 700)
        ),
    );
    home.registered("echo").await;
    let addr = office.open_use("echo").await;
    (home, office, addr)
}

/// Waits until `home` (serves only) has `n` idle spares for serves, and
/// returns the counters then: none for uses, as it has no use.
async fn serving_ready(home: &Vnet, n: usize) -> SpareCounts {
    let counts = home
        .wait(&format!("{n} idle spares for serves"), |s| {
            s.spares.idle_serve == n
        })
        .await
        .spares;
    assert_eq!(counts.idle_visit, 0, "spares for uses without a use");
    counts
}

/// The same for `office` (uses only) and its spares for uses.
async fn visiting_ready(office: &Vnet, n: usize) -> SpareCounts {
    let counts = office
        .wait(&format!("{n} idle spares for uses"), |s| {
            s.spares.idle_visit == n
        })
        .await
        .spares;
    assert_eq!(counts.idle_serve, 0, "spares for serves without a serve");
    counts
}

async fn echo_once(addr: std::net::SocketAddr, text: &[u8]) {
    let (mut stream, tag) = connect_tagged(addr).await;
    assert_eq!(tag, "home-echo");
    stream.write_all(text).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    within("echo", stream.read_to_end(&mut back)).await.unwrap();
    assert_eq!(back, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_start_on_spares_and_used_ones_are_replaced() {
    let route = Route::start().await;
    let (home, office, addr) = pair(&route, 3).await;
    serving_ready(&home, 3).await;
    visiting_ready(&office, 3).await;

    for round in 1..=5u64 {
        echo_once(addr, format!("round {round}").as_bytes()).await;
        let office_now = visiting_ready(&office, 3).await;
        let home_now = serving_ready(&home, 3).await;
        assert_eq!(office_now.used_visit, round, "office visited on a spare");
        assert_eq!(home_now.used_serve, round, "home served on a spare");
    }
    office.idle().await;
    home.idle().await;
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_spares_is_carried() {
    let route = Route::start().await;
    let (home, office, addr) = pair(&route, 2).await;
    visiting_ready(&office, 2).await;
    serving_ready(&home, 2).await;
    // Twenty clients at once against two spares: whatever finds no spare
    // dials the route, and every one of them echoes.
    let clients: Vec<_> = (0..20u8)
        .map(|i| {
            tokio::spawn(async move {
                let (mut stream, tag) = connect_tagged(addr).await;
                assert_eq!(tag, "home-echo");
                stream.write_all(&[i]).await.unwrap();
                let mut back = [0u8; 1];
                within("echo", stream.read_exact(&mut back)).await.unwrap();
                assert_eq!(back, [i]);
                stream
            })
        })
        .collect();
    let mut open = Vec::new();
    for client in clients {
        open.push(within("client", client).await.unwrap());
    }
    let status = office.wait("twenty streams", |s| s.streams == 20).await;
    assert!(status.spares.used_visit >= 2, "{:?}", status.spares);
    drop(open);
    office.idle().await;
    home.idle().await;
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_service_closes_the_client_on_a_spare_too() {
    let route = Route::start().await;
    let dead: std::net::SocketAddr = ([127, 0, 0, 1], dead_port().await).into();
    let home = Vnet::start(
        &route,
        &format!("[vnet]\nname=home\n{}", serve_section("gone", 701, dead)),
    );
    let office = Vnet::start(
        &route,
        &format!("[vnet]\nname=office\n{}", use_section("gone", 701)),
    );
    home.registered("gone").await;
    let addr = office.open_use("gone").await;
    serving_ready(&home, 4).await;
    visiting_ready(&office, 4).await;
    assert_refused(addr).await;
    let home_now = home
        .wait("the spare was used", |s| s.spares.used_serve == 1)
        .await;
    assert_eq!(home_now.spares.used_serve, 1);
    office.idle().await;
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_route_restart_fresh_spares_carry_streams() {
    let route = Route::start().await;
    let port = route.addr.port();
    let (home, office, addr) = pair(&route, 2).await;
    visiting_ready(&office, 2).await;
    serving_ready(&home, 2).await;
    route.stop().await;
    office
        .wait("office lost the route", |s| s.vnet_id.is_none())
        .await;

    let route = Route::start_on(port).await;
    office
        .wait("office reconnected", |s| {
            s.connects == 2 && s.spares.idle_visit == 2
        })
        .await;
    home.wait("home reconnected", |s| {
        s.connects == 2 && s.spares.idle_serve == 2
    })
    .await;
    office.open_use("echo").await;
    echo_once(addr, b"after the restart").await;
    let office_now = office
        .wait("a spare carried it", |s| s.spares.used_visit == 1)
        .await;
    assert_eq!(office_now.spares.used_visit, 1);
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_spares_off_streams_dial_the_route() {
    let route = Route::start().await;
    let (home, office, addr) = pair(&route, 0).await;
    for round in 0..3 {
        echo_once(addr, format!("dialed {round}").as_bytes()).await;
    }
    let status = office.wait("streams closed", |s| s.streams == 0).await;
    assert_eq!(status.spares, SpareCounts::default());
    let status = home.wait("streams closed", |s| s.streams == 0).await;
    assert_eq!(status.spares, SpareCounts::default());
    stop_all(route, [office, home]).await;
}
