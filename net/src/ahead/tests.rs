use super::*;
use crate::test_sockets::socket_pair;
use futures::SinkExt;
use proto::codec::{RouteCodec, VnetCodec};
use proto::message::RouteMsg;
use std::future::Future;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(20);

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f).await.expect("in time")
}

/// The asking side's connection (it reads route messages) and the asked
/// side's end of it.
async fn asked_pair() -> (Framed<TcpStream, VnetCodec>, Framed<TcpStream, RouteCodec>) {
    let (asking, asked) = socket_pair(None).await;
    (
        Framed::new(asking, VnetCodec::new()),
        Framed::new(asked, RouteCodec::new()),
    )
}

async fn read_n(from: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    within(from.read_exact(&mut bytes)).await.unwrap();
    bytes
}

#[tokio::test]
async fn bytes_go_ahead_of_the_answer_and_what_follows_it_is_kept() {
    let (mut client, mut source) = socket_pair(None).await;
    let (mut to, mut asked) = asked_pair().await;
    client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();

    let asked_side = async {
        // The request is readable before any answer was sent.
        let got = read_n(asked.get_mut(), 16).await;
        asked.send(RouteMsg::Ready).await.unwrap();
        asked.get_mut().write_all(b"reply").await.unwrap();
        got
    };
    let mut ahead = Ahead::default();
    let (answered, got) =
        within(async { tokio::join!(ahead.until_answer(&mut source, &mut to), asked_side) }).await;

    assert_eq!(got, b"GET / HTTP/1.1\r\n");
    assert!(matches!(answered, Answered::Answer(RouteMsg::Ready)));
    assert_eq!(&ahead.bytes[..], b"GET / HTTP/1.1\r\n");
    let mut rest = crate::handshake::Unframed::from_framed(to);
    let mut reply = rest.leftover.to_vec();
    reply.resize(5, 0);
    let had = rest.leftover.len();
    within(rest.stream.read_exact(&mut reply[had..]))
        .await
        .unwrap();
    assert_eq!(reply, b"reply");
}

#[tokio::test]
async fn a_connection_lost_before_answering_leaves_every_byte_for_the_next() {
    let (mut client, mut source) = socket_pair(None).await;
    let mut ahead = Ahead::new(b"left");
    client.write_all(b"over").await.unwrap();

    let (mut first, mut first_asked) = asked_pair().await;
    let first_side = async {
        let got = read_n(first_asked.get_mut(), 8).await;
        drop(first_asked);
        got
    };
    let (answered, got) =
        within(async { tokio::join!(ahead.until_answer(&mut source, &mut first), first_side) })
            .await;
    assert_eq!(got, b"leftover");
    assert!(matches!(answered, Answered::Lost(_)), "{answered:?}");
    assert_eq!(&ahead.bytes[..], b"leftover");

    // The next connection gets the same bytes first, then the new ones.
    client.write_all(b"!").await.unwrap();
    let (mut second, mut second_asked) = asked_pair().await;
    let second_side = async {
        let got = read_n(second_asked.get_mut(), 9).await;
        second_asked.send(RouteMsg::Ready).await.unwrap();
        got
    };
    let (answered, got) =
        within(async { tokio::join!(ahead.until_answer(&mut source, &mut second), second_side) })
            .await;
    assert_eq!(got, b"leftover!");
    assert!(matches!(answered, Answered::Answer(RouteMsg::Ready)));
}

#[tokio::test]
async fn at_most_the_limit_is_read_before_the_answer() {
    let (mut client, mut source) = socket_pair(None).await;
    let sent: Vec<u8> = (0..AHEAD_LIMIT * 3).map(|i| (i % 251) as u8).collect();
    client.write_all(&sent).await.unwrap();

    let (mut to, mut asked) = asked_pair().await;
    let asked_side = async {
        let got = read_n(asked.get_mut(), AHEAD_LIMIT).await;
        asked.send(RouteMsg::Ready).await.unwrap();
        got
    };
    let mut ahead = Ahead::default();
    let (answered, got) =
        within(async { tokio::join!(ahead.until_answer(&mut source, &mut to), asked_side) }).await;
    assert!(matches!(answered, Answered::Answer(RouteMsg::Ready)));
    assert_eq!(got, sent[..AHEAD_LIMIT]);
    assert_eq!(ahead.bytes.len(), AHEAD_LIMIT);
    // The rest is still in the source, in order.
    let rest = read_n(&mut source, AHEAD_LIMIT * 2).await;
    assert_eq!(rest, sent[AHEAD_LIMIT..]);
}

#[tokio::test]
async fn a_reset_source_is_told_apart_from_a_lost_connection() {
    let (client, mut source) = socket_pair(None).await;
    // Linger 0: closing sends a reset, not a FIN.
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    let (mut to, _asked) = asked_pair().await;
    let mut ahead = Ahead::default();
    let answered = within(ahead.until_answer(&mut source, &mut to)).await;
    assert!(
        matches!(answered, Answered::SourceFailed(_)),
        "{answered:?}"
    );
}
