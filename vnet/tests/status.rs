//! The route's status page, JSON and metrics, read over HTTP as a browser
//! or Prometheus would: the vnets and serves of a group, each serve's
//! streams and bytes (live while a stream runs), refusals and dropped
//! peers by reason, the token, and escaping of what vnets sent.
use route::config::StatusConfig;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "page-s3cret";

/// An HTTP answer: status, head, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request on a connection of its own.
async fn request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> Answer {
    request_to(addr, &addr.to_string(), method, path, extra).await
}

/// As [`request`], naming the host `host`.
async fn request_to(addr: SocketAddr, host: &str, method: &str, path: &str, extra: &str) -> Answer {
    within("the status answers", async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let text =
            format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
        stream.write_all(text.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Answer {
            status,
            head: head.to_string(),
            body: body.to_string(),
        }
    })
    .await
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    let answer = request(
        addr,
        "GET",
        path,
        &format!("Authorization: Bearer {TOKEN}\r\n"),
    )
    .await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.head);
    answer
}

async fn status_json(addr: SocketAddr) -> Value {
    serde_json::from_str(&get(addr, "/api/status").await.body).unwrap()
}

/// Polls the JSON until `ready` holds (the counters move with traffic the
/// test cannot otherwise wait on).
async fn until(addr: SocketAddr, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    within(what, async {
        loop {
            let json = status_json(addr).await;
            if ready(&json) {
                return json;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

async fn route_with_status(token: Option<&str>) -> (Route, SocketAddr) {
    let route = Route::with(route::RouteConfig {
        status: Some(StatusConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            token: token.map(str::to_string),
        }),
        ..Default::default()
    })
    .await;
    let status = route.status.unwrap();
    (route, status)
}

fn serve_of(json: &Value) -> &Value {
    &json["groups"][0]["serves"][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_shows_vnets_serves_and_their_bytes_as_they_move() {
    bytes_as_they_move(4).await;
}

/// The same when every stream is dialed back (no spare connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialed_back_streams_are_counted_alike() {
    bytes_as_they_move(0).await;
}

async fn bytes_as_they_move(spares: u32) {
    let (route, status) = route_with_status(Some(TOKEN)).await;
    let sink = sink().await;
    let hostile = "<img src=x onerror=alert(1)>";
    let home = Vnet::start(
        &route,
        &format!(
            "[vnet]\nname=home\nspares={spares}\ndirect=off\n{}info={hostile}\n",
            serve_section("sink", 700, sink)
        ),
    );
    home.registered("sink").await;
    let office = Vnet::start(
        &route,
        "[vnet]\nname=office\ndirect=off\n[use.sink]\nserveid=700\nport=0\n",
    );
    let used = office.open_use("sink").await;

    // A stream that stays open: its bytes show while it runs.
    let mut open = TcpStream::connect(used).await.unwrap();
    open.write_all(&[7u8; 100_000]).await.unwrap();
    let json = until(status, "live bytes", |j| {
        serve_of(j)["bytes_up"].as_u64() == Some(100_000)
    })
    .await;
    assert_eq!(serve_of(&json)["streams_open"], 1);
    open.shutdown().await.unwrap();
    let mut answer = [0u8; 8];
    open.read_exact(&mut answer).await.unwrap();
    assert_eq!(u64::from_be_bytes(answer), 100_000);
    drop(open);

    assert_eq!(send_to_sink(used, 1 << 20).await, 1 << 20);
    office.idle().await;
    let json = until(status, "both streams closed", |j| {
        serve_of(j)["streams_open"] == 0 && serve_of(j)["streams_total"] == 2
    })
    .await;
    let serve = serve_of(&json);
    assert_eq!(serve["id"], 700);
    assert_eq!(serve["name"], "sink");
    assert_eq!(serve["vnet_name"], "home");
    assert_eq!(serve["info"], hostile, "JSON carries the text as it is");
    assert_eq!(serve["bytes_up"], 100_000 + (1 << 20));
    assert_eq!(serve["bytes_down"], 16);
    let vnets = &json["groups"][0]["vnets"];
    let names: Vec<_> = vnets
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["name"])
        .collect();
    assert_eq!(names, ["home", "office"]);
    assert!(vnets[0]["addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(json["groups"][0]["name"], "default");
    assert_eq!(json["settings"]["token"], false);

    let metrics = get(status, "/metrics").await;
    assert!(metrics.head.contains("text/plain; version=0.0.4"));
    let up = format!(
        "vnet_route_bytes_total{{group=\"default\",serve=\"700\",direction=\"up\"}} {}\n",
        100_000 + (1 << 20)
    );
    assert!(metrics.body.contains(&up), "{}", metrics.body);
    assert!(metrics
        .body
        .contains("vnet_route_streams_total{group=\"default\",serve=\"700\"} 2\n"));
    assert!(metrics
        .body
        .contains("vnet_route_vnets{group=\"default\"} 2\n"));
    assert!(metrics
        .body
        .contains("# TYPE vnet_route_bytes_total counter\n"));

    let page = get(status, "/").await;
    assert!(page.head.contains("text/html"));
    assert!(page.head.contains("script-src 'self'"), "{}", page.head);
    assert!(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!page.body.contains(hostile), "the info went out unescaped");
    assert!(page.body.contains("700</td><td>1 home</td><td>sink</td>"));
    let script = get(status, "/refresh.js").await;
    assert!(script.body.contains("setInterval"));

    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_required_and_only_get_is_served() {
    let (route, status) = route_with_status(Some(TOKEN)).await;
    let none = request(status, "GET", "/api/status", "").await;
    assert_eq!(none.status, 401);
    assert!(
        none.head.contains("WWW-Authenticate: Basic")
            || none.head.contains("www-authenticate: Basic")
    );
    let wrong = request(status, "GET", "/metrics", "Authorization: Bearer nope\r\n").await;
    assert_eq!(wrong.status, 401);
    // Basic auth with the token as password, any user: "me:page-s3cret".
    let basic = request(
        status,
        "GET",
        "/",
        "Authorization: Basic bWU6cGFnZS1zM2NyZXQ=\r\n",
    )
    .await;
    assert_eq!(basic.status, 200);
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    assert_eq!(request(status, "POST", "/", &auth).await.status, 405);
    assert_eq!(request(status, "GET", "/nope", &auth).await.status, 404);
    let head = request(status, "HEAD", "/api/status", &auth).await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_dropped_peers_are_counted_by_reason() {
    let (route, status) = route_with_status(None).await;
    // Without a token: an address or localhost names the host; a DNS
    // name (a page elsewhere, rebound to 127.0.0.1) does not.
    let port = status.port();
    let by_name = request_to(status, &format!("localhost:{port}"), "GET", "/", "").await;
    assert_eq!(by_name.status, 200);
    let rebound = request_to(status, &format!("evil.example:{port}"), "GET", "/", "").await;
    assert_eq!(rebound.status, 403);

    // A vnet of another protocol version, something that is not a vnet,
    // and a vnet with a token the route does not have.
    let mut old = TcpStream::connect(route.addr).await.unwrap();
    old.write_all(b"VNET\x00\x02").await.unwrap();
    let mut http = TcpStream::connect(route.addr).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\ntoken=t\n[vnet]\nname=t\n",
        route.addr.port()
    );
    let config = vnet::VnetConfig::parse("t.ini", &text).unwrap();
    let tokened = Vnet {
        handle: vnet::start(config, tokio_util::sync::CancellationToken::new()),
    };
    tokened.wait("refused", |s| s.route_error.is_some()).await;
    let json = until(status, "each counted", |j| {
        j["refusals"]["version"] == 1
            && j["dropped"]["bad_handshake"] == 1
            && j["refusals"]["auth"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(json["refusals"]["limit"], 0);
    let metrics = get(status, "/metrics").await.body;
    assert!(metrics.contains("vnet_route_refusals_total{reason=\"version\"} 1\n"));
    assert!(metrics.contains("vnet_route_dropped_total{reason=\"bad_handshake\"} 1\n"));
    tokened.stop().await;
    route.stop().await;
}
