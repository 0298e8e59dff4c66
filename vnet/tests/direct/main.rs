//! The direct path between two vnets on this host: once a use has first
//! needed its serving vnet, the two open a QUIC link between themselves
//! and new streams go on it, byte-exact with clean ends; the route only
//! introduced them, and streams on the link start and flow without it.
//! With `direct=off` nothing leaves the route. Lab tests (NATs, loss,
//! failing links) are in `lab/`.
use futures::StreamExt;
use std::net::SocketAddr;
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vnet::VnetConfig;

/// The service: greets with its tag, then echoes.
const TAG: &str = "home-echo";

/// Vnet home serving `service` as 700, with `extra` lines in `[vnet]`.
async fn home(route: &Route, service: SocketAddr, extra: &str) -> Vnet {
    let body = format!(
        "[vnet]\nname=home\n{extra}{}",
        serve_section("echo", 700, service)
    );
    let home = Vnet::start(route, &body);
    home.registered("echo").await;
    home
}

/// Vnet office using 700, with `extra` lines in `[vnet]` and `in_use`
/// lines in its use; and the use's address.
async fn office(route: &Route, extra: &str, in_use: &str) -> (Vnet, SocketAddr) {
    let body = format!(
        "[vnet]\nname=office\n{extra}{}{in_use}",
        use_section("echo", 700)
    );
    let office = Vnet::start(route, &body);
    let used = office.open_use("echo").await;
    (office, used)
}

/// One connection through the use: `len` bytes of a pattern there and
/// back, byte-exact, with clean ends.
async fn echo(used: SocketAddr, seed: u64, len: usize) {
    let (stream, tag) = connect_tagged(used).await;
    assert_eq!(tag, TAG);
    let (mut read, mut write) = stream.into_split();
    let sent = pattern(seed, len);
    let sending = tokio::spawn(async move {
        write.write_all(&sent).await.unwrap();
        write.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    within("the echo comes back", read.read_to_end(&mut back))
        .await
        .expect("a clean end");
    sending.await.unwrap();
    assert!(
        back == pattern(seed, len),
        "the echo differs from what was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_streams_go_direct_once_the_link_is_up() {
    let route = Route::start().await;
    let service = tagged_echo(TAG).await;
    let home = home(&route, service, "").await;
    let (office, used) = office(&route, "", "").await;

    // The first stream goes through the route and asks for a link.
    let home_id = direct_link_up(&home, &office, || echo(used, 1, 1000)).await;
    assert!(
        office.handle.use_paths()["echo"].is_some(),
        "show use says direct"
    );
    let shown = office.handle.direct_with(home_id);
    assert!(shown.starts_with("up "), "show vnets says {shown}");
    let before = office.wait("", |_| true).await.direct_streams;
    for seed in 0..4 {
        echo(used, seed, 300_000).await;
    }
    let after = office.wait("", |_| true).await.direct_streams;
    assert_eq!(after - before, 4, "every stream after the link went direct");
    // Here home's TCP lane is reachable: once its spares are open,
    // streams take them (a bounded number of tries, no sleeping).
    let on_lane = |s: &vnet::Status| s.lane_streams;
    let mut tries = 0;
    while on_lane(&office.handle.status()) == 0 && tries < 200 {
        echo(used, 100 + tries, 10).await;
        tries += 1;
    }
    let lane_before = on_lane(&office.handle.status());
    assert!(lane_before > 0, "no stream took the lane in {tries} tries");
    for seed in 0..4 {
        echo(used, 10 + seed, 300_000).await;
    }
    assert!(
        on_lane(&office.handle.status()) > lane_before,
        "the lane's spares are replaced"
    );
    office.idle().await;
    home.idle().await;
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_on_the_link_start_and_flow_while_the_route_is_away() {
    let route = Route::start().await;
    let service = tagged_echo(TAG).await;
    let home = home(&route, service, "").await;
    // Office reaches the route through a cable that will be pulled.
    let (pull, pulled) = tokio::sync::watch::channel(false);
    let cable = testkit::cable::relay(route.addr, pulled).await;
    let body = format!(
        "[route]\nip=127.0.0.1\nport={}\nheartbeat=1\n[vnet]\nname=office\n{}",
        cable.port(),
        use_section("echo", 700)
    );
    let office = Vnet {
        handle: vnet::start(
            VnetConfig::parse("t.ini", &body).unwrap(),
            tokio_util::sync::CancellationToken::new(),
        ),
    };
    let used = office.open_use("echo").await;
    direct_link_up(&home, &office, || echo(used, 1, 10)).await;

    // A stream open on the link before the route goes keeps flowing.
    let (mut flowing, tag) = connect_tagged(used).await;
    assert_eq!(tag, TAG);
    pull.send_replace(true);
    office
        .wait("office lost the route", |s| s.vnet_id.is_none())
        .await;
    flowing.write_all(b"still here").await.unwrap();
    flowing.shutdown().await.unwrap();
    let mut back = Vec::new();
    within(
        "the echo after the route left",
        flowing.read_to_end(&mut back),
    )
    .await
    .expect("a clean end");
    assert_eq!(back, b"still here");
    // The use stays open for a serve on a link: new streams start on it.
    assert!(office.wait("", |_| true).await.uses["echo"].open);
    let before = office.wait("", |_| true).await.direct_streams;
    echo(used, 7, 100_000).await;
    assert_eq!(office.wait("", |_| true).await.direct_streams, before + 1);
    office.idle().await;
    office.stop().await;
    stop_all(route, [home]).await;
}

/// Office and home, with `extra` lines in their `[vnet]` and `in_use` in
/// office's use, after three streams.
async fn three_streams(home_extra: &str, office_extra: &str, in_use: &str) -> (Route, Vnet, Vnet) {
    let route = Route::start().await;
    let service = tagged_echo(TAG).await;
    let home = home(&route, service, home_extra).await;
    let (office, used) = office(&route, office_extra, in_use).await;
    for seed in 0..3 {
        echo(used, seed, 1000).await;
    }
    office.idle().await;
    (route, office, home)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_off_at_the_using_vnet_keeps_its_streams_on_the_route() {
    let (route, office, home) = three_streams("", "direct=off\n", "").await;
    let status = office.wait("", |_| true).await;
    assert_eq!(
        status.direct_socket, None,
        "no direct socket with direct=off"
    );
    assert!(status.direct.is_empty() && status.direct_streams == 0);
    assert!(
        home.wait("", |_| true).await.direct.is_empty(),
        "home was never introduced"
    );
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_off_for_one_use_keeps_its_streams_on_the_route() {
    let (route, office, home) = three_streams("", "", "direct=off\n").await;
    let status = office.wait("", |_| true).await;
    // A stream that could go direct asks for a link before it starts.
    assert!(
        status.direct.is_empty(),
        "a link was asked for: {:?}",
        status.direct
    );
    assert_eq!(status.direct_streams, 0);
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_vnet_with_direct_off_is_reached_through_the_route_and_says_why() {
    let (route, office, home) = three_streams("direct=off\n", "", "").await;
    let home_id = home
        .wait("home has an id", |s| s.vnet_id.is_some())
        .await
        .vnet_id
        .unwrap();
    let status = office
        .wait("office was told home takes no links", |s| {
            matches!(s.direct.get(&home_id), Some(vnet::DirectState::Relay(_)))
        })
        .await;
    let why = office.handle.direct_with(home_id);
    assert!(
        why.starts_with("no: ") && why.contains("direct=off"),
        "{why}"
    );
    assert_eq!(status.direct_streams, 0);
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_takes_only_auto_or_off() {
    let text = "[route]\nip=127.0.0.1\nport=1\n[vnet]\ndirect=maybe\n";
    let err = VnetConfig::parse("t.ini", text).unwrap_err().to_string();
    assert!(
        err.contains("t.ini") && err.contains("[vnet]") && err.contains("direct"),
        "{err}"
    );
    let text = "[route]\nip=127.0.0.1\nport=1\n[use.a]\nserveid=700\ndirect=yes\n";
    let err = VnetConfig::parse("t.ini", text).unwrap_err().to_string();
    assert!(err.contains("[use.a]") && err.contains("direct"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_port_takes_only_a_port_number() {
    for value in ["70000", "udp", "-1"] {
        let text = format!("[route]\nip=127.0.0.1\nport=1\n[vnet]\ndirect_port={value}\n");
        let err = VnetConfig::parse("t.ini", &text).unwrap_err().to_string();
        assert!(
            err.contains("t.ini") && err.contains("[vnet]") && err.contains("direct_port"),
            "{err}"
        );
    }
}

/// A port free now for both UDP and TCP (on every interface, both
/// families where the host has them), for `direct_port=`: the lane takes
/// another number when TCP's is in use, and tests run side by side.
fn free_udp_and_tcp_port() -> u16 {
    let any = |port: u16| -> [std::net::SocketAddr; 2] {
        [
            (std::net::Ipv6Addr::UNSPECIFIED, port).into(),
            (std::net::Ipv4Addr::UNSPECIFIED, port).into(),
        ]
    };
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind(&any(0)[..]).unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(&any(port)[..]).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP in 100 tries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_port_is_the_socket_and_the_lane() {
    let route = Route::start().await;
    let service = tagged_echo(TAG).await;
    let port = free_udp_and_tcp_port();
    let home = home(&route, service, &format!("direct_port={port}\n")).await;
    let status = home.wait("", |_| true).await;
    assert_eq!(status.direct_socket.map(|a| a.port()), Some(port));
    assert_eq!(status.lane_port, Some(port), "the lane on the same number");
    let (office, used) = office(&route, "", "").await;
    direct_link_up(&home, &office, || echo(used, 1, 1000)).await;
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_port_taken_leaves_the_vnet_on_the_route() {
    let route = Route::start().await;
    let service = tagged_echo(TAG).await;
    let holder = std::net::UdpSocket::bind("[::]:0")
        .or_else(|_| std::net::UdpSocket::bind("0.0.0.0:0"))
        .unwrap();
    let port = holder.local_addr().unwrap().port();
    let home = home(&route, service, &format!("direct_port={port}\n")).await;
    let status = home.wait("", |_| true).await;
    assert_eq!(
        status.direct_socket, None,
        "no direct path without its port"
    );
    let (office, used) = office(&route, "", "").await;
    for seed in 0..3 {
        echo(used, seed, 10_000).await;
    }
    assert_eq!(office.handle.status().direct_streams, 0);
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_connection_without_its_links_key_is_dropped() {
    let route = Route::start().await;
    let service = tagged_echo(TAG).await;
    let home = home(&route, service, "").await;
    let (office, used) = office(&route, "", "").await;
    let port = home.wait("", |_| true).await.lane_port.expect("a lane");
    // Garbage, then a well-formed hello made with a key home never gave.
    let stranger = proto::direct::lane::LaneKey {
        id: [7; 8],
        secret: [9; 32],
    };
    for mut opening in [vec![b'x'; 56], stranger.hello(1).encode().to_vec()] {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        // Then a stream's header, in the same write: home may reset the
        // connection as soon as it has read the opening.
        opening.extend_from_slice(&[1, 0x02, 0xbc]);
        conn.write_all(&opening).await.unwrap();
        let mut got = Vec::new();
        let read = within("the stranger is dropped", conn.read_to_end(&mut got)).await;
        assert!(got.is_empty(), "a stranger got {} bytes", got.len());
        assert!(read.is_err(), "dropped with a reset, not served: {read:?}");
    }
    // The vnets are unaffected.
    echo(used, 1, 1000).await;
    stop_all(route, [office, home]).await;
}

/// QUIC streams a link carries at once (vnet's `MAX_STREAMS`).
const LINK_STREAMS: usize = 1024;

/// A link holds at most its limit of streams open; the next ones go
/// through the route at once instead of waiting for one to end. With
/// `secret=` there is no TCP lane: every direct stream is a QUIC stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_links_limit_go_through_the_route() {
    // About four descriptors per connection, all in this process.
    net::process::raise_open_files_limit();
    let route = Route::start().await;
    let service = tagged_echo(TAG).await;
    let secret = "secret=a-secret-for-the-limit-test\n";
    let home = home(&route, service, secret).await;
    let (office, used) = office(&route, secret, "").await;
    direct_link_up(&home, &office, || echo(used, 1, 1000)).await;
    // Closed streams give their credit back a round trip later.
    let before = office.wait("", |_| true).await.direct_streams;
    let extra = 16;
    // 64 connecting at a time: the service's listen queue is short.
    let open = futures::stream::iter(0..LINK_STREAMS + extra).map(|_| connect_tagged(used));
    let conns: Vec<_> = within("every connection is greeted", open.buffered(64).collect()).await;
    assert!(conns.iter().all(|(_, tag)| tag == TAG));
    let direct = (office.wait("", |_| true).await.direct_streams - before) as usize;
    assert!(
        (LINK_STREAMS - extra..=LINK_STREAMS).contains(&direct),
        "{direct} of {} went direct",
        LINK_STREAMS + extra
    );
    // Every one of them carries bytes, and all end cleanly.
    for (i, (mut conn, _)) in conns.into_iter().enumerate() {
        let sent = pattern(i as u64, 64);
        conn.write_all(&sent).await.unwrap();
        conn.shutdown().await.unwrap();
        let mut back = Vec::new();
        within("the echo comes back", conn.read_to_end(&mut back))
            .await
            .unwrap();
        assert!(back == sent, "connection {i} echoed other bytes");
    }
    office.idle().await;
    home.idle().await;
    stop_all(route, [office, home]).await;
}
