//! End to end between vnets (`[vnet] secret=`): streams between two vnets
//! with the same secret are sealed (a recording relay between each vnet
//! and the route sees none of what the client and the service say, both
//! ways, on spares and dialed back), and a vnet with a secret refuses
//! streams to and from vnets without it, or with another. A route that
//! tampers with sealed streams or with pairing: see `tamper`; a peer that
//! comes back in a new session: see `restart`; the direct path with a
//! secret: see `direct`.
mod direct;
mod mitm;
mod restart;
mod tamper;

use proto::codec::MessageCodec;
use proto::message::RouteMsg;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "correct horse battery staple";
const MARKER_UP: &[u8] = b"MARKER-from-the-client";
const MARKER_DOWN: &str = "MARKER-from-the-service";

/// Relays connections to `route`, keeping every byte both ways, as a
/// route operator could.
async fn recording_relay(route: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let (addr, seen, open) = gated_relay(route).await;
    open.cancel();
    (addr, seen)
}

/// A [`recording_relay`] that takes no connection until `open` is
/// cancelled (they wait in the listen queue).
async fn gated_relay(route: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let open = CancellationToken::new();
    let gate = open.clone();
    tokio::spawn(async move {
        gate.cancelled().await;
        relay_each(listener, route, move |(vr, vw), (rr, rw)| {
            tokio::spawn(pump(vr, rw, record.clone()));
            tokio::spawn(pump(rr, vw, record.clone()));
        })
        .await
    });
    (addr, seen, open)
}

/// Relays each connection a vnet makes to `route`. What the vnet sends
/// passes as it is; what the route sends on the first connection (the
/// control connection) goes through `control`, on the others (streams)
/// through `stream`.
async fn splitting_relay<C, CF, S, SF>(route: SocketAddr, control: C, stream: S) -> SocketAddr
where
    C: FnOnce(OwnedReadHalf, OwnedWriteHalf) -> CF + Send + 'static,
    CF: std::future::Future<Output = ()> + Send + 'static,
    S: Fn(OwnedReadHalf, OwnedWriteHalf) -> SF + Send + 'static,
    SF: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut control = Some(control);
    tokio::spawn(relay_each(listener, route, move |(vr, vw), (rr, rw)| {
        tokio::spawn(pass(vr, rw));
        match control.take() {
            Some(control) => tokio::spawn(control(rr, vw)),
            None => tokio::spawn(stream(rr, vw)),
        };
    }));
    addr
}

/// The two halves of one side of a relayed connection.
type Halves = (OwnedReadHalf, OwnedWriteHalf);

/// Connects each connection `listener` takes to `route` and hands both
/// sides to `each` to relay.
async fn relay_each(
    listener: TcpListener,
    route: SocketAddr,
    mut each: impl FnMut(Halves, Halves) + Send + 'static,
) {
    while let Ok((vnet_side, _)) = listener.accept().await {
        let Ok(route_side) = TcpStream::connect(route).await else {
            continue;
        };
        each(vnet_side.into_split(), route_side.into_split());
    }
}

/// The route's messages on a control connection, and where they go on to
/// the vnet, once the preamble has passed.
type ControlMessages = (
    FramedRead<OwnedReadHalf, MessageCodec<RouteMsg, RouteMsg>>,
    FramedWrite<OwnedWriteHalf, MessageCodec<RouteMsg, RouteMsg>>,
);

/// Passes the route's preamble on `from` to the vnet on `to`, then reads
/// and writes whole messages; `None` if the connection ended first.
async fn control_messages(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
) -> Option<ControlMessages> {
    let mut preamble = [0u8; proto::preamble::LEN];
    from.read_exact(&mut preamble).await.ok()?;
    to.write_all(&preamble).await.ok()?;
    Some((
        FramedRead::new(from, MessageCodec::new()),
        FramedWrite::new(to, MessageCodec::new()),
    ))
}

/// Copies `from` to `to` as it is, then passes the end on.
async fn pass(mut from: OwnedReadHalf, mut to: OwnedWriteHalf) {
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.shutdown().await;
}

/// Copies `from` to `to`, keeping a copy of every byte in `record`.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    record: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 16384];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        record.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// `body` with `direct=off` in its `[vnet]` unless it says otherwise:
/// most tests here are about the relay, whose bytes a relay in the test
/// can watch and alter (`direct` tests the direct path with a secret).
fn relay_only(body: &str) -> String {
    if body.contains("direct=") {
        body.to_string()
    } else if body.contains("[vnet]\n") {
        body.replacen("[vnet]\n", "[vnet]\ndirect=off\n", 1)
    } else {
        format!("[vnet]\ndirect=off\n{body}")
    }
}

fn vnet_via(route: SocketAddr, body: &str) -> Vnet {
    let body = relay_only(body);
    let text = format!("[route]\nip=127.0.0.1\nport={}\n{body}", route.port());
    let config = vnet::VnetConfig::parse("t.ini", &text).unwrap();
    Vnet {
        handle: vnet::start(config, CancellationToken::new()),
    }
}

fn secret_line(secret: Option<&str>) -> String {
    secret.map_or_else(String::new, |s| format!("secret={s}\n"))
}

/// Vnet home's config body: `service` served as 700 under `key`, with
/// `secret` and the `extra` lines of `[vnet]`.
fn home_body(key: &str, service: SocketAddr, secret: Option<&str>, extra: &str) -> String {
    format!(
        "[vnet]\nname=home\n{extra}{}{}",
        secret_line(secret),
        serve_section(key, 700, service)
    )
}

/// Vnet home through `route`, once its serve is registered.
async fn serving_home(
    route: SocketAddr,
    key: &str,
    service: SocketAddr,
    secret: Option<&str>,
    extra: &str,
) -> Vnet {
    let home = vnet_via(route, &home_body(key, service, secret, extra));
    home.registered(key).await;
    home
}

/// Vnet office through `route`, using serve 700 as `key`; and the use's
/// address, once it is open.
async fn using_office(
    route: SocketAddr,
    key: &str,
    secret: Option<&str>,
    extra: &str,
) -> (Vnet, SocketAddr) {
    let body = format!(
        "[vnet]\nname=office\n{extra}{}{}",
        secret_line(secret),
        use_section(key, 700)
    );
    let office = vnet_via(route, &body);
    let used = office.open_use(key).await;
    (office, used)
}

/// The service's side: greets with the down marker, echoes.
async fn marked_echo() -> SocketAddr {
    tagged_echo(MARKER_DOWN).await
}

/// One exchange through `use_addr`: greeting, the up marker echoed, a
/// clean end both ways.
async fn exchange(use_addr: SocketAddr) {
    let (mut stream, tag) = connect_tagged(use_addr).await;
    assert_eq!(tag, MARKER_DOWN);
    stream.write_all(MARKER_UP).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    within("the echo", stream.read_to_end(&mut back))
        .await
        .unwrap();
    assert_eq!(back, MARKER_UP);
}

fn saw(seen: &Mutex<Vec<u8>>, marker: &[u8]) -> bool {
    seen.lock()
        .unwrap()
        .windows(marker.len())
        .any(|w| w == marker)
}

async fn sealed_both_ways(spares: u32) {
    let route = Route::start().await;
    let (home_route, home_seen) = recording_relay(route.addr).await;
    let (office_route, office_seen) = recording_relay(route.addr).await;
    let service = marked_echo().await;
    let spares = format!("spares={spares}\n");
    let home = serving_home(home_route, "echo", service, Some(SECRET), &spares).await;
    let (office, used) = using_office(office_route, "echo", Some(SECRET), &spares).await;
    for _ in 0..3 {
        exchange(used).await;
    }
    let home_id = home.handle.status().vnet_id.unwrap();
    assert_eq!(office.handle.end_to_end(home_id), "yes");
    for (who, seen) in [("home", &home_seen), ("office", &office_seen)] {
        assert!(
            !saw(seen, MARKER_UP),
            "{who}'s relay saw the client's bytes"
        );
        assert!(
            !saw(seen, MARKER_DOWN.as_bytes()),
            "{who}'s relay saw the service's bytes"
        );
        assert!(
            !saw(seen, SECRET.as_bytes()),
            "{who}'s relay saw the secret"
        );
    }
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_relays_sealed_streams_it_cannot_read() {
    sealed_both_ways(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialed_back_streams_are_sealed_too() {
    sealed_both_ways(0).await;
}

/// Home serves, office uses, each with its secret (or none): whether a
/// stream gets through, and what office's `show vnets` says of home.
async fn gets_through(home_secret: Option<&str>, office_secret: Option<&str>) -> (bool, String) {
    let route = Route::start().await;
    let service = marked_echo().await;
    let home = serving_home(route.addr, "echo", service, home_secret, "").await;
    let (office, used) = using_office(route.addr, "echo", office_secret, "").await;
    let through = within("an answer or a refusal", async {
        // A refused connection may be reset before the connect returns.
        let mut stream = TcpStream::connect(used).await?;
        let mut buf = vec![0u8; 64];
        let n = stream.read(&mut buf).await?;
        Ok::<_, std::io::Error>(n > 0 && buf[..n].starts_with(MARKER_DOWN.as_bytes()))
    })
    .await
    .unwrap_or(false);
    let home_id = home.handle.status().vnet_id.unwrap();
    let standing = office.handle.end_to_end(home_id);
    stop_all(route, [office, home]).await;
    (through, standing)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_on_one_side_only_or_two_secrets_are_refused() {
    let (through, standing) = gets_through(None, None).await;
    assert!(through, "without secrets it works as before");
    assert_eq!(standing, "off");
    assert_eq!(
        gets_through(Some(SECRET), Some(SECRET)).await,
        (true, "yes".into())
    );
    let (through, standing) = gets_through(Some(SECRET), None).await;
    assert!(
        !through && standing == "off",
        "serving side only: {standing}"
    );
    let (through, standing) = gets_through(None, Some(SECRET)).await;
    assert!(!through, "visiting side only");
    assert!(standing.contains("no end-to-end secret"), "{standing}");
    let (through, standing) = gets_through(Some(SECRET), Some("another secret!")).await;
    assert!(!through);
    assert!(
        standing.contains("does not prove the group secret"),
        "{standing}"
    );
}

/// A client that waits for its server's greeting sends nothing, so a
/// serving vnet waiting for a sealed stream's header would hold it until
/// its header timeout (5 s). From a vnet that never paired with it, the
/// stream cannot be sealed: it is refused at once, and the client never
/// sees the greeting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_stream_to_a_service_that_speaks_first_is_refused_at_once() {
    let route = Route::start().await;
    let service = marked_echo().await;
    let home = serving_home(route.addr, "echo", service, Some(SECRET), "").await;
    let (office, used) = using_office(route.addr, "echo", None, "").await;
    for _ in 0..3 {
        let ended = async {
            let mut stream = TcpStream::connect(used).await?;
            let mut buf = vec![0u8; 64];
            stream.read(&mut buf).await
        };
        let ended = tokio::time::timeout(std::time::Duration::from_secs(3), ended)
            .await
            .expect("refused before the header timeout");
        assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
    }
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vnet_uses_its_own_serve_sealed() {
    let route = Route::start().await;
    let service = marked_echo().await;
    let both = vnet_via(
        route.addr,
        &format!(
            "[vnet]\nname=both\n{}{}{}",
            secret_line(Some(SECRET)),
            serve_section("echo", 700, service),
            use_section("mine", 700)
        ),
    );
    let used = both.open_use("mine").await;
    exchange(used).await;
    stop_all(route, [both]).await;
}

#[test]
fn a_short_secret_is_a_config_error() {
    let err = vnet::VnetConfig::parse("t.ini", "[route]\nip=h\nport=1\n[vnet]\nsecret=short\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.ini: [vnet] secret: shorter than 8 characters; use a long random string"
    );
}

/// Home grants unserve; both have the secret unless said otherwise.
async fn granting_home(route: &Route, service: SocketAddr) -> (Vnet, proto::VnetId) {
    let _ = service;
    let home = vnet_via(
        route.addr,
        &format!(
            "[vnet]\nname=home\nallow_unserve=true\n{}",
            secret_line(Some(SECRET))
        ),
    );
    let status = home.wait("connected", |s| s.vnet_id.is_some()).await;
    (home, status.vnet_id.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserve_asks_between_vnets_with_the_secret_are_proved_and_granted() {
    let route = Route::start().await;
    let service = marked_echo().await;
    let (home, home_id) = granting_home(&route, service).await;
    let office = vnet_via(
        route.addr,
        &format!("[vnet]\nname=office\n{}", secret_line(Some(SECRET))),
    );
    office.wait("connected", |s| s.vnet_id.is_some()).await;
    let granted = within(
        "the grant",
        office.handle.unserve(home_id, "127.0.0.1", service.port()),
    )
    .await;
    assert!(granted.is_ok(), "{granted:?}");
    assert_eq!(office.handle.end_to_end(home_id), "yes");
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_not_proved_end_to_end_is_refused() {
    // As the route could forge it: an ask with no proof, in the group.
    let route = Route::start().await;
    let service = marked_echo().await;
    let (home, home_id) = granting_home(&route, service).await;
    let mut mallory = testkit::raw::Session::join(route.addr, "office", "default", "").await;
    let ask = proto::message::Request::Unserve {
        vnet_id: home_id,
        ip: "127.0.0.1".into(),
        port: service.port(),
        proof: None,
    };
    mallory.send(1, ask).await;
    let answer = loop {
        match testkit::raw::next(&mut mallory.control).await {
            proto::message::RouteMsg::Response { id: 1, body } => break body,
            _ => continue,
        }
    };
    match answer {
        proto::message::Response::Error(refusal) => {
            assert_eq!(refusal.code, proto::RefusalCode::NotAllowed);
            assert!(refusal.text.contains("not proved end to end"), "{refusal}");
        }
        other => panic!("a forged ask was answered with {other:?}"),
    }
    assert!(
        home.handle.status().serves.is_empty(),
        "nothing was granted"
    );
    stop_all(route, [home]).await;
}
