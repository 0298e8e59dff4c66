//! Token authentication: matching tokens connect, anything else is refused
//! with a clear message on both sides, a recorded handshake cannot be
//! replayed, and data connections need a pass made with the session's
//! secret, once.
use futures::{SinkExt, StreamExt};
use proto::auth::{SessionSecret, Token, VnetExchange};
use proto::features::Features;
use proto::message::{RouteMsg, SpareRole, VnetMsg};
use proto::pass::Purpose;
use proto::{Refusal, RefusalCode, ServeId, SessionId, Ticket};
use testkit::raw::{self, Link};
use testkit::*;
use tokio_util::sync::CancellationToken;

async fn route_with_token(token: &str) -> Route {
    Route::with(route::RouteConfig {
        token: Token::new(token),
        ..Default::default()
    })
    .await
}

fn vnet_with_token(route: std::net::SocketAddr, token: Option<&str>, body: &str) -> Vnet {
    let token_line = token.map_or_else(String::new, |t| format!("token={t}\n"));
    let text = format!(
        "[route]\nip=127.0.0.1\nport={}\n{token_line}{body}",
        route.port()
    );
    Vnet {
        handle: vnet::start(
            vnet::VnetConfig::parse("test.ini", &text).unwrap(),
            CancellationToken::new(),
        ),
    }
}

async fn refusal(vnet: &Vnet) -> String {
    let status = vnet.wait("a refusal", |s| s.route_error.is_some()).await;
    assert!(status.vnet_id.is_none());
    status.route_error.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_tokens_connect_and_carry_bytes() {
    let route = route_with_token("s3cret; with spaces").await;
    let addr = route.addr;
    let echo = tagged_echo("authed").await;
    let home = vnet_with_token(
        addr,
        Some("s3cret; with spaces"),
        &serve_section("echo", 700, echo),
    );
    let office = vnet_with_token(addr, Some("s3cret; with spaces"), &use_section("echo", 700));
    assert_eq!(
        connect_tagged(office.open_use("echo").await).await.1,
        "authed"
    );
    office.stop().await;
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_tokens_are_refused_with_a_reason() {
    let route = route_with_token("right").await;
    let addr = route.addr;
    let wrong = vnet_with_token(addr, Some("wrong"), "");
    assert!(refusal(&wrong)
        .await
        .contains("could not prove it knows our token"));
    let missing = vnet_with_token(addr, None, "");
    assert!(refusal(&missing)
        .await
        .contains("the route requires a token: set token= in [route]"));
    wrong.stop().await;
    missing.stop().await;
    route.stop().await;

    let route = route_with_token("").await;
    let open_addr = route.addr;
    let extra = vnet_with_token(open_addr, Some("mine"), "");
    let reason = refusal(&extra).await;
    assert!(reason.contains("the route has no token"), "{reason}");
    extra.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_token_admits_new_joins_and_keeps_the_joined() {
    let route = route_with_token("alpha").await;
    let addr = route.addr;
    let early = vnet_with_token(addr, Some("alpha"), "[vnet]\nname=early\n");
    early.wait("joined", |s| s.vnet_id.is_some()).await;
    route
        .reload(route::RouteConfig {
            token: Token::new("beta"),
            ..Default::default()
        })
        .await;
    let late = vnet_with_token(addr, Some("beta"), "[vnet]\nname=late\n");
    late.wait("joined with the new token", |s| s.vnet_id.is_some())
        .await;
    let stale = vnet_with_token(addr, Some("alpha"), "");
    assert!(refusal(&stale)
        .await
        .contains("could not prove it knows our token"));
    // The vnet that joined under the old token is still in the group.
    let names: Vec<String> = within("show vnets", late.handle.vnets())
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert!(names.contains(&"early".to_string()), "{names:?}");
    stop_all(route, [early, late, stale]).await;
}

/// Everything the route still sends before it closes.
async fn rest(mut link: Link) -> Vec<RouteMsg> {
    let mut got = Vec::new();
    while let Some(Ok(msg)) = within("route closes", link.next()).await {
        got.push(msg);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_handshake_cannot_be_replayed_and_refusal_tells_nothing() {
    let route = route_with_token("right").await;
    let addr = route.addr;
    let echo = tagged_echo("secret-service").await;
    let home = vnet_with_token(addr, Some("right"), &serve_section("echo", 700, echo));
    home.registered("echo").await;

    // A legitimate exchange, as an eavesdropper would record it.
    let (exchange, pake) = VnetExchange::start(&Token::new("right"), "eve", "default");
    let hello = VnetMsg::Hello {
        name: "eve".into(),
        group: "default".into(),
        pake,
        features: Features::ours(),
    };
    let (mut first, challenge) = raw::ask(addr, hello.clone()).await;
    let RouteMsg::Challenge {
        pake: first_pake,
        confirm,
        ..
    } = challenge
    else {
        panic!("{challenge:?}")
    };
    let (recorded, _) = exchange.finish(&first_pake, &confirm).unwrap();
    first
        .send(VnetMsg::Auth { confirm: recorded })
        .await
        .unwrap();
    let welcome = raw::next(&mut first).await;
    assert!(matches!(welcome, RouteMsg::Welcome { .. }), "{welcome:?}");

    // Replayed on a new connection: the route's side of the exchange is
    // new, the confirmation is stale, and the refusal reveals no serve.
    let (mut second, challenge) = raw::ask(addr, hello).await;
    let RouteMsg::Challenge {
        pake: second_pake, ..
    } = challenge
    else {
        panic!("{challenge:?}")
    };
    assert_ne!(first_pake, second_pake);
    second
        .send(VnetMsg::Auth { confirm: recorded })
        .await
        .unwrap();
    let after = rest(second).await;
    assert_eq!(
        after,
        vec![RouteMsg::Refused(Refusal::new(
            RefusalCode::Auth,
            "authentication failed: wrong or missing token"
        ))]
    );

    drop(first);
    home.stop().await;
    route.stop().await;
}

/// The route's answer to a data connection opened with `hello`.
async fn answer(addr: std::net::SocketAddr, hello: VnetMsg) -> RouteMsg {
    raw::ask(addr, hello).await.1
}

fn refused_pass(answer: &RouteMsg) -> bool {
    matches!(answer, RouteMsg::Refused(Refusal { code: RefusalCode::Auth, text }) if text.starts_with("pass refused"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_fresh_pass_of_the_session_opens_a_data_connection() {
    let route = route_with_token("right").await;
    let addr = route.addr;
    let echo = tagged_echo("guarded").await;
    let home = vnet_with_token(addr, Some("right"), &serve_section("echo", 700, echo));
    home.registered("echo").await;
    let mut eve = raw::Session::join(addr, "eve", "default", "right").await;
    let serve = ServeId::new(700).unwrap();

    // Someone who saw the session id on the wire but not the secret.
    let guessed = SessionSecret::from_bytes([9; 32]);
    let forged = |purpose| guessed.pass(eve.id, 1, purpose);
    let ticket = Ticket(rand_like(1));
    let hellos = [
        VnetMsg::Accept {
            ticket,
            pass: forged(Purpose::Accept(ticket)),
            result: Ok(()),
        },
        VnetMsg::Visit {
            serve_id: serve,
            pass: forged(Purpose::Visit(serve)),
        },
        VnetMsg::Spare {
            role: SpareRole::Serve,
            pass: forged(SpareRole::Serve.purpose()),
        },
        VnetMsg::Spare {
            role: SpareRole::Visit,
            pass: forged(SpareRole::Visit.purpose()),
        },
        // A session nobody was given.
        VnetMsg::Visit {
            serve_id: serve,
            pass: guessed.pass(SessionId(rand_like(2)), 1, Purpose::Visit(serve)),
        },
    ];
    for hello in hellos {
        let answer = answer(addr, hello.clone()).await;
        assert!(refused_pass(&answer), "{hello:?}: {answer:?}");
    }

    // A real pass works once; seen on the wire and sent again, it does
    // not; nor does one made for another purpose.
    let pass = eve.pass(Purpose::Visit(serve));
    let (mut visit, ready) = raw::ask(
        addr,
        VnetMsg::Visit {
            serve_id: serve,
            pass,
        },
    )
    .await;
    assert_eq!(ready, RouteMsg::Ready);
    let replayed = answer(
        addr,
        VnetMsg::Visit {
            serve_id: serve,
            pass,
        },
    )
    .await;
    assert!(refused_pass(&replayed), "{replayed:?}");
    let misused = VnetMsg::Spare {
        role: SpareRole::Serve,
        pass: eve.pass(Purpose::Visit(serve)),
    };
    assert!(refused_pass(&answer(addr, misused).await));
    // A real answer to a ticket nobody issued finds nothing.
    let accept = VnetMsg::Accept {
        ticket,
        pass: eve.pass(Purpose::Accept(ticket)),
        result: Ok(()),
    };
    assert_eq!(
        answer(addr, accept).await,
        RouteMsg::Refused(Refusal::new(
            RefusalCode::NotFound,
            "unknown or expired ticket"
        ))
    );
    drop(visit.close().await);
    home.stop().await;
    route.stop().await;
}

/// A value nobody was given: what a guesser would send.
fn rand_like(seed: u64) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_the_token_is_throttled_per_address() {
    let route = route_with_token("right").await;
    // Ten live guesses are allowed (each one is answered)...
    for n in 0..10 {
        let token = format!("guess{n}");
        let refused = raw::Session::try_join(route.addr, "guesser", "default", &token)
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&refused, RouteMsg::Refused(r) if r.code == RefusalCode::Auth),
            "guess {n}: {refused:?}"
        );
    }
    // ... then the address is turned away before any exchange.
    let mut stream = tokio::net::TcpStream::connect(route.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = within(
        "the route hangs up",
        tokio::io::AsyncReadExt::read(&mut stream, &mut buf),
    )
    .await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    route.stop().await;
}
