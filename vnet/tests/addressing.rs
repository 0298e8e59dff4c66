//! The route reached by IPv6 address and by host name.
use testkit::*;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vnet::VnetConfig;

/// Starts a vnet whose [route] section is written out in full.
fn vnet_with_route(route_ip: &str, port: u16, body: &str) -> Vnet {
    let text = format!("[route]\nip={route_ip}\nport={port}\n{body}");
    let config = VnetConfig::parse("test.ini", &text).unwrap();
    Vnet {
        handle: vnet::start(config, CancellationToken::new()),
    }
}

async fn maps_through(listener: TcpListener, route_ip: &str) {
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let route = tokio::spawn(route::run(
        listener,
        route::RouteConfig::default(),
        shutdown.clone(),
    ));
    let echo = tagged_echo("addressed").await;
    let home = vnet_with_route(route_ip, port, &serve_section("echo", 42, echo));
    let office = vnet_with_route(route_ip, port, &use_section("echo", 42));
    let addr = office.open_use("echo").await;
    assert_eq!(connect_tagged(addr).await.1, "addressed");
    office.stop().await;
    home.stop().await;
    shutdown.cancel();
    within("route ends", route).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_on_ipv6_loopback() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        // No IPv6 on this host; nothing to test here.
        eprintln!("skipped: IPv6 loopback unavailable");
        return;
    };
    maps_through(listener, "::1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_by_host_name() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    maps_through(listener, "localhost").await;
}
