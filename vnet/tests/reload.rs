//! Changing a running vnet: a reloaded config applied as a difference, and
//! serves and uses added, opened, closed and deleted one by one, each seen
//! through real connections and the route's list.
use proto::ServeId;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vnet::config::{ServeConfig, UseConfig};
use vnet::{ReloadSummary, UseOpened};
use vnet::{ServeState, VnetConfig, VnetError};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A full config for `route` with `body` after its [route] section.
fn config(route: &Route, body: &str) -> VnetConfig {
    let text = format!("[route]\nip=127.0.0.1\nport={}\n{body}", route.addr.port());
    VnetConfig::parse("reload.ini", &text).unwrap()
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// Writes `msg` and expects it echoed back.
async fn exchange(stream: &mut TcpStream, msg: &[u8]) {
    within("write", stream.write_all(msg)).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    within("echo", stream.read_exact(&mut back)).await.unwrap();
    assert_eq!(back, msg);
}

/// Expects `stream` to be closed by the other side.
async fn assert_cut(stream: &mut TcpStream) {
    let mut buf = [0u8; 16];
    let read = within("connection is cut", stream.read(&mut buf)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "still open: {read:?}");
}

async fn connected(vnet: &Vnet) {
    vnet.wait("connected to the route", |s| s.vnet_id.is_some())
        .await;
}

/// The ids the route lists, as `vnet` asks it.
async fn listed(vnet: &Vnet) -> Vec<u16> {
    within("list serves", vnet.handle.serves())
        .await
        .unwrap()
        .iter()
        .map(|e| e.serve_id.get())
        .collect()
}

fn invalid(result: Result<impl std::fmt::Debug, VnetError>, words: &[&str]) {
    match result {
        Err(VnetError::Invalid(reason)) => {
            for word in words {
                assert!(reason.contains(word), "{reason:?} lacks {word:?}");
            }
        }
        other => panic!("expected an error naming {words:?}, got {other:?}"),
    }
}

fn serve_config(key: &str, id: u16, addr: SocketAddr, active: bool) -> ServeConfig {
    ServeConfig {
        key: key.into(),
        name: key.into(),
        serve_id: ServeId::new(id),
        ip: "127.0.0.1".into(),
        port: addr.port(),
        info: String::new(),
        active,
    }
}

fn use_config(key: &str, id: u16, port: u16, active: bool) -> UseConfig {
    UseConfig {
        key: key.into(),
        serve_id: ServeId::new(id),
        ip: LOOPBACK,
        port: Some(port),
        active,
        direct: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_only_the_difference() {
    let route = Route::start().await;
    let one = tagged_echo("one").await;
    let two = tagged_echo("two").await;
    let x_old = tagged_echo("x-old").await;
    let x_new = tagged_echo("x-new").await;
    let y = tagged_echo("y").await;
    let z = tagged_echo("z").await;
    // home serves 1 and 2 and uses office's serves; office is reloaded.
    let home = Vnet::start(
        &route,
        &format!(
            "[vnet]\nname=home\n{}{}{}{}",
            serve_section("one", 1, one),
            serve_section("two", 2, two),
            use_section("y", 601),
            use_section("z", 602),
        ),
    );
    let office_body = |x: SocketAddr, rest: &str| {
        format!(
            "[vnet]\nname=office\n{}{}{rest}",
            serve_section("x", 600, x),
            serve_section("z", 602, z),
        )
    };
    let before = office_body(
        x_old,
        &format!("{}{}", use_section("a", 1), use_section("b", 2)),
    );
    let office = Vnet::start(&route, &before);
    home.registered("one").await;
    home.registered("two").await;
    assert_eq!(office.registered("x").await, 600);
    assert_eq!(office.registered("z").await, 602);
    let a = office.open_use("a").await;
    let b = office.open_use("b").await;
    assert_eq!(connect_tagged(b).await.1, "two");
    let (mut through_a, tag) = connect_tagged(a).await;
    assert_eq!(tag, "one");
    exchange(&mut through_a, b"before the reload").await;
    let (mut through_z, tag) = connect_tagged(home.open_use("z").await).await;
    assert_eq!(tag, "z");
    exchange(&mut through_z, b"z before").await;
    let old = office.handle.status();

    // a unchanged, b removed, c added; x moves to another port; y added;
    // z unchanged.
    let after = office_body(
        x_new,
        &format!(
            "{}{}[use.c]\nserveid=2\nip=127.0.0.2\nport=0\n",
            serve_section("y", 601, y),
            use_section("a", 1),
        ),
    );
    let summary = within("reload", office.handle.reload(config(&route, &after))).await;
    assert_eq!(
        summary,
        ReloadSummary {
            added: keys(&["serve.y", "use.c"]),
            removed: keys(&["use.b"]),
            changed: keys(&["serve.x"]),
            kept: Vec::new(),
            replaced: Vec::new(),
            reconnected: false,
        }
    );

    // Untouched: use a and serve z, the same objects, the same port and id,
    // and their connections still flow.
    let now = office.handle.status();
    assert_eq!(now.open_use("a"), Some(a));
    assert!(Arc::ptr_eq(&old.uses["a"].traffic, &now.uses["a"].traffic));
    assert_eq!(now.serve_id("z").map(ServeId::get), Some(602));
    assert!(Arc::ptr_eq(
        &old.serves["z"].traffic,
        &now.serves["z"].traffic
    ));
    exchange(&mut through_a, b"after the reload, same socket").await;
    exchange(&mut through_z, b"z after, same socket").await;
    assert_eq!(now.uses["a"].traffic.connections(), 1);

    // Removed: b is gone and its port refuses.
    assert!(!now.uses.contains_key("b"), "{:?}", now.uses.keys());
    assert_refused(b).await;

    // Added: c listens and carries.
    let c = office.open_use("c").await;
    assert_eq!(c.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    assert_eq!(connect_tagged(c).await.1, "two");
    // ... and y is registered, and home's use of it opens.
    assert_eq!(office.registered("y").await, 601);
    assert_eq!(connect_tagged(home.open_use("y").await).await.1, "y");

    // Changed: x is registered again under its id, at the new port.
    assert_eq!(office.registered("x").await, 600);
    let x = &office.handle.status().serves["x"];
    assert_eq!(x.config.port, x_new.port());
    let entries = within("list", office.handle.serves()).await.unwrap();
    let listed_x = entries.iter().find(|e| e.serve_id.get() == 600).unwrap();
    assert_eq!(listed_x.spec.port, x_new.port());
    // A vnet joining now sees the new x.
    let newcomer = Vnet::start(&route, &use_section("x", 600));
    assert_eq!(
        connect_tagged(newcomer.open_use("x").await).await.1,
        "x-new"
    );

    // Reloading the same config again changes nothing.
    let again = within("reload again", office.handle.reload(config(&route, &after))).await;
    assert_eq!(again, ReloadSummary::default());
    exchange(&mut through_a, b"after a second reload").await;
    assert_eq!(office.handle.status().open_use("c"), Some(c));

    drop(through_a);
    drop(through_z);
    for vnet in [newcomer, office, home] {
        vnet.stop().await;
    }
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_route_reconnects_and_serves_move_with_it() {
    let first = Route::start().await;
    let second = Route::start().await;
    let kept = tagged_echo("kept").await;
    let body = format!("[vnet]\nname=mover\n{}", serve_section("kept", 610, kept));
    let mover = Vnet::start(&first, &body);
    assert_eq!(mover.registered("kept").await, 610);
    let watcher = Vnet::start(&first, &use_section("kept", 610));
    watcher.open_use("kept").await;

    let summary = within("reload", mover.handle.reload(config(&second, &body))).await;
    assert_eq!(
        summary,
        ReloadSummary {
            reconnected: true,
            ..ReloadSummary::default()
        }
    );
    assert_eq!(mover.handle.settings().1.addr(), second.addr.to_string());

    // The serve left the first route and is registered at the second.
    watcher
        .wait("use in standby", |s| !s.uses["kept"].open)
        .await;
    assert!(listed(&watcher).await.is_empty());
    let at_second = Vnet::start(&second, &use_section("kept", 610));
    let addr = at_second.open_use("kept").await;
    assert_eq!(connect_tagged(addr).await.1, "kept");
    assert_eq!(mover.registered("kept").await, 610);
    assert_eq!(listed(&at_second).await, vec![610]);

    for vnet in [at_second, watcher, mover] {
        vnet.stop().await;
    }
    first.stop().await;
    second.stop().await;
}

/// A reload that reconnects registers its new serves on the new connection
/// once: not refused by their own earlier registration (static id), not
/// listed twice (dynamic id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_added_by_a_reconnecting_reload_is_registered_once() {
    let first = Route::start().await;
    let second = Route::start().await;
    let kept = tagged_echo("kept").await;
    let added = tagged_echo("added").await;
    let kept_section = serve_section("kept", 610, kept);
    let mover = Vnet::start(&first, &format!("[vnet]\nname=mover\n{kept_section}"));
    assert_eq!(mover.registered("kept").await, 610);

    let body = format!(
        "[vnet]\nname=mover\n{kept_section}{}[serve.dynamic]\nport={}\n",
        serve_section("added", 611, added),
        added.port()
    );
    let summary = within("reload", mover.handle.reload(config(&second, &body))).await;
    assert_eq!(
        summary,
        ReloadSummary {
            added: keys(&["serve.added", "serve.dynamic"]),
            reconnected: true,
            ..ReloadSummary::default()
        }
    );
    let at_second = Vnet::start(
        &second,
        &format!("{}{}", use_section("kept", 610), use_section("added", 611)),
    );
    assert_eq!(
        connect_tagged(at_second.open_use("added").await).await.1,
        "added"
    );
    assert_eq!(
        connect_tagged(at_second.open_use("kept").await).await.1,
        "kept"
    );
    mover
        .wait("all registered", |s| {
            ["kept", "added", "dynamic"]
                .iter()
                .all(|k| s.serve_id(k).is_some())
        })
        .await;
    // Every answer to a registration sent so far has arrived once a ping
    // sent after them is answered.
    within("ping", mover.handle.ping()).await.unwrap();
    let status = mover.handle.status();
    assert_eq!(
        status.serves["added"].state,
        ServeState::Registered(ServeId::new(611).unwrap())
    );
    let dynamic = status.serve_id("dynamic").expect("dynamic registered");
    let mut want = vec![dynamic.get(), 610, 611];
    want.sort_unstable();
    assert_eq!(listed(&at_second).await, want, "each serve listed once");

    for vnet in [at_second, mover] {
        vnet.stop().await;
    }
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_are_added_opened_closed_and_deleted() {
    let route = Route::start().await;
    let echo = tagged_echo("managed").await;
    let other = tagged_echo("other").await;
    let home = Vnet::start(&route, "[vnet]\nname=home\n");
    let office = Vnet::start(&route, &use_section("m", 700));
    connected(&home).await;
    connected(&office).await;

    // New but inactive: kept, not registered.
    let config = serve_config("m", 700, echo, false);
    let added = within("serve_add", home.handle.serve_add(config.clone())).await;
    assert_eq!(added, Ok(None));
    assert_eq!(home.handle.status().serves["m"].state, ServeState::Inactive);
    assert!(listed(&home).await.is_empty());

    // A second serve of the same name is refused and changes nothing.
    let duplicate = serve_config("m", 701, other, true);
    invalid(
        within("duplicate", home.handle.serve_add(duplicate)).await,
        &["\"m\"", "exists"],
    );
    let status = home.handle.status();
    assert_eq!(status.serves["m"].config, config);
    assert_eq!(status.serves["m"].state, ServeState::Inactive);
    assert_eq!(status.serves.len(), 1);
    assert!(listed(&home).await.is_empty());

    // Opened: registered, listed, reachable.
    let id = within("serve_open", home.handle.serve_open("m")).await;
    assert_eq!(id.map(ServeId::get), Ok(700));
    assert_eq!(listed(&home).await, vec![700]);
    let addr = office.open_use("m").await;
    let (mut live, tag) = connect_tagged(addr).await;
    assert_eq!(tag, "managed");
    exchange(&mut live, b"while open").await;
    // Opening it again is a no-op returning the id.
    let again = within("serve_open again", home.handle.serve_open("m")).await;
    assert_eq!(again.map(ServeId::get), Ok(700));

    // Closed: withdrawn from the route, its connection cut, kept inactive.
    home.handle.serve_close("m").await.unwrap();
    assert_eq!(home.handle.status().serves["m"].state, ServeState::Inactive);
    assert!(!home.handle.status().serves["m"].config.active);
    assert!(listed(&home).await.is_empty());
    assert_cut(&mut live).await;
    office.wait("use in standby", |s| !s.uses["m"].open).await;
    assert_refused(addr).await;
    home.idle().await;

    // Opened again: same id, reachable again.
    let id = within("serve_open", home.handle.serve_open("m")).await;
    assert_eq!(id.map(ServeId::get), Ok(700));
    assert_eq!(office.open_use("m").await, addr);
    let (mut live, _) = connect_tagged(addr).await;
    exchange(&mut live, b"open again").await;

    // Added active (`serve run`): registered at once.
    let run = serve_config("o", 701, other, true);
    let id = within("serve_add active", home.handle.serve_add(run)).await;
    assert_eq!(id.map(|i| i.map(ServeId::get)), Ok(Some(701)));
    assert_eq!(listed(&home).await, vec![700, 701]);

    // Deleted: forgotten, withdrawn, connection cut; the other serve stays.
    home.handle.serve_delete("m").await.unwrap();
    assert!(!home.handle.status().serves.contains_key("m"));
    assert_eq!(listed(&home).await, vec![701]);
    assert_cut(&mut live).await;
    assert_eq!(
        home.handle.status().serve_id("o").map(ServeId::get),
        Some(701)
    );
    invalid(home.handle.serve_close("m").await, &["no serve", "\"m\""]);
    invalid(home.handle.serve_delete("m").await, &["no serve", "\"m\""]);
    invalid(
        within("serve_open unknown", home.handle.serve_open("m")).await,
        &["no serve", "\"m\""],
    );

    office.stop().await;
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_are_added_opened_closed_and_deleted() {
    let route = Route::start().await;
    let echo = tagged_echo("used").await;
    let home = Vnet::start(&route, &serve_section("web", 700, echo));
    let office = Vnet::start(&route, "[vnet]\nname=office\n");
    home.registered("web").await;
    connected(&office).await;

    // New but off: not listening.
    let config = use_config("u", 700, 0, false);
    let added = within("use_add", office.handle.use_add(config.clone())).await;
    assert_eq!(added, Ok(None));
    let status = office.handle.status();
    assert_eq!(status.uses["u"].state(), "off");
    assert_eq!(status.uses["u"].local, None);

    // Opened: listening and carrying.
    let opened = within("use_open", office.handle.use_open("u"))
        .await
        .unwrap();
    let UseOpened::Listening { local, .. } = opened else {
        panic!("a use with a port listens at once, got {opened:?}");
    };
    let addr = office.open_use("u").await;
    assert_eq!(addr, local);
    let (mut live, tag) = connect_tagged(addr).await;
    assert_eq!(tag, "used");
    exchange(&mut live, b"while open").await;

    // A second use of the same name is refused and changes nothing.
    invalid(
        within(
            "duplicate",
            office.handle.use_add(use_config("u", 700, 0, true)),
        )
        .await,
        &["\"u\"", "exists"],
    );
    let status = office.handle.status();
    assert_eq!(status.uses.len(), 1);
    assert!(status.uses["u"].config.active);
    assert_eq!(status.open_use("u"), Some(addr));
    exchange(&mut live, b"after the duplicate").await;

    // Added active (`use run`): listening at once, next to the first.
    let run = within(
        "use_add active",
        office.handle.use_add(use_config("v", 700, 0, true)),
    )
    .await
    .unwrap();
    let Some(UseOpened::Listening { local: v, .. }) = run else {
        panic!("{run:?}");
    };
    assert_eq!(office.open_use("v").await, v);
    assert_eq!(connect_tagged(v).await.1, "used");

    // Closed: the port refuses, the open connection is cut, kept as off.
    within("use_close", office.handle.use_close("u"))
        .await
        .unwrap();
    let status = office.handle.status();
    assert_eq!(status.uses["u"].state(), "off");
    assert_eq!(status.uses["u"].local, None);
    assert_cut(&mut live).await;
    assert_refused(addr).await;
    assert_eq!(status.open_use("v"), Some(v));

    // Opened again: listening and carrying again.
    within("use_open again", office.handle.use_open("u"))
        .await
        .unwrap();
    let addr = office.open_use("u").await;
    let (mut live, _) = connect_tagged(addr).await;
    exchange(&mut live, b"open again").await;

    // Deleted: forgotten, the port refuses, the connection is cut.
    within("use_delete", office.handle.use_delete("u"))
        .await
        .unwrap();
    assert!(!office.handle.status().uses.contains_key("u"));
    assert_cut(&mut live).await;
    assert_refused(addr).await;
    assert_eq!(office.handle.status().open_use("v"), Some(v));
    invalid(
        within("use_open unknown", office.handle.use_open("u")).await,
        &["no use", "\"u\""],
    );
    invalid(
        within("use_close unknown", office.handle.use_close("u")).await,
        &["no use", "\"u\""],
    );
    invalid(
        within("use_delete unknown", office.handle.use_delete("u")).await,
        &["no use", "\"u\""],
    );

    office.stop().await;
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_on_a_taken_port_fails_and_changes_nothing_else() {
    let route = Route::start().await;
    let echo = tagged_echo("busy").await;
    let home = Vnet::start(&route, &serve_section("web", 700, echo));
    let office = Vnet::start(
        &route,
        &format!("[vnet]\nname=office\n{}", use_section("web", 700)),
    );
    home.registered("web").await;
    let web = office.open_use("web").await;
    let (mut live, _) = connect_tagged(web).await;

    // Something else holds this port.
    let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let taken = holder.local_addr().unwrap().port();

    // Opening a use there fails, naming the address; it is left off.
    let added = within(
        "use_add off",
        office.handle.use_add(use_config("t", 700, taken, false)),
    )
    .await;
    assert_eq!(added, Ok(None));
    let opened = within("use_open on a taken port", office.handle.use_open("t")).await;
    invalid(opened, &["cannot listen", &taken.to_string()]);
    // Adding one active there fails the same way.
    let added = within(
        "use_add on a taken port",
        office.handle.use_add(use_config("t2", 700, taken, true)),
    )
    .await;
    invalid(added, &["cannot listen", &taken.to_string()]);

    let status = office.handle.status();
    for key in ["t", "t2"] {
        assert_eq!(status.uses[key].state(), "off", "{key}");
        assert_eq!(status.uses[key].local, None, "{key}");
    }
    // Nothing else changed: the other use, its connection, the serve, the
    // holder of the port.
    assert_eq!(status.open_use("web"), Some(web));
    assert_eq!(status.uses.len(), 3);
    exchange(&mut live, b"unaffected").await;
    assert_eq!(connect_tagged(web).await.1, "busy");
    assert_eq!(home.registered("web").await, 700);
    let _client = within(
        "connect to holder",
        TcpStream::connect(("127.0.0.1", taken)),
    )
    .await
    .unwrap();
    within("holder accepts", holder.accept()).await.unwrap();

    // Once the port is free, the use opens there.
    drop(holder);
    let opened = within("use_open freed", office.handle.use_open("t"))
        .await
        .unwrap();
    assert!(
        matches!(opened, UseOpened::Listening { local, .. } if local.port() == taken),
        "{opened:?}"
    );
    assert_eq!(connect_tagged(office.open_use("t").await).await.1, "busy");

    drop(live);
    office.stop().await;
    home.stop().await;
    route.stop().await;
}

/// A use whose listener could not be bound at start can be opened later:
/// its ended task does not stand in the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_that_failed_at_start_opens_once_its_port_is_free() {
    let route = Route::start().await;
    let echo = tagged_echo("late-port").await;
    let home = Vnet::start(&route, &serve_section("web", 700, echo));
    let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let taken = holder.local_addr().unwrap().port();
    let office = Vnet::start(&route, &format!("[use.web]\nserveid=700\nport={taken}\n"));
    let failed = office
        .wait("use failed", |s| s.uses["web"].error.is_some())
        .await;
    assert_eq!(failed.uses["web"].state(), "failed");
    home.registered("web").await;

    drop(holder);
    let opened = within("use_open", office.handle.use_open("web")).await;
    assert!(
        matches!(opened, Ok(UseOpened::Listening { local, .. }) if local.port() == taken),
        "{opened:?}"
    );
    assert_eq!(
        connect_tagged(office.open_use("web").await).await.1,
        "late-port"
    );

    office.stop().await;
    home.stop().await;
    route.stop().await;
}

/// A serve added while the first connection is still being made is
/// registered by the connect-time sweep; the queued request must join that
/// outcome, not register a second time (a static id would then be refused
/// as held by the vnet itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_added_while_connecting_is_registered_once() {
    let route = Route::start().await;
    let echo = tagged_echo("early").await;
    for round in 0..20u16 {
        let vnet = Vnet::start(&route, &format!("[vnet]\nname=early-{round}\n"));
        let mut config = vnet::config::ServeConfig::from_pairs(
            "test",
            "early",
            &[
                ("port".into(), echo.port().to_string()),
                ("serveid".into(), (740 + round).to_string()),
            ],
        )
        .unwrap();
        config.active = true;
        match within("serve_add", vnet.handle.serve_add(config)).await {
            Ok(id) => assert_eq!(id.map(|i| i.get()), Some(740 + round), "round {round}"),
            Err(vnet::VnetError::NotConnected) => {}
            Err(err) => panic!("round {round}: {err}"),
        }
        let status = vnet
            .wait("registered", |s| {
                s.serve_id("early").is_some()
                    || matches!(s.serves["early"].state, vnet::ServeState::Refused(_))
            })
            .await;
        assert_eq!(
            status.serve_id("early").map(|i| i.get()),
            Some(740 + round),
            "round {round}: {:?}",
            status.serves["early"].state
        );
        let listed = within("list", vnet.handle.serves()).await.unwrap();
        assert_eq!(
            listed
                .iter()
                .filter(|e| e.serve_id.get() == 740 + round)
                .count(),
            1,
            "round {round}"
        );
        vnet.stop().await;
    }
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_what_the_shell_made_unless_the_file_now_defines_it() {
    let route = Route::start().await;
    let (file_svc, web_svc) = (tagged_echo("file").await, tagged_echo("web").await);
    let body = serve_section("file", 610, file_svc);
    let office = Vnet::start(&route, &body);
    office.registered("file").await;
    let handle = &office.handle;

    // Made in the shell: a serve and two uses; and a file serve closed.
    within(
        "serve run web",
        handle.serve_add(serve_config("web", 611, web_svc, true)),
    )
    .await
    .unwrap();
    within(
        "use run ghost",
        handle.use_add(use_config("ghost", 999, 0, true)),
    )
    .await
    .unwrap();
    within(
        "use run dbuse",
        handle.use_add(use_config("dbuse", 611, 0, true)),
    )
    .await
    .unwrap();
    within("serve close file", handle.serve_close("file"))
        .await
        .unwrap();

    // The same file again: nothing to apply, the shell's work stays, and
    // the closed file serve stays closed.
    let summary = within("reload", handle.reload(config(&route, &body))).await;
    assert_eq!(
        summary,
        ReloadSummary {
            kept: keys(&["serve.web", "use.dbuse", "use.ghost"]),
            ..Default::default()
        }
    );
    let status = handle.status();
    assert_eq!(status.serve_id("web").map(ServeId::get), Some(611));
    assert!(status.uses.contains_key("ghost") && status.uses.contains_key("dbuse"));
    assert!(
        !status.serves["file"].config.active,
        "reload reopened a closed serve"
    );

    // The file now defines ghost itself: the file wins.
    let body = format!("{body}[use.ghost]\nserveid=611\nport=0\n");
    let summary = within("reload", handle.reload(config(&route, &body))).await;
    assert_eq!(summary.replaced, keys(&["use.ghost"]));
    assert_eq!(summary.kept, keys(&["serve.web", "use.dbuse"]));
    let status = office
        .wait("ghost reaches 611", |s| s.open_use("ghost").is_some())
        .await;
    assert_eq!(
        status.uses["ghost"].config.serve_id.map(ServeId::get),
        Some(611)
    );
    assert!(!status.uses["ghost"].from_shell);
    office.stop().await;
    route.stop().await;
}
