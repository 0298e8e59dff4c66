use super::*;

/// Runs a whole exchange; the vnet's and the route's secrets if both
/// confirmations passed.
fn exchange(
    vnet_token: &str,
    route_token: &str,
) -> Result<(SessionSecret, SessionSecret), AuthError> {
    let (vnet, hello) = VnetExchange::start(&Token::new(vnet_token), "home", "g");
    let (route, challenge, route_confirm) =
        RouteExchange::answer(&Token::new(route_token), "home", "g", &hello)?;
    let (vnet_confirm, vnet_secret) = vnet.finish(&challenge, &route_confirm)?;
    let route_secret = route.check(&vnet_confirm)?;
    Ok((vnet_secret, route_secret))
}

#[test]
fn the_same_token_agrees_on_a_fresh_secret() {
    let (a, b) = exchange("s3cret", "s3cret").unwrap();
    assert_eq!(a, b);
    let (c, _) = exchange("s3cret", "s3cret").unwrap();
    assert_ne!(a, c, "every session has its own secret");
    assert!(exchange("", "").is_ok(), "no token on either side");
}

#[test]
fn another_token_or_none_fails_at_the_first_confirmation() {
    for (vnet, route) in [("wrong", "right"), ("", "right"), ("mine", "")] {
        assert_eq!(exchange(vnet, route).unwrap_err(), AuthError::Mismatch);
    }
}

#[test]
fn a_changed_name_or_group_fails_both_confirmations() {
    let token = Token::new("t");
    let (vnet, hello) = VnetExchange::start(&token, "home", "g");
    let (_, challenge, confirm) = RouteExchange::answer(&token, "admin", "g", &hello).unwrap();
    assert_eq!(
        vnet.finish(&challenge, &confirm).unwrap_err(),
        AuthError::Mismatch
    );
}

#[test]
fn a_malformed_message_is_refused() {
    let token = Token::new("t");
    let bad = PakeMsg([0xff; PAKE_LEN]);
    assert!(matches!(
        RouteExchange::answer(&token, "n", "g", &bad),
        Err(AuthError::Malformed)
    ));
}

/// What an attacker can do with a handshake in hand: take a candidate
/// token, run the exchange's arithmetic against the recorded messages,
/// and see whether the route's confirmation comes out. With the old HMAC
/// challenge this identified the token; here not even the right one
/// passes, because the secret needs a private value that never left the
/// vnet (or the route).
fn offline_check(
    candidate: &str,
    recorded_vnet: &PakeMsg,
    challenge: &PakeMsg,
    confirm: &Proof,
) -> bool {
    let token = Token::new(candidate);
    // Playing the vnet, with the recorded route message.
    let (fresh, _) = VnetExchange::start(&token, "home", "g");
    let as_vnet = fresh.finish(challenge, confirm).is_ok();
    // Playing the route, with the recorded vnet message.
    let as_route = RouteExchange::answer(&token, "home", "g", recorded_vnet)
        .is_ok_and(|(_, _, ours)| ours.matches(confirm));
    as_vnet || as_route
}

#[test]
fn a_recorded_handshake_verifies_no_guess_offline() {
    let token = Token::new("tiny");
    let (vnet, hello) = VnetExchange::start(&token, "home", "g");
    let (route, challenge, confirm) = RouteExchange::answer(&token, "home", "g", &hello).unwrap();
    let (vnet_confirm, _) = vnet.finish(&challenge, &confirm).unwrap();
    route.check(&vnet_confirm).unwrap();
    for candidate in ["tiny", "", "tinY", "password"] {
        assert!(
            !offline_check(candidate, &hello, &challenge, &confirm),
            "the transcript verified {candidate:?} offline"
        );
    }
}

#[test]
fn a_provoked_challenge_verifies_no_guess_but_the_one_committed() {
    // The attacker plays a vnet with the guess "guess1" and gets the
    // route's challenge; that tests "guess1" only, and the route's real
    // token does not show up among other candidates either.
    let route_token = Token::new("tiny");
    let (attacker, hello) = VnetExchange::start(&Token::new("guess1"), "home", "g");
    let (_, challenge, confirm) = RouteExchange::answer(&route_token, "home", "g", &hello).unwrap();
    assert_eq!(
        attacker.finish(&challenge, &confirm).unwrap_err(),
        AuthError::Mismatch
    );
    for candidate in ["tiny", "guess2", ""] {
        assert!(!offline_check(candidate, &hello, &challenge, &confirm));
    }
}

#[test]
fn hex_round_trip_and_masked_debug() {
    let proof = Proof([0xab; 32]);
    let json = serde_json::to_string(&proof).unwrap();
    assert_eq!(json.len(), 66);
    assert!(serde_json::from_str::<Proof>(&json).unwrap() == proof);
    assert!(serde_json::from_str::<Proof>("\"zz\"").is_err());
    assert!(
        serde_json::from_str::<PakeMsg>(&json).is_err(),
        "32 bytes is not a PAKE message"
    );
    assert_eq!(format!("{:?}", Token::new("s3cret")), "Token(***)");
    assert_eq!(
        format!("{:?}", SessionSecret([1; 32])),
        "SessionSecret(***)"
    );
}
