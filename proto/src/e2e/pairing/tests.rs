use super::*;

const GROUP: &str = "g";

fn party(name: &str, key: u8, cipher: Cipher) -> Party<'_> {
    Party {
        name,
        key: PublicKey([key; 32]),
        cipher,
    }
}

/// Runs a whole exchange between "home" (A) and "office" (B), letting a
/// route change the offer and the answer on the way.
fn pair_via(
    secrets: (&str, &str),
    on_offer: impl Fn(&mut Offer),
    on_answer: impl Fn(&mut Answer),
) -> Result<(PairKey, PairKey), PairError> {
    let (a_secret, b_secret) = (GroupSecret::new(secrets.0), GroupSecret::new(secrets.1));
    let home = party("home", 1, Cipher::Aes128Gcm);
    let office = party("office", 2, Cipher::Aes128Gcm);
    let (initiator, mut offer) = Initiator::start(&a_secret, GROUP, home, "office");
    on_offer(&mut offer);
    let (responder, mut answer) = Responder::answer(&b_secret, GROUP, office, "home", &offer)?;
    on_answer(&mut answer);
    let (confirm, a_key) = initiator.finish(&answer)?;
    let b_key = responder.check(&confirm)?;
    Ok((a_key, b_key))
}

fn pair(secrets: (&str, &str)) -> Result<(PairKey, PairKey), PairError> {
    pair_via(secrets, |_| {}, |_| {})
}

#[test]
fn the_same_secret_gives_both_the_same_key_and_each_the_others_public_key() {
    let (a, b) = pair(("s3cret", "s3cret")).unwrap();
    assert_eq!((a.secret, a.id), (b.secret, b.id));
    assert_eq!(a.peer_key, PublicKey([2; 32]));
    assert_eq!(b.peer_key, PublicKey([1; 32]));
    assert_eq!(a.cipher, Cipher::Aes128Gcm);
    let (again, _) = pair(("s3cret", "s3cret")).unwrap();
    assert_ne!(again.secret, a.secret, "each exchange makes a fresh key");
}

#[test]
fn another_secret_fails_at_the_first_confirmation() {
    let err = pair(("s3cret", "other")).unwrap_err();
    assert_eq!(err, PairError::Mismatch);
    assert_eq!(pair(("s3cret", "")).unwrap_err(), PairError::Mismatch);
}

#[test]
fn a_route_that_changes_a_key_or_a_cipher_fails_the_exchange() {
    let substituted_b = pair_via(("s", "s"), |_| {}, |answer| answer.key = PublicKey([9; 32]));
    assert_eq!(substituted_b.unwrap_err(), PairError::Mismatch);
    let substituted_a = pair_via(("s", "s"), |offer| offer.key = PublicKey([9; 32]), |_| {});
    assert_eq!(substituted_a.unwrap_err(), PairError::Mismatch);
    let downgraded = pair_via(("s", "s"), |offer| offer.cipher = 2, |_| {});
    assert_eq!(downgraded.unwrap_err(), PairError::Mismatch);
    let unknown = pair_via(("s", "s"), |_| {}, |answer| answer.cipher = 7);
    assert_eq!(unknown.unwrap_err(), PairError::Malformed);
}

#[test]
fn the_wrong_vnet_introduced_fails_the_exchange() {
    // "home" was told it talks to "office", but "laptop" answers.
    let secret = GroupSecret::new("s");
    let home = party("home", 1, Cipher::Aes128Gcm);
    let laptop = party("laptop", 3, Cipher::Aes128Gcm);
    let (initiator, offer) = Initiator::start(&secret, GROUP, home, "office");
    let (_, answer) = Responder::answer(&secret, GROUP, laptop, "home", &offer).unwrap();
    assert_eq!(initiator.finish(&answer).unwrap_err(), PairError::Mismatch);
    // And a group changed on the way.
    let (initiator, offer) = Initiator::start(&secret, GROUP, home, "office");
    let office = party("office", 2, Cipher::Aes128Gcm);
    let (_, answer) = Responder::answer(&secret, "other", office, "home", &offer).unwrap();
    assert_eq!(initiator.finish(&answer).unwrap_err(), PairError::Mismatch);
}

#[test]
fn aes_only_when_both_prefer_it() {
    let secret = GroupSecret::new("s");
    let home = party("home", 1, Cipher::Aes128Gcm);
    let office = party("office", 2, Cipher::ChaCha20Poly1305);
    let (initiator, offer) = Initiator::start(&secret, GROUP, home, "office");
    let (responder, answer) = Responder::answer(&secret, GROUP, office, "home", &offer).unwrap();
    let (confirm, a) = initiator.finish(&answer).unwrap();
    let b = responder.check(&confirm).unwrap();
    assert_eq!(
        (a.cipher, b.cipher),
        (Cipher::ChaCha20Poly1305, Cipher::ChaCha20Poly1305)
    );
}

/// What a route that recorded an exchange can try offline with a guess:
/// play either side again against the recorded messages and see whether
/// the recorded confirmation comes out.
fn offline_check(candidate: &str, offer: &Offer, answer: &Answer) -> bool {
    let guess = GroupSecret::new(candidate);
    let home = party("home", 1, Cipher::Aes128Gcm);
    let office = party("office", 2, Cipher::Aes128Gcm);
    let (fresh, _) = Initiator::start(&guess, GROUP, home, "office");
    let as_a = fresh.finish(answer).is_ok();
    let as_b = Responder::answer(&guess, GROUP, office, "home", offer)
        .is_ok_and(|(_, ours)| ours.confirm.matches(&answer.confirm));
    as_a || as_b
}

#[test]
fn a_recorded_exchange_verifies_no_guess_offline() {
    let secret = GroupSecret::new("tiny");
    let home = party("home", 1, Cipher::Aes128Gcm);
    let office = party("office", 2, Cipher::Aes128Gcm);
    let (initiator, offer) = Initiator::start(&secret, GROUP, home, "office");
    let (responder, answer) = Responder::answer(&secret, GROUP, office, "home", &offer).unwrap();
    let (confirm, _) = initiator.finish(&answer).unwrap();
    responder.check(&confirm).unwrap();
    for candidate in ["tiny", "", "tinY", "password"] {
        assert!(
            !offline_check(candidate, &offer, &answer),
            "the transcript verified {candidate:?} offline"
        );
    }
}

#[test]
fn the_key_never_shows_in_debug() {
    let (a, _) = pair(("s", "s")).unwrap();
    let shown = format!("{a:?} {:?}", GroupSecret::new("s3cret"));
    assert!(!shown.contains("s3cret") && !shown.contains(&crate::hex::encode(&a.secret)));
    assert!(shown.contains("PairKey") && shown.contains("GroupSecret(***)"));
}
