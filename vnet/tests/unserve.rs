//! Unserve: one vnet asks another for a time-limited grant to a service
//! that the other has not registered, maps it onto a local port, and loses
//! the mapping when the grant is withdrawn (unused, or after the last
//! connection closed).
use proto::{ServeId, VnetId};
use std::net::{IpAddr, SocketAddr};
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use vnet::UseOpened;
use vnet::{Status, VnetError};

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Waits until the vnet is connected and returns its id at the route.
async fn connected(vnet: &Vnet) -> VnetId {
    vnet.wait("connected to the route", |s| s.vnet_id.is_some())
        .await
        .vnet_id
        .unwrap()
}

/// A route, a vnet "granter" with `granter_keys` added to its `[vnet]`
/// section, and a vnet "asker", both connected; also the granter's id.
async fn grant_pair(granter_keys: &str) -> (Route, Vnet, Vnet, VnetId) {
    let route = Route::start().await;
    let granter = Vnet::start(&route, &format!("[vnet]\nname=granter\n{granter_keys}"));
    let asker = Vnet::start(&route, "[vnet]\nname=asker\n");
    let granter_id = connected(&granter).await;
    connected(&asker).await;
    (route, granter, asker, granter_id)
}

/// The key under which the granting vnet registers a grant.
fn grant_key(ip: &str, port: u16) -> String {
    format!("unserve-{ip}-{port}")
}

/// The serves of `status` that are grants.
fn grants(status: &Status) -> Vec<String> {
    status
        .serves
        .iter()
        .filter(|(_, s)| s.grant.is_some())
        .map(|(key, _)| key.clone())
        .collect()
}

/// Writes `msg` and expects it echoed back.
async fn exchange(stream: &mut TcpStream, msg: &[u8]) {
    within("write", stream.write_all(msg)).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    within("echo", stream.read_exact(&mut back)).await.unwrap();
    assert_eq!(back, msg);
}

/// Expects a refusal from the route whose text contains every one of
/// `words`.
fn assert_refused_with(result: Result<ServeId, VnetError>, words: &[&str]) -> String {
    match result {
        Err(VnetError::Refused(refusal)) => {
            let reason = refusal.text;
            for word in words {
                assert!(reason.contains(word), "{reason:?} lacks {word:?}");
            }
            reason
        }
        other => panic!("expected a refusal naming {words:?}, got {other:?}"),
    }
}

/// An address of this machine that is not loopback, if it has one: the
/// source address the system would use towards TEST-NET-1. Connecting a
/// UDP socket sends nothing.
async fn machine_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").await.ok()?;
    socket.connect("192.0.2.1:9").await.ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Asks `granter` through `asker` for `ip:port`, expecting a dynamic id,
/// then maps it on 127.0.0.1 port 0 and returns (id, use key, address).
async fn grant_and_map(
    asker: &Vnet,
    granter: VnetId,
    ip: &str,
    port: u16,
) -> (ServeId, String, SocketAddr) {
    let id = within("unserve", asker.handle.unserve(granter, ip, port))
        .await
        .unwrap();
    assert!(
        (ServeId::DYNAMIC_MIN..=ServeId::DYNAMIC_MAX).contains(&id.get()),
        "a grant gets a dynamic id, not {id}"
    );
    let (key, opened) = within(
        "unserve_use",
        asker.handle.unserve_use(id, granter, LOOPBACK, 0),
    )
    .await
    .unwrap();
    assert_eq!(key, format!("unserve-{id}"));
    let UseOpened::Listening { local, .. } = opened else {
        panic!("a use on port 0 listens at once, got {opened:?}");
    };
    assert_eq!(local.ip(), LOOPBACK);
    assert_eq!(asker.open_use(&key).await, local);
    (id, key, local)
}

/// Waits until grant `key` (id `id`) has been withdrawn: gone from the
/// granter's status, the asker's mapping `use_key` gone, the route no
/// longer lists it, and the mapped address refuses.
async fn assert_withdrawn(
    granter: &Vnet,
    asker: &Vnet,
    key: &str,
    id: ServeId,
    use_key: &str,
    mapped: SocketAddr,
) {
    let status = granter
        .wait("grant withdrawn by the granter", |s| {
            !s.serves.contains_key(key)
        })
        .await;
    assert!(grants(&status).is_empty(), "{:?}", grants(&status));
    asker
        .wait("mapping removed at the asker", |s| {
            !s.uses.contains_key(use_key)
        })
        .await;
    // The mapping goes when the route's withdrawal reached the asker, so the
    // route has processed it already.
    let listed = within("list", asker.handle.serves()).await.unwrap();
    assert!(
        listed.iter().all(|e| e.serve_id != id),
        "route still lists the grant: {listed:?}"
    );
    assert_refused(mapped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_service_is_mapped_and_carries_bytes() {
    let service = tagged_echo("private").await;
    let (route, granter, asker, granter_id) = grant_pair("allow_unserve=true\n").await;
    let asker_id = connected(&asker).await;

    let (id, use_key, addr) = grant_and_map(&asker, granter_id, "127.0.0.1", service.port()).await;

    // The granter holds it as a registered grant made for the asker.
    let key = grant_key("127.0.0.1", service.port());
    let status = granter.handle.status();
    assert_eq!(status.serve_id(&key), Some(id));
    let grant = status.serves[&key]
        .grant
        .clone()
        .expect("marked as a grant");
    assert!(
        grant.contains(&asker_id.to_string()) && grant.contains("asker"),
        "{grant}"
    );
    assert_eq!(grants(&status), vec![key.clone()]);
    // The route lists it under the granter, with the service's address.
    let listed = within("list", asker.handle.serves()).await.unwrap();
    let entry = listed
        .iter()
        .find(|e| e.serve_id == id)
        .unwrap_or_else(|| panic!("route does not list {id}: {listed:?}"));
    assert_eq!(entry.vnet_id, granter_id);
    assert_eq!(
        (entry.spec.ip.as_str(), entry.spec.port),
        ("127.0.0.1", service.port())
    );
    // The asker's mapping is marked as a grant's.
    assert_eq!(asker.handle.status().uses[&use_key].grant, Some(granter_id));

    let (mut stream, tag) = connect_tagged(addr).await;
    assert_eq!(tag, "private");
    exchange(&mut stream, b"through a granted service").await;
    exchange(&mut stream, &pattern(7, 64 * 1024)).await;
    drop(stream);
    asker.idle().await;
    granter.idle().await;

    stop_all(route, [asker, granter]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_names_are_granted_without_unserve_remote() {
    let by_name = tagged_echo("by-name").await;
    let (route, granter, asker, granter_id) =
        grant_pair("allow_unserve=true\nunserve_num=2\n").await;

    // "localhost" counts as loopback.
    let (_, use_key, addr) = grant_and_map(&asker, granter_id, "localhost", by_name.port()).await;
    assert!(granter
        .handle
        .status()
        .serve_id(&grant_key("localhost", by_name.port()))
        .is_some());
    let (mut stream, tag) = connect_tagged(addr).await;
    assert_eq!(tag, "by-name");
    exchange(&mut stream, b"via localhost").await;
    drop(stream);
    asker.handle.use_delete(&use_key).await.unwrap();

    // So does ::1, where this machine has IPv6 loopback.
    if let Ok(probe) = TcpListener::bind("[::1]:0").await {
        drop(probe);
        let v6 = tagged_echo_on("::1".parse().unwrap(), "by-v6").await;
        let (_, _, addr) = grant_and_map(&asker, granter_id, "::1", v6.port()).await;
        let (mut stream, tag) = connect_tagged(addr).await;
        assert_eq!(tag, "by-v6");
        exchange(&mut stream, b"via ::1").await;
    } else {
        eprintln!("no IPv6 loopback here; ::1 not checked");
    }

    stop_all(route, [asker, granter]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_unless_allow_unserve() {
    let service = tagged_echo("not-allowed").await;
    // allow_unserve defaults to false.
    let (route, granter, asker, granter_id) = grant_pair("").await;

    let asked = within(
        "unserve",
        asker
            .handle
            .unserve(granter_id, "127.0.0.1", service.port()),
    )
    .await;
    assert_refused_with(asked, &["allow_unserve"]);
    assert!(grants(&granter.handle.status()).is_empty());
    let listed = within("list", asker.handle.serves()).await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");

    // Stated explicitly, the same.
    let explicit = Vnet::start(&route, "[vnet]\nname=explicit\nallow_unserve=false\n");
    let explicit_id = connected(&explicit).await;
    let asked = within(
        "unserve",
        asker
            .handle
            .unserve(explicit_id, "127.0.0.1", service.port()),
    )
    .await;
    assert_refused_with(asked, &["allow_unserve"]);

    stop_all(route, [explicit, asker, granter]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_address_is_refused_unless_unserve_remote() {
    let machine = machine_address().await;
    // A service really listening on the machine's own address, so only the
    // rule can refuse it. Without such an address, TEST-NET-1: the rule is
    // checked before the service is probed, so nothing is sent there.
    let (ip, port) = match machine {
        Some(ip) => (ip.to_string(), tagged_echo_on(ip, "remote").await.port()),
        None => ("192.0.2.1".to_string(), 9),
    };
    let (route, granter, asker, granter_id) = grant_pair("allow_unserve=true\n").await;

    let asked = within("unserve", asker.handle.unserve(granter_id, &ip, port)).await;
    assert_refused_with(asked, &["unserve_remote", &ip]);
    assert!(grants(&granter.handle.status()).is_empty());
    let listed = within("list", asker.handle.serves()).await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");

    // With unserve_remote=true the same address is granted.
    if machine.is_some() {
        let remote_ok = Vnet::start(
            &route,
            "[vnet]\nname=remote-ok\nallow_unserve=true\nunserve_remote=true\n",
        );
        let remote_ok_id = connected(&remote_ok).await;
        let (_, _, addr) = grant_and_map(&asker, remote_ok_id, &ip, port).await;
        let (mut stream, tag) = connect_tagged(addr).await;
        assert_eq!(tag, "remote");
        exchange(&mut stream, b"to a remote address").await;
        drop(stream);
        remote_ok.stop().await;
    } else {
        eprintln!("no non-loopback address here; unserve_remote=true not checked");
    }

    stop_all(route, [asker, granter]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_beyond_unserve_num_live_grants() {
    let first = tagged_echo("first").await;
    let second = tagged_echo("second").await;
    let (route, granter, asker, granter_id) =
        grant_pair("allow_unserve=true\nunserve_num=1\n").await;

    let granted = within(
        "first unserve",
        asker.handle.unserve(granter_id, "127.0.0.1", first.port()),
    )
    .await
    .unwrap();
    let asked = within(
        "second unserve",
        asker.handle.unserve(granter_id, "127.0.0.1", second.port()),
    )
    .await;
    assert_refused_with(asked, &["unserve_num"]);
    let status = granter.handle.status();
    assert_eq!(grants(&status), vec![grant_key("127.0.0.1", first.port())]);
    let listed = within("list", asker.handle.serves()).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| e.serve_id).collect::<Vec<_>>(),
        vec![granted]
    );

    // Asking again for the service already granted is no new grant: the
    // same id, still one grant.
    let again = within(
        "unserve again",
        asker.handle.unserve(granter_id, "127.0.0.1", first.port()),
    )
    .await
    .unwrap();
    assert_eq!(again, granted);
    assert_eq!(grants(&granter.handle.status()).len(), 1);

    stop_all(route, [asker, granter]).await;
}

/// The count of live grants and the reservation of a new one are one step:
/// asks arriving together cannot all pass the count while one probes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_asks_cannot_exceed_unserve_num() {
    let mut services = Vec::new();
    for tag in ["first", "second", "third", "fourth"] {
        services.push(tagged_echo(tag).await);
    }
    let (route, granter, asker, granter_id) =
        grant_pair("allow_unserve=true\nunserve_num=1\n").await;

    // The asks are sent at once; "localhost" makes the granter resolve the
    // name before probing, which widens the window between its count of
    // live grants and its registering the grant.
    let asks = services
        .iter()
        .map(|s| asker.handle.unserve(granter_id, "localhost", s.port()));
    let answers = within("asks at once", futures::future::join_all(asks)).await;
    let granted = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(granted, 1, "unserve_num=1 but got {answers:?}");
    for refused in answers.into_iter().filter(Result::is_err) {
        assert_refused_with(refused, &["unserve_num"]);
    }
    assert_eq!(grants(&granter.handle.status()).len(), 1);

    stop_all(route, [asker, granter]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_grant_is_withdrawn_after_unserve_expire() {
    let service = tagged_echo("short-lived").await;
    let (route, granter, asker, granter_id) =
        grant_pair("allow_unserve=true\nunserve_expire=1\n").await;

    let (id, use_key, addr) = grant_and_map(&asker, granter_id, "127.0.0.1", service.port()).await;
    let key = grant_key("127.0.0.1", service.port());
    assert_withdrawn(&granter, &asker, &key, id, &use_key, addr).await;

    // The service itself is untouched, and may be granted anew.
    let (_, use_key, addr) = grant_and_map(&asker, granter_id, "127.0.0.1", service.port()).await;
    assert_eq!(connect_tagged(addr).await.1, "short-lived");
    assert!(asker.handle.status().uses.contains_key(&use_key));

    stop_all(route, [asker, granter]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_grant_is_withdrawn_unserve_linger_after_its_last_connection() {
    let service = tagged_echo("lingering").await;
    // Unused it would live ten minutes, beyond any wait here: withdrawal
    // within the test can only come from the linger.
    let (route, granter, asker, granter_id) =
        grant_pair("allow_unserve=true\nunserve_expire=600\nunserve_linger=1\n").await;

    let (id, use_key, addr) = grant_and_map(&asker, granter_id, "127.0.0.1", service.port()).await;
    let key = grant_key("127.0.0.1", service.port());
    let (mut stream, tag) = connect_tagged(addr).await;
    assert_eq!(tag, "lingering");
    exchange(&mut stream, b"keeps the grant in use").await;

    // While the connection is open the grant stands, counted as in use.
    let status = granter.handle.status();
    assert_eq!(status.serve_id(&key), Some(id));
    assert_eq!(status.serves[&key].traffic.connections(), 1);
    assert_eq!(asker.handle.status().open_use(&use_key), Some(addr));
    exchange(&mut stream, b"still flowing").await;

    drop(stream);
    assert_withdrawn(&granter, &asker, &key, id, &use_key, addr).await;
    granter.idle().await;
    asker.idle().await;

    stop_all(route, [asker, granter]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_too_short_to_be_seen_still_counts_as_use() {
    let service = tagged_echo("brief").await;
    // Counted as unused, the grant would live ten minutes; used, one second.
    let (route, granter, asker, granter_id) =
        grant_pair("allow_unserve=true\nunserve_expire=600\nunserve_linger=1\n").await;
    let (id, use_key, addr) = grant_and_map(&asker, granter_id, "127.0.0.1", service.port()).await;
    let key = grant_key("127.0.0.1", service.port());
    // Open and close at once: the expiry task may never see it open.
    let (stream, _) = connect_tagged(addr).await;
    drop(stream);
    assert_withdrawn(&granter, &asker, &key, id, &use_key, addr).await;
    stop_all(route, [asker, granter]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_an_unknown_vnet_or_a_dead_port_is_an_error() {
    let service = tagged_echo("unasked").await;
    let (route, granter, asker, granter_id) = grant_pair("allow_unserve=true\n").await;

    let unknown = VnetId(granter_id.0 + 40);
    let asked = within(
        "unserve to nobody",
        asker.handle.unserve(unknown, "127.0.0.1", service.port()),
    )
    .await;
    assert_refused_with(asked, &["no vnet", &unknown.to_string()]);

    // A vnet of another group is unknown too: ids are per group, so take
    // one that only the other group has.
    let mut others = Vec::new();
    for name in ["other-1", "other-2", "other-3"] {
        let other = Vnet::start(
            &route,
            &format!("[vnet]\nname={name}\ngroup=other\nallow_unserve=true\n"),
        );
        connected(&other).await;
        others.push(other);
    }
    let ours = within("vnets", asker.handle.vnets()).await.unwrap();
    let theirs = within("vnets", others[0].handle.vnets()).await.unwrap();
    let only_theirs = theirs
        .iter()
        .map(|v| v.vnet_id)
        .find(|id| ours.iter().all(|v| v.vnet_id != *id))
        .expect("three vnets in the other group, two in ours");
    let asked = within(
        "unserve across groups",
        asker
            .handle
            .unserve(only_theirs, "127.0.0.1", service.port()),
    )
    .await;
    assert_refused_with(asked, &["no vnet", &only_theirs.to_string()]);

    // Nothing listening at the address: refused.
    let dead = dead_port().await;
    let asked = within(
        "unserve of a dead port",
        asker.handle.unserve(granter_id, "127.0.0.1", dead),
    )
    .await;
    assert_refused_with(asked, &["nothing listens", &dead.to_string()]);
    assert!(grants(&granter.handle.status()).is_empty());

    for vnet in others.into_iter().chain([asker, granter]) {
        vnet.stop().await;
    }
    route.stop().await;
}

/// The expiry of a grant deleted by hand must not withdraw a later grant of
/// the same service (same key), let alone one in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_deleted_by_hand_does_not_cut_short_a_new_grant() {
    let service = tagged_echo("regranted").await;
    let (route, granter, asker, granter_id) =
        grant_pair("allow_unserve=true\nunserve_expire=1\nunserve_linger=1\n").await;
    let key = grant_key("127.0.0.1", service.port());

    // A first grant, deleted by hand at the granter (`serve delete`).
    within(
        "first unserve",
        asker
            .handle
            .unserve(granter_id, "127.0.0.1", service.port()),
    )
    .await
    .unwrap();
    granter.handle.serve_delete(&key).await.unwrap();
    // A second grant of the same service, mapped and kept in use.
    let (id, use_key, addr) = grant_and_map(&asker, granter_id, "127.0.0.1", service.port()).await;
    let (mut stream, tag) = connect_tagged(addr).await;
    assert_eq!(tag, "regranted");
    exchange(&mut stream, b"in use").await;

    // While its connection is open the grant must stand. Watch it for
    // longer than the first grant's unserve_expire: this window only
    // decides when to stop watching, so a slow machine can at worst let a
    // regression pass unseen, never fail a correct vnet.
    let watch = granter.handle.wait_for(|s| !s.serves.contains_key(&key));
    tokio::select! {
        _ = watch => panic!("grant withdrawn while a connection to it was open"),
        () = tokio::time::sleep(std::time::Duration::from_secs(3)) => {}
    }
    exchange(&mut stream, b"still in use").await;
    drop(stream);
    assert_withdrawn(&granter, &asker, &key, id, &use_key, addr).await;

    stop_all(route, [asker, granter]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mapping_for_a_grant_that_is_gone_or_an_id_another_vnet_holds() {
    let service = tagged_echo("private").await;
    let other_service = tagged_echo("other").await;
    let (route, granter, asker, granter_id) = grant_pair("allow_unserve=true\n").await;

    // A grant withdrawn before its mapping is made: nothing is mapped.
    let id = within(
        "unserve",
        asker
            .handle
            .unserve(granter_id, "127.0.0.1", service.port()),
    )
    .await
    .unwrap();
    let key = grant_key("127.0.0.1", service.port());
    within("withdraw", granter.handle.serve_delete(&key))
        .await
        .unwrap();
    within(
        "the grant's serve gone",
        asker.handle.wait_for_serves(|a| !a.contains_key(&id)),
    )
    .await;
    // Another vnet now registers a serve; the route gives it the lowest
    // free dynamic id, the one the grant had.
    let other = Vnet::start(
        &route,
        &format!(
            "[vnet]\nname=other\n[serve.other]\nip=127.0.0.1\nport={}\n",
            other_service.port()
        ),
    );
    let other_id = other.registered("other").await;
    assert_eq!(other_id, id.get(), "the dynamic id was reused");
    let other_vnet = connected(&other).await;
    within(
        "the other vnet's serve seen",
        asker
            .handle
            .wait_for_serves(|a| a.get(&id).is_some_and(|e| e.vnet_id == other_vnet)),
    )
    .await;
    let mapped = within(
        "unserve_use",
        asker.handle.unserve_use(id, granter_id, LOOPBACK, 0),
    )
    .await;
    match mapped {
        Err(VnetError::Invalid(reason)) => assert!(reason.contains("no longer serves"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        asker.handle.status().uses.is_empty(),
        "a mapping was left behind"
    );
    stop_all(route, [asker, granter, other]).await;
}

/// Waits until the mapping `key` carries the tagged service again.
async fn mapped_again(asker: &Vnet, key: &str, addr: SocketAddr, tag: &str) {
    asker.open_use(key).await;
    assert_eq!(connect_tagged(addr).await.1, tag);
}

/// Reloads `vnet` with `body`, which must make it reconnect; its count of
/// connects before.
async fn reload_reconnecting(vnet: &Vnet, body: &str) -> u64 {
    let before = vnet.handle.status().connects;
    let config = vnet::VnetConfig::parse("reload.ini", body).unwrap();
    let summary = within("reload", vnet.handle.reload(config)).await;
    assert!(summary.reconnected);
    before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grants_mapping_survives_reconnects_of_either_vnet_and_of_the_route() {
    let route = Route::start().await;
    let port = route.addr.port();
    // Through the route only: with a direct link up, the mapping would
    // (rightly) stay open while the route is away.
    let granter = Vnet::start(
        &route,
        "[vnet]\nname=granter\nallow_unserve=true\ndirect=off\n",
    );
    let asker = Vnet::start(&route, "[vnet]\nname=asker\ndirect=off\n");
    let granter_id = connected(&granter).await;
    connected(&asker).await;
    let service = tagged_echo_on(LOOPBACK, "granted").await;
    let (_, key, mapped) = grant_and_map(&asker, granter_id, "127.0.0.1", service.port()).await;
    assert_eq!(connect_tagged(mapped).await.1, "granted");

    // The route restarts: both vnets reconnect (possibly under new ids);
    // the granter registers its grant again, and the mapping follows.
    route.stop().await;
    asker
        .wait("the mapping waits in standby", |s| !s.uses[&key].open)
        .await;
    let route = Route::start_on(port).await;
    mapped_again(&asker, &key, mapped, "granted").await;

    // The asker reconnects (a reload that renames it).
    let body =
        format!("[route]\nip=127.0.0.1\nport={port}\n[vnet]\nname=asker-renamed\ndirect=off\n");
    let before = reload_reconnecting(&asker, &body).await;
    asker
        .wait("reconnected", |s| {
            s.connects > before && s.vnet_id.is_some()
        })
        .await;
    mapped_again(&asker, &key, mapped, "granted").await;

    // The granter reconnects (a reload that changes its heartbeat).
    let body = format!(
        "[route]\nip=127.0.0.1\nport={port}\nheartbeat=29\n[vnet]\nname=granter\nallow_unserve=true\n"
    );
    let before = reload_reconnecting(&granter, &body).await;
    let grant = grant_key("127.0.0.1", service.port());
    granter
        .wait("the grant registered again", |s| {
            s.connects > before && s.serve_id(&grant).is_some()
        })
        .await;
    mapped_again(&asker, &key, mapped, "granted").await;
    assert!(asker.handle.status().uses.contains_key(&key));

    stop_all(route, [asker, granter]).await;
}

/// The granting vnet checks the service without connecting to it: a
/// service that takes one client is still there for the first visitor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_does_not_connect_to_the_service() {
    let (route, granter, asker, granter_id) = grant_pair("allow_unserve=true\n").await;
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    service.set_nonblocking(true).unwrap();
    let port = service.local_addr().unwrap().port();
    let granted = within(
        "unserve of a listening service",
        asker.handle.unserve(granter_id, "127.0.0.1", port),
    )
    .await;
    assert!(granted.is_ok(), "{granted:?}");
    let accepted = service.accept().map(|(_, peer)| peer);
    assert!(
        accepted
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the granting vnet connected to the service: {accepted:?}"
    );
    asker.stop().await;
    granter.stop().await;
    route.stop().await;
}
