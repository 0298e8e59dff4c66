//! A client's first bytes travel with its stream's start: they reach the
//! serving side before it has answered `Open`, and when a serving spare
//! dies without answering, the next one gets the same bytes.
//!
//! The serving vnet here is written by hand from the protocol, so the test
//! sees exactly what arrives on each of its spares and when it answers.
use net::handshake::next_message;
use net::Unframed;
use proto::codec::VnetCodec;
use proto::message::{RouteMsg, SpareRole, VnetMsg};
use proto::MAX_SPARES;
use std::net::SocketAddr;
use testkit::raw::{self, Link};
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Encoder;

/// Joins the default group (no token) and registers serve `id`; returns
/// the session, whose control connection is kept open.
async fn join_and_serve(route: SocketAddr, id: u16) -> raw::Session {
    let mut session = raw::Session::join(route, "by-hand", "default", "").await;
    session.register(id).await;
    session
}

/// Opens `MAX_SPARES + 1` serving spares and returns the kept ones as the
/// route hands them streams. Once the route has refused one, all the
/// others are kept, so a visitor is sure to get one of them.
async fn serving_spares(route: SocketAddr, session: &mut raw::Session) -> mpsc::Receiver<Link> {
    let (opened, streams) = mpsc::channel(MAX_SPARES as usize + 1);
    let (refused_tx, mut refused) = mpsc::channel(1);
    for _ in 0..=MAX_SPARES {
        let hello = VnetMsg::Spare {
            role: SpareRole::Serve,
            pass: session.pass(SpareRole::Serve.purpose()),
        };
        let mut spare = raw::dial(route, hello).await;
        let (opened, refused_tx) = (opened.clone(), refused_tx.clone());
        tokio::spawn(async move {
            match next_message(&mut spare).await {
                Ok(RouteMsg::Open { .. }) => drop(opened.send(spare).await),
                Ok(RouteMsg::Refused(_)) => drop(refused_tx.send(()).await),
                _ => {}
            }
        });
    }
    within("the route refusing one spare too many", refused.recv())
        .await
        .unwrap();
    streams
}

/// Reads exactly `n` raw bytes that follow the frames read so far.
async fn read_raw(stream: &mut Unframed<TcpStream>, n: usize) -> Vec<u8> {
    let mut bytes = stream
        .leftover
        .split_to(n.min(stream.leftover.len()))
        .to_vec();
    let had = bytes.len();
    bytes.resize(n, 0);
    within("raw bytes", stream.stream.read_exact(&mut bytes[had..]))
        .await
        .unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_bytes_go_ahead_and_a_dead_spare_passes_them_to_the_next() {
    let route = Route::start().await;
    let mut session = join_and_serve(route.addr, 711).await;
    let mut streams = serving_spares(route.addr, &mut session).await;
    let office = Vnet::start(
        &route,
        &format!("[vnet]\nname=office\n{}", use_section("svc", 711)),
    );
    let addr = office.open_use("svc").await;

    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    client.shutdown().await.unwrap();

    // The first spare offered gets the request with the `Open`, before
    // any answer; it then dies without answering.
    let first = within("a stream on a spare", streams.recv()).await.unwrap();
    let mut first = Unframed::from_framed(first);
    assert_eq!(read_raw(&mut first, 18).await, b"GET / HTTP/1.0\r\n\r\n");
    drop(first);

    // The next spare gets the same bytes, then (once it answers) the
    // client's half-close.
    let next = within("the stream on the next spare", streams.recv())
        .await
        .unwrap();
    let mut next = Unframed::from_framed(next);
    assert_eq!(read_raw(&mut next, 18).await, b"GET / HTTP/1.0\r\n\r\n");
    let mut answer = bytes::BytesMut::new();
    VnetCodec::new()
        .encode(VnetMsg::Opened { result: Ok(()) }, &mut answer)
        .unwrap();
    answer.extend_from_slice(b"HTTP/1.0 200 OK\r\n\r\n");
    next.stream.write_all(&answer).await.unwrap();
    let mut rest = Vec::new();
    within(
        "the client's half-close",
        next.stream.read_to_end(&mut rest),
    )
    .await
    .unwrap();
    assert!(rest.is_empty(), "nothing more than the request: {rest:?}");
    drop(next);

    let mut reply = Vec::new();
    within("the reply", client.read_to_end(&mut reply))
        .await
        .unwrap();
    assert_eq!(reply, b"HTTP/1.0 200 OK\r\n\r\n");
    office.stop().await;
    route.stop().await;
}
