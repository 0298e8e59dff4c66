//! Groups, serve ids, standby and recovery, seen through real mappings.
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vnet::ServeState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_see_only_their_own_serves() {
    let route = Route::start().await;
    let echo = tagged_echo("group-a").await;
    let serving = Vnet::start(
        &route,
        &format!("[vnet]\ngroup=a\n{}", serve_section("echo", 700, echo)),
    );
    let same_group = Vnet::start(
        &route,
        &format!("[vnet]\ngroup=a\n{}", use_section("echo", 700)),
    );
    let other_group = Vnet::start(
        &route,
        &format!("[vnet]\ngroup=b\n{}", use_section("echo", 700)),
    );
    serving.registered("echo").await;

    let addr = same_group.open_use("echo").await;
    assert_eq!(connect_tagged(addr).await.1, "group-a");

    // The other group's route view has no 700, its use stays in standby
    // and refuses connections.
    let listed = within("list", other_group.handle.serves()).await.unwrap();
    assert!(listed.is_empty(), "group b sees {listed:?}");
    let standby = other_group
        .wait("use bound", |s| s.uses["echo"].local.is_some())
        .await;
    assert!(!standby.uses["echo"].open);
    assert_refused(standby.uses["echo"].local.unwrap()).await;

    for vnet in [same_group, other_group, serving] {
        vnet.stop().await;
    }
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_dynamic_id_is_reassigned_and_works() {
    let route = Route::start().await;
    let first_echo = tagged_echo("first").await;
    let second_echo = tagged_echo("second").await;
    let first = Vnet::start(&route, &serve_section("svc", 5, first_echo));
    assert_eq!(first.registered("svc").await, 5);
    let second = Vnet::start(&route, &serve_section("svc", 5, second_echo));
    let new_id = second.registered("svc").await;
    assert_ne!(new_id, 5);
    assert!((1..=499).contains(&new_id));

    let user = Vnet::start(
        &route,
        &format!("{}{}", use_section("old", 5), use_section("new", new_id)),
    );
    assert_eq!(connect_tagged(user.open_use("old").await).await.1, "first");
    assert_eq!(connect_tagged(user.open_use("new").await).await.1, "second");

    for vnet in [user, second, first] {
        vnet.stop().await;
    }
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_conflict_is_refused_and_other_serves_still_work() {
    let route = Route::start().await;
    let holder_echo = tagged_echo("holder").await;
    let late_echo = tagged_echo("late").await;
    let other_echo = tagged_echo("other").await;
    let holder = Vnet::start(
        &route,
        &format!(
            "[vnet]\nname=holder\n{}",
            serve_section("web", 700, holder_echo)
        ),
    );
    holder.registered("web").await;
    let late = Vnet::start(
        &route,
        &format!(
            "[vnet]\nname=late\n{}{}",
            serve_section("web", 700, late_echo),
            serve_section("other", 701, other_echo)
        ),
    );
    let status = late
        .wait("conflict settled", |s| {
            matches!(s.serves["web"].state, ServeState::Refused(_)) && s.serve_id("other").is_some()
        })
        .await;
    let ServeState::Refused(reason) = &status.serves["web"].state else {
        unreachable!()
    };
    assert!(
        reason.contains("700") && reason.contains("vnet 01") && reason.contains("holder"),
        "{reason}"
    );

    let user = Vnet::start(
        &route,
        &format!("{}{}", use_section("web", 700), use_section("other", 701)),
    );
    assert_eq!(connect_tagged(user.open_use("web").await).await.1, "holder");
    assert_eq!(
        connect_tagged(user.open_use("other").await).await.1,
        "other"
    );

    for vnet in [user, late, holder] {
        vnet.stop().await;
    }
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_use_opens_when_its_serve_appears() {
    let route = Route::start().await;
    let user = Vnet::start(&route, &use_section("web", 600));
    let bound = user
        .wait("use bound", |s| s.uses["web"].local.is_some())
        .await;
    assert!(!bound.uses["web"].open);
    assert_refused(bound.uses["web"].local.unwrap()).await;

    let echo = tagged_echo("late-arrival").await;
    let serving = Vnet::start(&route, &serve_section("web", 600, echo));
    let addr = user.open_use("web").await;
    assert_eq!(
        Some(addr),
        bound.uses["web"].local,
        "the use keeps its port"
    );
    assert_eq!(connect_tagged(addr).await.1, "late-arrival");

    user.stop().await;
    serving.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_without_port_takes_the_serves_port_when_it_appears() {
    let route = Route::start().await;
    // The serve's own port is taken by the service itself on 127.0.0.1,
    // so the use listens on another loopback address: one where that port
    // is free (other tests' clients on 127.0.0.2 may linger in FIN_WAIT2,
    // which holds a port against any listener).
    let mut echo = tagged_echo("own-port").await;
    for _ in 0..20 {
        if std::net::TcpListener::bind(("127.0.0.2", echo.port())).is_ok() {
            break;
        }
        echo = tagged_echo("own-port").await;
    }
    let user = Vnet::start(&route, "[use.web]\nserveid=650\nip=127.0.0.2\n");
    let serving = Vnet::start(&route, &serve_section("web", 650, echo));
    let addr = user.open_use("web").await;
    assert_eq!(addr.port(), echo.port());
    assert_eq!(connect_tagged(addr).await.1, "own-port");
    user.stop().await;
    serving.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_serving_vnet_leaves_connections_are_refused_until_it_returns() {
    let route = Route::start().await;
    let echo = tagged_echo("comes-back").await;
    let serve = serve_section("web", 800, echo);
    let serving = Vnet::start(&route, &serve);
    let user = Vnet::start(&route, &use_section("web", 800));
    let addr = user.open_use("web").await;
    let (mut live, _) = connect_tagged(addr).await;

    serving.stop().await;
    user.wait("use in standby", |s| !s.uses["web"].open).await;
    assert_refused(addr).await;
    // The connection that was open when the serving side left is closed too.
    let mut buf = [0u8; 8];
    let read = within(
        "old connection closes",
        tokio::io::AsyncReadExt::read(&mut live, &mut buf),
    )
    .await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let listed = within("list", user.handle.serves()).await.unwrap();
    assert!(listed.is_empty(), "route still lists {listed:?}");

    let back = Vnet::start(&route, &serve);
    assert_eq!(back.registered("web").await, 800);
    assert_eq!(user.open_use("web").await, addr);
    assert_eq!(connect_tagged(addr).await.1, "comes-back");

    user.stop().await;
    back.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnets_reconnect_and_mappings_resume_after_a_route_restart() {
    let route = Route::start().await;
    let port = route.addr.port();
    let echo = tagged_echo("after-restart").await;
    // Two dynamic serves that both asked for id 5: the second got another
    // id. The first leaves before the restart, so 5 is free again; the
    // second must still ask for (and keep) the id its users know.
    let first_dynamic = tagged_echo("first-dynamic").await;
    let second_dynamic = tagged_echo("second-dynamic").await;
    let serving = Vnet::start(&route, &serve_section("web", 900, echo));
    let first = Vnet::start(&route, &serve_section("dyn", 5, first_dynamic));
    assert_eq!(first.registered("dyn").await, 5);
    let other = Vnet::start(&route, &serve_section("dyn", 5, second_dynamic));
    let moved = other.registered("dyn").await;
    assert_ne!(moved, 5);
    // Through the route only: with a direct link to the serving vnet, its
    // use would (rightly) stay open while the route is away.
    let user = Vnet::start(
        &route,
        &format!(
            "[vnet]\ndirect=off\n{}{}{}",
            use_section("web", 900),
            use_section("d5", 5),
            use_section("moved", moved)
        ),
    );
    let addr = user.open_use("web").await;

    // A transfer is running when the route dies: it ends (it ran through
    // the route) instead of hanging.
    let (mut running, _) = connect_tagged(addr).await;
    running.write_all(b"in flight").await.unwrap();
    let mut echoed = [0u8; 9];
    within("echo before the restart", running.read_exact(&mut echoed))
        .await
        .unwrap();
    first.stop().await;
    route.stop().await;
    // Ok (EOF) or an error (reset) are both an end; only a hang fails.
    let mut rest = Vec::new();
    let _ = within("the running transfer ends", running.read_to_end(&mut rest)).await;
    user.wait("use in standby", |s| !s.uses["web"].open).await;

    // Same port again, as a restarted route would have; the old listener
    // is closed once `run` has returned.
    let route = Route::start_on(port).await;
    assert_eq!(serving.registered("web").await, 900);
    assert_eq!(user.open_use("web").await, addr);
    assert_eq!(connect_tagged(addr).await.1, "after-restart");
    assert_eq!(other.registered("dyn").await, moved);
    let first = Vnet::start(&route, &serve_section("dyn", 5, first_dynamic));
    assert_eq!(first.registered("dyn").await, 5);
    assert_eq!(
        connect_tagged(user.open_use("d5").await).await.1,
        "first-dynamic"
    );
    assert_eq!(
        connect_tagged(user.open_use("moved").await).await.1,
        "second-dynamic"
    );

    user.stop().await;
    first.stop().await;
    other.stop().await;
    serving.stop().await;
    route.stop().await;
}
