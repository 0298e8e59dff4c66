//! A peer that comes back in a new session (it reconnected, or its
//! process restarted) has forgotten the pair key; the vnet that kept it
//! must not go on using it: streams and unserve asks to the peer work at
//! the first attempt after it is back.
use super::*;

fn config_via(route: SocketAddr, body: &str) -> vnet::VnetConfig {
    let body = relay_only(body);
    let text = format!("[route]\nip=127.0.0.1\nport={}\n{body}", route.port());
    vnet::VnetConfig::parse("t.ini", &text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_back_in_a_new_session_pairs_again() {
    let route = Route::start().await;
    // Two ways to the same route: moving home from one to the other
    // makes it reconnect. The second lets home through only once office
    // has seen it leave, so office's next stream must reach it back.
    let (first_way, _) = recording_relay(route.addr).await;
    let (second_way, _, open_second_way) = gated_relay(route.addr).await;
    let service = marked_echo().await;
    let home_body = home_body("echo", service, Some(SECRET), "allow_unserve=true\n");
    let home = vnet_via(first_way, &home_body);
    home.registered("echo").await;
    let (office, used) = using_office(route.addr, "echo", Some(SECRET), "").await;
    exchange(used).await;
    let home_id = home.handle.status().vnet_id.unwrap();
    assert_eq!(office.handle.end_to_end(home_id), "yes");

    home.handle.reload(config_via(second_way, &home_body)).await;
    office
        .wait("the use in standby", |s| s.open_use("echo").is_none())
        .await;
    open_second_way.cancel();
    home.wait("back in a new session", |s| {
        s.connects == 2 && s.vnet_id.is_some()
    })
    .await;
    home.registered("echo").await;
    let home_id = home.handle.status().vnet_id.unwrap();
    assert_eq!(office.open_use("echo").await, used);
    exchange(used).await;
    let granted = within(
        "the grant",
        office.handle.unserve(home_id, "127.0.0.1", service.port()),
    )
    .await;
    assert!(granted.is_ok(), "{granted:?}");
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_peer_restarted_is_reached_at_the_first_stream() {
    let route = Route::start().await;
    let service = marked_echo().await;
    let home_body = home_body("echo", service, Some(SECRET), "");
    let home = vnet_via(route.addr, &home_body);
    home.registered("echo").await;
    let (office, used) = using_office(route.addr, "echo", Some(SECRET), "").await;
    exchange(used).await;

    // A new process: a new key pair, no pair keys. Its serve went down
    // with it, so office forgot the old key.
    home.stop().await;
    office
        .wait("the use in standby", |s| s.open_use("echo").is_none())
        .await;
    let home = vnet_via(route.addr, &home_body);
    home.registered("echo").await;
    assert_eq!(office.open_use("echo").await, used);
    exchange(used).await;
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granting_peer_restarted_is_asked_again_with_a_new_key() {
    let route = Route::start().await;
    let service = marked_echo().await;
    let body = format!(
        "[vnet]\nname=home\nallow_unserve=true\n{}",
        secret_line(Some(SECRET))
    );
    let home = vnet_via(route.addr, &body);
    let home_id = home
        .wait("connected", |s| s.vnet_id.is_some())
        .await
        .vnet_id;
    let office = vnet_via(
        route.addr,
        &format!("[vnet]\nname=office\n{}", secret_line(Some(SECRET))),
    );
    office.wait("connected", |s| s.vnet_id.is_some()).await;
    let ask = || {
        office
            .handle
            .unserve(home_id.unwrap(), "127.0.0.1", service.port())
    };
    assert!(within("the first grant", ask()).await.is_ok());

    // A new process without serves: nothing tells office it left. The
    // ask proved with the lost key is refused, the key forgotten, and
    // the ask made again with a new one.
    home.stop().await;
    // Once the route has let the old process go, its id is free again.
    let mut tries = 0;
    while within("the vnets", office.handle.vnets())
        .await
        .unwrap()
        .len()
        > 1
    {
        tries += 1;
        assert!(tries < 2000, "the route still lists the stopped vnet");
        tokio::task::yield_now().await;
    }
    let home = vnet_via(route.addr, &body);
    let again = home
        .wait("connected", |s| s.vnet_id.is_some())
        .await
        .vnet_id;
    assert_eq!(again, home_id, "the same id, so office holds a key for it");
    let granted = within("the grant", ask()).await;
    assert!(granted.is_ok(), "{granted:?}");
    stop_all(route, [office, home]).await;
}
