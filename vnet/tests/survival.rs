//! Heartbeats, reconnects and limits: dead peers are noticed within the
//! heartbeat, links come back by themselves, flowing connections survive
//! a control reconnect, and every limit refuses with a reason.
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use vnet::ServeState;

fn fast_heartbeat() -> route::RouteConfig {
    route::RouteConfig {
        heartbeat: Duration::from_secs(1),
        ..Default::default()
    }
}

fn vnet_at(route: SocketAddr, body: &str) -> Vnet {
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\nheartbeat=1\n{body}",
        route.port()
    );
    Vnet {
        handle: vnet::start(
            vnet::VnetConfig::parse("test.ini", &text).unwrap(),
            CancellationToken::new(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_vnet_is_dropped_within_the_heartbeat() {
    let route = Route::with(fast_heartbeat()).await;
    let addr = route.addr;
    let echo = tagged_echo("frozen").await;
    let dir = std::env::temp_dir().join(format!("vnet-frozen-{}.ini", std::process::id()));
    std::fs::write(
        &dir,
        format!(
            "[route]\nip=127.0.0.1\nport={}\nheartbeat=1\n{}",
            addr.port(),
            serve_section("echo", 700, echo)
        ),
    )
    .unwrap();
    let mut frozen = tokio::process::Command::new(env!("CARGO_BIN_EXE_vnet"))
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let observer = vnet_at(addr, &use_section("echo", 700));
    assert_eq!(
        connect_tagged(observer.open_use("echo").await).await.1,
        "frozen"
    );

    let pid = frozen.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    // The route hears nothing for a heartbeat and withdraws its serves.
    observer
        .wait("frozen vnet's serve withdrawn", |s| !s.uses["echo"].open)
        .await;
    let vnets = within("list", observer.handle.vnets()).await.unwrap();
    assert_eq!(vnets.len(), 1, "{vnets:?}");

    frozen.kill().await.unwrap();
    std::fs::remove_file(dir).unwrap();
    observer.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_cable_is_noticed_by_both_sides_and_the_link_comes_back() {
    let route = Route::with(fast_heartbeat()).await;
    let addr = route.addr;
    let (pause, paused) = watch::channel(false);
    let via = testkit::cable::relay(addr, paused).await;
    let echo = tagged_echo("far").await;
    // The relay path is under test: a direct link would bypass the cable.
    let relay_only = |section: String| format!("[vnet]\ndirect=off\n{section}");
    let far = vnet_at(via, &relay_only(serve_section("echo", 701, echo)));
    let observer = vnet_at(addr, &relay_only(use_section("echo", 701)));
    assert_eq!(
        connect_tagged(observer.open_use("echo").await).await.1,
        "far"
    );
    let before = far.handle.status().connects;

    pause.send_replace(true);
    // The far vnet notices the silent route and goes to reconnecting ...
    far.wait("far vnet notices", |s| s.vnet_id.is_none()).await;
    // ... and the route notices the silent vnet and withdraws its serve.
    observer
        .wait("route drops the far vnet", |s| !s.uses["echo"].open)
        .await;

    pause.send_replace(false);
    far.wait("far vnet reconnects", |s| {
        s.connects > before && s.serve_id("echo").is_some()
    })
    .await;
    assert_eq!(
        connect_tagged(observer.open_use("echo").await).await.1,
        "far"
    );

    for vnet in [observer, far] {
        vnet.stop().await;
    }
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_reconnect_does_not_cut_flowing_connections() {
    let route = Route::start().await;
    let echo = tagged_echo("steady").await;
    let home = Vnet::start(&route, &serve_section("echo", 702, echo));
    let body = |name: &str| format!("[vnet]\nname={name}\n{}", use_section("echo", 702));
    let office = Vnet::start(&route, &body("office"));
    let (mut stream, _) = connect_tagged(office.open_use("echo").await).await;
    let before = office.handle.status().connects;

    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\n{}",
        route.addr.port(),
        body("office-renamed")
    );
    let summary = office
        .handle
        .reload(vnet::VnetConfig::parse("test.ini", &text).unwrap())
        .await;
    assert!(
        summary.reconnected && summary.changed.is_empty(),
        "{summary:?}"
    );
    office
        .wait("reconnected", |s| {
            s.connects > before && s.vnet_id.is_some()
        })
        .await;

    stream.write_all(b"still here").await.unwrap();
    let mut back = [0u8; 10];
    within("echo after reconnect", stream.read_exact(&mut back))
        .await
        .unwrap();
    assert_eq!(&back, b"still here");

    drop(stream);
    office.stop().await;
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_refuses_with_a_reason() {
    let route = Route::with(route::RouteConfig {
        max_vnets: 2,
        max_serves_per_vnet: 1,
        ..Default::default()
    })
    .await;
    let addr = route.addr;
    let echo = tagged_echo("limited").await;
    let serving = vnet_at(
        addr,
        &format!(
            "[vnet]\nmax_connections=1\n{}{}",
            serve_section("echo", 703, echo),
            serve_section("more", 704, echo)
        ),
    );
    let status = serving
        .wait("registrations settle", |s| {
            s.serve_id("echo").is_some() && matches!(s.serves["more"].state, ServeState::Refused(_))
        })
        .await;
    let ServeState::Refused(reason) = &status.serves["more"].state else {
        unreachable!()
    };
    assert!(reason.contains("max_serves_per_vnet=1"), "{reason}");

    let user = vnet_at(
        addr,
        &format!("[vnet]\nmax_connections=1\n{}", use_section("echo", 703)),
    );
    user.wait("second vnet connected", |s| s.vnet_id.is_some())
        .await;
    let third = vnet_at(addr, "");
    let refused = third
        .wait("third vnet refused", |s| s.route_error.is_some())
        .await;
    assert!(refused.route_error.unwrap().contains("max_vnets"));

    // One connection per use (and per serve) at a time.
    let use_addr = user.open_use("echo").await;
    let (mut first, _) = connect_tagged(use_addr).await;
    user.wait("one connection open", |s| {
        s.uses["echo"].traffic.connections() == 1
    })
    .await;
    assert_refused(use_addr).await;
    first.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    within("first still works", first.read_exact(&mut one))
        .await
        .unwrap();

    for vnet in [third, user, serving] {
        vnet.stop().await;
    }
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_through_a_lost_route_ends_in_a_reset_within_the_heartbeat() {
    let route = Route::with(fast_heartbeat()).await;
    let (pause, paused) = watch::channel(false);
    let via = testkit::cable::relay(route.addr, paused).await;
    let echo = tagged_echo("cut").await;
    let home = vnet_at(route.addr, &serve_section("echo", 703, echo));
    let far = vnet_at(
        via,
        &format!("[vnet]\nspares=0\n{}", use_section("echo", 703)),
    );
    let (mut stream, tag) = connect_tagged(far.open_use("echo").await).await;
    assert_eq!(tag, "cut");

    // The cable is pulled with the stream open: nothing reaches the
    // client any more, but it must not wait forever, nor see a clean end.
    pause.send_replace(true);
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = within("the client's stream ends", stream.read(&mut buf)).await;
    let waited = started.elapsed();
    assert!(
        matches!(&read, Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset),
        "expected a reset, got {read:?}"
    );
    assert!(waited < Duration::from_secs(4), "took {waited:?}");
    pause.send_replace(false);
    stop_all(route, [far, home]).await;
}
