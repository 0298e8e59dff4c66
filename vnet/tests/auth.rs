//! Token authentication: matching tokens connect, anything else is refused
//! with a clear message on both sides, and a recorded handshake cannot be
//! replayed.
mod common;

use common::*;
use futures::{SinkExt, StreamExt};
use proto::auth::{Nonce, Token};
use proto::codec::VnetCodec;
use proto::message::{RouteMsg, SpareRole, VnetMsg};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

async fn route_with_token(token: &str) -> Route {
    Route::with(route::Settings {
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
    assert!(
        reason.contains("the tokens differ, or the route has none"),
        "{reason}"
    );
    extra.stop().await;
    route.stop().await;
}

/// A raw control connection: preamble and hello with a chosen nonce.
async fn hello(
    addr: std::net::SocketAddr,
    nonce: Nonce,
) -> (Framed<vnet::data::Conn, VnetCodec>, RouteMsg) {
    let (framed, first) = within(
        "hello",
        vnet::data::open(
            &vnet::data::RouteTarget::plain(addr),
            VnetMsg::Hello {
                name: "eve".into(),
                group: "default".into(),
                nonce,
            },
        ),
    )
    .await
    .unwrap();
    (framed, first)
}

/// Everything the route still sends before it closes.
async fn rest(mut framed: Framed<vnet::data::Conn, VnetCodec>) -> Vec<RouteMsg> {
    let mut got = Vec::new();
    while let Some(Ok(msg)) = within("route closes", framed.next()).await {
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
    let token = Token::new("right");
    let vnet_nonce = Nonce([7; 32]);
    let (mut first, challenge) = hello(addr, vnet_nonce).await;
    let RouteMsg::Challenge {
        nonce: first_route_nonce,
        ..
    } = challenge
    else {
        panic!("{challenge:?}")
    };
    let recorded = token.vnet_proof(&first_route_nonce, &vnet_nonce, "eve", "default");
    first.send(VnetMsg::Auth { proof: recorded }).await.unwrap();
    let welcome = within("welcome", first.next()).await.unwrap().unwrap();
    assert!(matches!(welcome, RouteMsg::Welcome { .. }), "{welcome:?}");

    // Replayed on a new connection: the route's nonce is new, the proof
    // is stale, and the refusal reveals no serve.
    let (mut second, challenge) = hello(addr, vnet_nonce).await;
    let RouteMsg::Challenge {
        nonce: second_route_nonce,
        ..
    } = challenge
    else {
        panic!("{challenge:?}")
    };
    assert_ne!(first_route_nonce, second_route_nonce);
    second
        .send(VnetMsg::Auth { proof: recorded })
        .await
        .unwrap();
    let after = rest(second).await;
    assert_eq!(
        after,
        vec![RouteMsg::Refused {
            reason: "authentication failed: wrong or missing token".into()
        }]
    );

    drop(first);
    home.stop().await;
    route.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessed_ticket_or_session_key_attaches_to_nothing() {
    let route = route_with_token("right").await;
    let addr = route.addr;
    let echo = tagged_echo("guarded").await;
    let home = vnet_with_token(addr, Some("right"), &serve_section("echo", 700, echo));
    home.registered("echo").await;
    let target = vnet::data::RouteTarget::plain(addr);
    // A serving half with an invented ticket.
    let accept = VnetMsg::Accept {
        ticket: proto::Ticket(rand_like(1)),
        result: Ok(()),
    };
    let (_, answer) = within("accept", vnet::data::open(&target, accept))
        .await
        .unwrap();
    assert_eq!(
        answer,
        RouteMsg::Refused {
            reason: "unknown or expired ticket".into()
        }
    );
    // A visit with an invented session key.
    let visit = VnetMsg::Visit {
        serve_id: proto::ServeId::new(700).unwrap(),
        session: proto::SessionKey(rand_like(2)),
    };
    let (_, answer) = within("visit", vnet::data::open(&target, visit))
        .await
        .unwrap();
    assert!(
        matches!(answer, RouteMsg::Refused { ref reason } if reason.contains("unknown session")),
        "{answer:?}"
    );
    // Spares with an invented session key, either role.
    for (seed, role) in [(3, SpareRole::Serve), (4, SpareRole::Visit)] {
        let spare = VnetMsg::Spare {
            session: proto::SessionKey(rand_like(seed)),
            role,
        };
        let (_, answer) = within("spare", vnet::data::open(&target, spare))
            .await
            .unwrap();
        assert!(
            matches!(answer, RouteMsg::Refused { ref reason } if reason.contains("unknown session")),
            "{answer:?}"
        );
    }
    home.stop().await;
    route.stop().await;
}

/// A value nobody was given: what a guesser would send.
fn rand_like(seed: u64) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id())
}
