//! The token exchange and data passes on arbitrary input: a hostile
//! peer's PAKE message, confirmation and pass must be refused, never
//! panic, and never pass for the real thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::auth::{PakeMsg, Proof, RouteExchange, SessionSecret, Token, VnetExchange, PAKE_LEN};
use proto::pass::{DataPass, Purpose, ReplayWindow};
use proto::{ServeId, SessionId};

fuzz_target!(|data: &[u8]| {
    if data.len() < PAKE_LEN + 32 + 8 {
        return;
    }
    let (pake, rest) = data.split_at(PAKE_LEN);
    let (confirm, rest) = rest.split_at(32);
    let pake = PakeMsg(pake.try_into().unwrap());
    let confirm = Proof(confirm.try_into().unwrap());
    let token = Token::new("fuzz");

    // The route meets a stranger's hello and then its confirmation.
    if let Ok((exchange, _, _)) = RouteExchange::answer(&token, "n", "g", &pake) {
        assert!(exchange.check(&confirm).is_err(), "a made-up confirmation passed");
    }
    // A vnet meets a stranger's challenge.
    let (vnet, _) = VnetExchange::start(&token, "n", "g");
    assert!(vnet.finish(&pake, &confirm).is_err(), "a made-up challenge passed");

    // A made-up pass, and counters in any order, against a window.
    let secret = SessionSecret::from_bytes([1; 32]);
    let counter = u64::from_be_bytes(rest[..8].try_into().unwrap());
    let pass = DataPass {
        session: SessionId(counter.rotate_left(7)),
        counter,
        mac: confirm,
    };
    assert!(!secret.verify(&pass, Purpose::Visit(ServeId::new(700).unwrap())));
    let mut window = ReplayWindow::default();
    for chunk in rest[8..].chunks(8) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        let counter = u64::from_be_bytes(bytes);
        if window.admit(counter) {
            assert!(!window.admit(counter), "a counter admitted twice");
        }
    }
});
