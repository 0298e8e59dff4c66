//! A route that stops reading cannot wedge a vnet: the vnet's writes never
//! block the loop that watches the heartbeat, so it gives up on that
//! connection within a heartbeat and connects again.
use futures::{SinkExt, StreamExt};
use net::handshake::{read_preamble, write_preamble_and};
use proto::auth::{RouteExchange, Token};
use proto::codec::RouteCodec;
use proto::features::Features;
use proto::message::{RouteMsg, VnetMsg};
use proto::{SessionId, VnetId};
use std::time::{Duration, Instant};
use testkit::*;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

/// Plays a route up to the welcome, then never reads again.
async fn welcome_and_stop_reading(stream: TcpStream) -> Framed<TcpStream, RouteCodec> {
    let mut stream = stream;
    read_preamble(&mut stream).await.unwrap();
    write_preamble_and::<_, VnetMsg, RouteMsg>(&mut stream, None)
        .await
        .unwrap();
    let mut link = Framed::new(stream, RouteCodec::new());
    let Some(Ok(VnetMsg::Hello {
        name, group, pake, ..
    })) = link.next().await
    else {
        panic!("expected a hello");
    };
    let (exchange, pake, confirm) =
        RouteExchange::answer(&Token::default(), &name, &group, &pake).unwrap();
    let challenge = RouteMsg::Challenge {
        pake,
        confirm,
        token: false,
    };
    link.send(challenge).await.unwrap();
    let Some(Ok(VnetMsg::Auth { confirm })) = link.next().await else {
        panic!("expected the confirmation");
    };
    exchange.check(&confirm).unwrap();
    let welcome = RouteMsg::Welcome {
        vnet_id: VnetId(1),
        session: SessionId(7),
        heartbeat_secs: 1,
        features: Features::ours(),
    };
    link.send(welcome).await.unwrap();
    link
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_stops_reading_is_given_up_within_a_heartbeat() {
    // A receive buffer this small fills with the first registrations.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener: TcpListener = socket.listen(8).unwrap();
    let port = listener.local_addr().unwrap().port();
    let text = format!("[route]\nip=127.0.0.1\nport={port}\nheartbeat=1\n[vnet]\nspares=0\n");
    let vnet = Vnet {
        handle: vnet::start(
            vnet::VnetConfig::parse("t.ini", &text).unwrap(),
            CancellationToken::new(),
        ),
    };
    let (first, _) = within("the vnet connects", listener.accept())
        .await
        .unwrap();
    let _stuck = welcome_and_stop_reading(first).await;
    let welcomed = Instant::now();
    vnet.wait("connected", |s| s.vnet_id.is_some()).await;
    // Requests pile up far beyond what the socket takes (on loopback a
    // send buffer grows to a few MiB before a write blocks).
    let ip = "a".repeat(250);
    for port in 1..=16_000u16 {
        let (handle, ip) = (vnet.handle.clone(), ip.clone());
        tokio::spawn(async move { handle.unserve(VnetId(2), &ip, port).await });
    }
    let (_again, _) = within("the vnet connects again", listener.accept())
        .await
        .unwrap();
    let gave_up = welcomed.elapsed();
    assert!(
        gave_up < Duration::from_secs(3),
        "the vnet kept a route that does not read for {gave_up:?}"
    );
    vnet.stop().await;
}
