//! The route is the authority on what reaches a vnet: an unserve answer
//! goes on only from the vnet asked, for an ask still open, once; every
//! message is held to the protocol's limits; and text a peer chose cannot
//! forge a log line or a table row.
use futures::{SinkExt, StreamExt};
use proto::features::Features;
use proto::message::{Request, Response, RouteMsg, ServeSpec, VnetMsg};
use proto::{AskId, RefusalCode, ServeId, VnetId};
use std::time::Duration;
use testkit::raw::{self, Link};
use testkit::*;

/// Reads until the route closes `link`; panics if it does not.
async fn closed_by_route(link: &mut Link) {
    loop {
        match within("the route closes the connection", link.next()).await {
            None | Some(Err(_)) => return,
            Some(Ok(_)) => {}
        }
    }
}

/// The next unserve ask on `link`, skipping announcements.
async fn next_ask(link: &mut Link) -> (AskId, VnetId) {
    loop {
        if let RouteMsg::UnserveAsk { ask, from, .. } = raw::next(link).await {
            return (ask, from);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_no_open_ask_drops_its_sender() {
    let route = Route::start().await;
    let office = Vnet::start(&route, "[vnet]\nname=office\n");
    office.wait("connected", |s| s.vnet_id.is_some()).await;
    let mut mallory = raw::Session::join(route.addr, "mallory", "default", "").await;
    let forged = VnetMsg::UnserveAnswer {
        ask: AskId(0x5eed),
        result: Ok(ServeId::new(1).unwrap()),
    };
    mallory.control.send(forged).await.unwrap();
    closed_by_route(&mut mallory.control).await;
    let rtt = within("ping", office.handle.ping()).await.unwrap();
    assert!(rtt < Duration::from_secs(1));
    stop_all(route, [office]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_vnet_asked_answers_and_only_once() {
    let route = Route::start().await;
    let mut granter = raw::Session::join(route.addr, "granter", "default", "").await;
    let mut mallory = raw::Session::join(route.addr, "mallory", "default", "").await;
    let office = Vnet::start(&route, "[vnet]\nname=office\n");
    office.wait("connected", |s| s.vnet_id.is_some()).await;

    let handle = office.handle.clone();
    let granter_id = granter.vnet_id;
    let asked = tokio::spawn(async move { handle.unserve(granter_id, "127.0.0.1", 8888).await });
    let (ask, from) = next_ask(&mut granter.control).await;
    assert_ne!(from, granter_id);

    // Someone else answering that very ask is dropped, and the asker
    // never sees that answer.
    let forged = VnetMsg::UnserveAnswer {
        ask,
        result: Ok(ServeId::new(66).unwrap()),
    };
    mallory.control.send(forged).await.unwrap();
    closed_by_route(&mut mallory.control).await;

    let real = VnetMsg::UnserveAnswer {
        ask,
        result: Ok(ServeId::new(5).unwrap()),
    };
    granter.control.send(real.clone()).await.unwrap();
    let granted = within("the answer", asked).await.unwrap().unwrap();
    assert_eq!(granted, ServeId::new(5).unwrap());
    // The same answer again is one too many.
    granter.control.send(real).await.unwrap();
    closed_by_route(&mut granter.control).await;
    stop_all(route, [office]).await;
}

fn spec(name: &str, info: &str) -> ServeSpec {
    ServeSpec {
        name: name.into(),
        serve_id: None,
        kind: "tcp".into(),
        ip: "127.0.0.1".into(),
        port: 22,
        info: info.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_beyond_the_limits_is_refused_and_the_vnet_stays() {
    let route = Route::start().await;
    let mut vnet = raw::Session::join(route.addr, "careless", "default", "").await;
    let cases = [
        spec("web", &"x".repeat(proto::MAX_TEXT_LEN + 1)),
        spec("web", "line\n999 01 admin tcp 127.0.0.1 22 fake row"),
        spec("\u{1b}[2Jweb", "terminal escape"),
    ];
    for (id, case) in (1..).zip(cases) {
        vnet.send(id, Request::RegisterServe(case)).await;
        match raw::next(&mut vnet.control).await {
            RouteMsg::Response {
                id: answered,
                body: Response::Error(refusal),
            } => {
                assert_eq!(answered, id);
                assert_eq!(refusal.code, RefusalCode::Protocol, "{refusal:?}");
            }
            other => panic!("case {id}: expected a refusal, got {other:?}"),
        }
    }
    // Still connected, and nothing was registered.
    vnet.send(9, Request::ListServes).await;
    assert_eq!(
        raw::next(&mut vnet.control).await,
        RouteMsg::Response {
            id: 9,
            body: Response::Serves(Vec::new())
        }
    );
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_with_a_forged_log_line_in_its_name_is_refused() {
    let route = Route::start().await;
    let (_, pake) = proto::auth::VnetExchange::start(&Default::default(), "x", "default");
    let hello = VnetMsg::Hello {
        name: "x\n2026-11-29 INFO route::session: vnet joined vnet=01 name=admin".into(),
        group: "default".into(),
        pake,
        features: Features::ours(),
    };
    match raw::ask(route.addr, hello).await.1 {
        RouteMsg::Refused(refusal) => assert_eq!(refusal.code, RefusalCode::Protocol),
        other => panic!("expected a refusal, got {other:?}"),
    }
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_holds_a_vnet_to_its_own_connection_limit() {
    let route = Route::with(route::RouteConfig {
        max_connections: 3,
        ..Default::default()
    })
    .await;
    let echo = tagged_echo("limited").await;
    let home = Vnet::start(&route, &serve_section("echo", 700, echo));
    home.registered("echo").await;
    // A vnet that keeps no limit of its own opens streams by hand.
    let mut greedy = raw::Session::join(route.addr, "greedy", "default", "").await;
    let serve = ServeId::new(700).unwrap();
    let mut open = Vec::new();
    for _ in 0..3 {
        let (link, answer) = greedy.visit(route.addr, serve).await;
        assert_eq!(answer, RouteMsg::Ready);
        open.push(link);
    }
    match greedy.visit(route.addr, serve).await.1 {
        RouteMsg::Refused(refusal) => {
            assert_eq!(refusal.code, RefusalCode::Limit);
            assert!(refusal.text.contains("max_connections"), "{refusal}");
        }
        other => panic!("a fourth stream got {other:?}"),
    }
    // One closes: once its stream has ended, there is room again.
    drop(open.pop());
    home.wait("the closed stream ends", |s| {
        s.serves["echo"].traffic.connections() == 2
    })
    .await;
    let mut answers = Vec::new();
    for _ in 0..20 {
        let (link, answer) = greedy.visit(route.addr, serve).await;
        answers.push(answer.clone());
        if answer == RouteMsg::Ready {
            open.push(link);
            break;
        }
        // The route's side of the stream may end a moment after home's.
        tokio::task::yield_now().await;
    }
    assert_eq!(answers.last(), Some(&RouteMsg::Ready), "{answers:?}");
    stop_all(route, [home]).await;
}
