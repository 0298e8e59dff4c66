//! The registry's tests: ids, groups, limits, passes, cut-off vnets and
//! direct-link introductions.
use super::direct::{CardTaken, INTRODUCE_EVERY};
use super::*;
use crate::link::Queues;
use proto::direct::{DirectCard, Fingerprint};
use tokio_util::sync::CancellationToken;

fn link() -> (VnetLink, Queues) {
    VnetLink::with_room(CancellationToken::new(), 16, 16)
}

fn arrival() -> Arrival {
    Arrival {
        addr: "127.0.0.1:1".parse().unwrap(),
        unix: 0,
        e2e: true,
    }
}

fn secret() -> SessionSecret {
    SessionSecret::from_bytes(rand::random())
}

fn spec(name: &str, id: u16) -> ServeSpec {
    ServeSpec {
        name: name.into(),
        serve_id: ServeId::new(id),
        kind: "tcp".into(),
        ip: "127.0.0.1".into(),
        port: 22,
        info: String::new(),
    }
}

#[test]
fn ids_dynamic_reassigned_static_refused() {
    let mut reg = Registry::default();
    let (a, _ra) = link();
    let (b, _rb) = link();
    let (va, _, _) = reg.join("g", "a", a, secret(), arrival(), 10).unwrap();
    let (vb, _, _) = reg.join("g", "b", b, secret(), arrival(), 10).unwrap();
    assert_eq!((va, vb), (VnetId(1), VnetId(2)));
    assert_eq!(reg.register("g", va, spec("x", 7), 100).unwrap().get(), 7);
    assert_eq!(reg.register("g", vb, spec("y", 7), 100).unwrap().get(), 1);
    assert_eq!(reg.register("g", vb, spec("z", 0), 100).unwrap().get(), 2);
    assert_eq!(
        reg.register("g", va, spec("s", 700), 100).unwrap().get(),
        700
    );
    let err = reg.register("g", vb, spec("t", 700), 100).unwrap_err();
    assert_eq!(err.code, RefusalCode::Taken);
    assert!(
        err.text.contains("700") && err.text.contains("vnet 01 (a)"),
        "{err}"
    );
}

#[test]
fn groups_are_separate_and_leave_withdraws_serves() {
    let mut reg = Registry::default();
    let (a, _ra) = link();
    let (b, mut rb) = link();
    let (c, _rc) = link();
    let (va, _, _) = reg.join("g", "a", a, secret(), arrival(), 10).unwrap();
    reg.join("g", "b", b, secret(), arrival(), 10).unwrap();
    reg.join("other", "c", c, secret(), arrival(), 10).unwrap();
    let id = reg.register("g", va, spec("x", 700), 100).unwrap();
    assert!(reg.visit("g", id, VnetId(9)).is_ok());
    assert!(reg.visit("other", id, VnetId(9)).is_err());
    assert!(matches!(rb.try_event(), Some(RouteMsg::ServeUp(_))));
    reg.leave("g", va);
    assert!(matches!(
        rb.try_event(),
        Some(RouteMsg::ServeDown {
            withdrawn: false,
            ..
        })
    ));
    assert!(reg.visit("g", id, VnetId(9)).is_err());
    assert!(reg.serves("g").is_empty());
}

#[test]
fn limits_refuse_with_a_reason() {
    let mut reg = Registry::default();
    let (a, _ra) = link();
    let (b, _rb) = link();
    let (va, _, _) = reg.join("g", "a", a, secret(), arrival(), 1).unwrap();
    let err = reg.join("g", "b", b, secret(), arrival(), 1).err().unwrap();
    assert_eq!(
        err.text,
        "the route is full: 1 vnets are connected (max_vnets)"
    );
    reg.register("g", va, spec("x", 0), 1).unwrap();
    let err = reg.register("g", va, spec("y", 0), 1).unwrap_err();
    assert_eq!(
        err.text,
        "vnet 01 holds 1 serves already (max_serves_per_vnet=1)"
    );
}

#[test]
fn a_pass_is_admitted_once_for_its_session_and_purpose() {
    let mut reg = Registry::default();
    let (a, _ra) = link();
    let key = secret();
    let (va, session, _) = reg.join("g", "a", a, key.clone(), arrival(), 10).unwrap();
    let purpose = Purpose::SpareForServes;
    let pass = key.pass(session, 1, purpose);
    let admitted = reg.admit(&pass, purpose).ok().unwrap();
    assert_eq!((admitted.group.as_str(), admitted.vnet_id), ("g", va));
    assert!(reg.admit(&pass, purpose).is_err(), "replayed");
    let other = key.pass(session, 2, Purpose::SpareForVisits);
    assert!(
        reg.admit(&other, purpose).is_err(),
        "made for another purpose"
    );
    let forged = secret().pass(session, 3, purpose);
    assert!(
        reg.admit(&forged, purpose).is_err(),
        "made with another secret"
    );
    reg.leave("g", va);
    assert!(
        reg.admit(&key.pass(session, 4, purpose), purpose).is_err(),
        "session over"
    );
}

#[test]
fn a_vnet_that_does_not_read_is_cut_off() {
    let mut reg = Registry::default();
    let (slow, _queues) = VnetLink::with_room(CancellationToken::new(), 1, 1);
    let cancel = slow.cancel.clone();
    let (a, _ra) = link();
    reg.join("g", "slow", slow, secret(), arrival(), 10)
        .unwrap();
    let (va, _, _) = reg.join("g", "a", a, secret(), arrival(), 10).unwrap();
    reg.register("g", va, spec("x", 0), 100).unwrap();
    assert!(!cancel.is_cancelled());
    reg.register("g", va, spec("y", 0), 100).unwrap();
    assert!(cancel.is_cancelled());
    assert_eq!(
        slow_reason(&reg),
        Some("not reading its control connection")
    );
}

fn slow_reason(reg: &Registry) -> Option<&'static str> {
    let (link, _) = reg.vnet("g", VnetId(1))?;
    link.cut_reason()
}

fn card(port: u16, cert: u8) -> DirectCard {
    DirectCard {
        addrs: vec![([10, 0, 0, cert], port).into()],
        cert: Fingerprint([cert; 32]),
    }
}

/// Vnets a and b in group "g": their ids, a's session and its secret,
/// and the queues their links write to (kept, or the links close).
struct Two {
    a: VnetId,
    b: VnetId,
    session: SessionId,
    key: SessionSecret,
    _queues: [Queues; 2],
}

fn two_vnets(reg: &mut Registry) -> Two {
    let ((a, qa), (b, qb)) = (link(), link());
    let key = secret();
    let (va, session, _) = reg.join("g", "a", a, key.clone(), arrival(), 10).unwrap();
    let (vb, _, _) = reg.join("g", "b", b, secret(), arrival(), 10).unwrap();
    Two {
        a: va,
        b: vb,
        session,
        key,
        _queues: [qa, qb],
    }
}

#[test]
fn introductions_carry_the_observed_address_first_and_the_lower_id_dials() {
    let mut reg = Registry::default();
    let two = two_vnets(&mut reg);
    let (va, vb, session, key) = (two.a, two.b, two.session, two.key.clone());
    let now = std::time::Instant::now();
    let err = reg.introduce("g", (vb, va), now).err().unwrap();
    assert_eq!(err.code, RefusalCode::Unsupported, "no cards yet: {err}");
    let recorded = CardTaken::Recorded { left_out: 0 };
    assert_eq!(reg.set_card("g", va, card(4000, 1)), recorded);
    assert_eq!(
        reg.set_card("g", vb, card(5000, 1)),
        CardTaken::Refused,
        "a's certificate"
    );
    assert_eq!(reg.set_card("g", vb, card(5000, 2)), recorded);

    let public: std::net::SocketAddr = "198.18.0.20:6000".parse().unwrap();
    let forged = secret().pass(session, 1, Purpose::Probe);
    assert_eq!(
        reg.observe(&forged, public),
        None,
        "a pass of another secret"
    );
    let wrong = key.pass(session, 2, Purpose::SpareForVisits);
    assert_eq!(
        reg.observe(&wrong, public),
        None,
        "a pass for another purpose"
    );
    let good = key.pass(session, 3, Purpose::Probe);
    assert_eq!(reg.observe(&good, public), Some(va));
    assert_eq!(reg.observe(&good, public), None, "a replayed probe");

    let [(_, to_b), (_, to_a)] = reg.introduce("g", (vb, va), now).ok().unwrap();
    assert_eq!((to_b.peer, to_b.dial), (va, false));
    assert_eq!((to_a.peer, to_a.dial), (vb, true));
    assert_eq!(to_b.addrs, vec![public, "10.0.0.1:4000".parse().unwrap()]);
    assert_eq!(to_b.cert, Fingerprint([1; 32]));
    assert_eq!(to_a.addrs, vec!["10.0.0.2:5000".parse().unwrap()]);
    assert_eq!(to_a.peer_name, "b");
    assert!(
        reg.introduce("g", (va, va), now).is_err(),
        "a vnet and itself"
    );
    assert!(
        reg.introduce("g", (va, VnetId(9)), now).is_err(),
        "no such vnet"
    );
    assert!(
        reg.introduce("other", (va, vb), now).is_err(),
        "another group"
    );

    // Asking again at once is held back; the other may ask; later, again.
    let again = reg.introduce("g", (vb, va), now).err().unwrap();
    assert_eq!(again.code, RefusalCode::Busy, "{again}");
    assert!(
        reg.introduce("g", (va, vb), now).is_ok(),
        "the other's own ask"
    );
    let later = now + INTRODUCE_EVERY;
    assert!(reg.introduce("g", (vb, va), later).is_ok());
}

#[test]
fn a_card_keeps_only_addresses_a_peer_may_be_sent_to() {
    let mut reg = Registry::default();
    let two = two_vnets(&mut reg);
    let (va, vb) = (two.a, two.b);
    let addr = |text: &str| text.parse::<std::net::SocketAddr>().unwrap();
    let listed = DirectCard {
        addrs: [
            "127.0.0.1:22",
            "198.18.0.9:4000",
            "224.0.0.1:4000",
            "[fe80::1]:4000",
            "10.0.0.1:0",
        ]
        .map(addr)
        .to_vec(),
        cert: Fingerprint([1; 32]),
    };
    assert_eq!(
        reg.set_card("g", va, listed),
        CardTaken::Recorded { left_out: 4 }
    );
    assert_eq!(
        reg.set_card("g", vb, card(5000, 2)),
        CardTaken::Recorded { left_out: 0 }
    );
    let now = std::time::Instant::now();
    let [(_, to_b), _] = reg.introduce("g", (vb, va), now).ok().unwrap();
    assert_eq!(to_b.addrs, vec![addr("198.18.0.9:4000")]);
}

#[test]
fn an_ipv4_probe_seen_on_a_dual_stack_socket_is_recorded_as_ipv4() {
    let mut reg = Registry::default();
    let two = two_vnets(&mut reg);
    let (va, vb, session, key) = (two.a, two.b, two.session, two.key.clone());
    reg.set_card("g", va, card(4000, 1));
    reg.set_card("g", vb, card(5000, 2));
    let mapped = "[::ffff:198.18.0.20]:6000".parse().unwrap();
    assert_eq!(
        reg.observe(&key.pass(session, 1, Purpose::Probe), mapped),
        Some(va)
    );
    let now = std::time::Instant::now();
    let [(_, to_b), _] = reg.introduce("g", (vb, va), now).ok().unwrap();
    assert_eq!(to_b.addrs[0], "198.18.0.20:6000".parse().unwrap());
}
