use super::pairing::{Initiator, PairKey, Party, PublicKey, Responder};
use super::record::{Opened, Opener, RecordError, Sealer, MAX_PAYLOAD, OVERHEAD};
use super::stream::{StreamHeader, HEADER_LEN};
use super::*;
use crate::ServeId;

fn keys(cipher: Cipher) -> (PairKey, PairKey) {
    let secret = GroupSecret::new("s");
    let home = Party {
        name: "home",
        key: PublicKey([1; 32]),
        cipher,
    };
    let office = Party {
        name: "office",
        key: PublicKey([2; 32]),
        cipher,
    };
    let (initiator, offer) = Initiator::start(&secret, "g", home, "office");
    let (responder, answer) = Responder::answer(&secret, "g", office, "home", &offer).unwrap();
    let (confirm, a) = initiator.finish(&answer).unwrap();
    (a, responder.check(&confirm).unwrap())
}

/// Opens every record in `wire`, returning the payloads joined, and
/// whether the close record came.
fn open_all(opener: &mut Opener, mut wire: Vec<u8>) -> Result<(Vec<u8>, bool), RecordError> {
    let mut plain = Vec::new();
    let mut at = 0;
    loop {
        match opener.open(&mut wire[at..])? {
            Opened::Incomplete => break,
            Opened::Data { consumed, payload } => {
                plain.extend_from_slice(&wire[at + payload.start..at + payload.end]);
                at += consumed;
            }
            Opened::Closed { consumed } => {
                at += consumed;
                if at < wire.len() {
                    opener.open(&mut wire[at..])?;
                }
                return Ok((plain, true));
            }
        }
    }
    Ok((plain, false))
}

fn serve() -> ServeId {
    ServeId::new(700).unwrap()
}

/// A stream of three records and a close, from the visitor.
fn sealed_stream(a: &PairKey, number: u64) -> (StreamHeader, Vec<u8>, Vec<usize>) {
    let (header, mut crypto) = a.visit(serve(), number);
    let mut wire = Vec::new();
    let mut bounds = vec![0];
    for chunk in [&b"GET / HTTP/1.1\r\n"[..], &[7u8; MAX_PAYLOAD], b"marker"] {
        crypto.sealer.seal(chunk, &mut wire);
        bounds.push(wire.len());
    }
    crypto.sealer.seal_close(&mut wire);
    bounds.push(wire.len());
    (header, wire, bounds)
}

#[test]
fn a_stream_opens_byte_exact_on_the_other_side_with_either_cipher() {
    for cipher in [Cipher::Aes128Gcm, Cipher::ChaCha20Poly1305] {
        let (a, b) = keys(cipher);
        let (header, wire, _) = sealed_stream(&a, 0);
        assert!(
            !wire.windows(6).any(|w| w == b"marker"),
            "plain text on the wire"
        );
        let header = StreamHeader::decode(&header.encode()).unwrap();
        let mut crypto = b.serve(serve(), &header).unwrap();
        let (plain, closed) = open_all(&mut crypto.opener, wire).unwrap();
        assert!(closed);
        assert_eq!(plain.len(), 16 + MAX_PAYLOAD + 6);
        assert!(plain.ends_with(b"marker"));
        crypto.opener.at_end().unwrap();
        // And back.
        let (_, mut visitor) = a.visit(serve(), 0);
        let mut back = Vec::new();
        crypto.sealer.seal(b"HTTP/1.1 200 OK", &mut back);
        crypto.sealer.seal_close(&mut back);
        let (plain, closed) = open_all(&mut visitor.opener, back).unwrap();
        assert_eq!((plain.as_slice(), closed), (&b"HTTP/1.1 200 OK"[..], true));
    }
}

#[test]
fn a_flipped_byte_a_dropped_or_repeated_record_and_a_cut_all_fail() {
    let (a, b) = keys(Cipher::preferred());
    let (header, wire, bounds) = sealed_stream(&a, 1);
    let opener = || b.serve(serve(), &header).unwrap().opener;
    for at in [0, 1, 2, 40, bounds[1] + 5, wire.len() - 1] {
        let mut flipped = wire.clone();
        flipped[at] ^= 0x20;
        let result = open_all(&mut opener(), flipped);
        assert!(
            matches!(result, Err(RecordError::Forged | RecordError::Malformed))
                || !result.unwrap().1,
            "a flip at {at} went unnoticed"
        );
    }
    let dropped = [&wire[..bounds[1]], &wire[bounds[2]..]].concat();
    assert_eq!(open_all(&mut opener(), dropped), Err(RecordError::Forged));
    let repeated = [&wire[..bounds[2]], &wire[bounds[1]..]].concat();
    assert_eq!(open_all(&mut opener(), repeated), Err(RecordError::Forged));
    // Cut before the close record: the data so far opens, the end does not.
    let mut cut = opener();
    let (plain, closed) = open_all(&mut cut, wire[..bounds[3]].to_vec()).unwrap();
    assert!(!closed && plain.ends_with(b"marker"));
    assert_eq!(cut.at_end(), Err(RecordError::Truncated));
    // Bytes after the close record.
    let mut extra = wire.clone();
    extra.extend_from_slice(&wire[..bounds[1]]);
    assert_eq!(open_all(&mut opener(), extra), Err(RecordError::AfterClose));
}

#[test]
fn records_open_only_in_their_own_stream_serve_and_pair() {
    let (a, b) = keys(Cipher::preferred());
    let (_, wire_1, _) = sealed_stream(&a, 1);
    let (header_2, _, _) = sealed_stream(&a, 2);
    // Stream 1's records under stream 2's header: swapped by the route.
    let mut swapped = b.serve(serve(), &header_2).unwrap().opener;
    assert_eq!(
        open_all(&mut swapped, wire_1.clone()),
        Err(RecordError::Forged)
    );
    // The same stream taken to another serve.
    let (header_1, _, _) = sealed_stream(&a, 1);
    let other = ServeId::new(701).unwrap();
    let mut elsewhere = b.serve(other, &header_1).unwrap().opener;
    assert_eq!(open_all(&mut elsewhere, wire_1), Err(RecordError::Forged));
    // A header under another pair key is not this pair's.
    let (c, _) = keys(Cipher::preferred());
    let (foreign, _) = c.visit(serve(), 1);
    assert!(b.serve(serve(), &foreign).is_none());
    // Both directions have their own key: a visitor's record does not
    // open as the server's.
    let (_, mut visitor) = a.visit(serve(), 3);
    let mut wire = Vec::new();
    visitor.sealer.seal(b"x", &mut wire);
    assert_eq!(
        open_all(&mut visitor.opener, wire),
        Err(RecordError::Forged)
    );
}

#[test]
fn headers_and_record_sizes() {
    let (a, _) = keys(Cipher::preferred());
    let (header, _) = a.visit(serve(), u64::MAX);
    let bytes = header.encode();
    assert_eq!(bytes.len(), HEADER_LEN);
    assert_eq!(StreamHeader::decode(&bytes), Some(header));
    let mut plain = bytes;
    plain[0] = b'G';
    assert_eq!(
        StreamHeader::decode(&plain),
        None,
        "a plain stream is not sealed"
    );
    let mut sealer = Sealer::new(Cipher::preferred(), &[1; 32]);
    let mut wire = Vec::new();
    sealer.seal(&[0; 100], &mut wire);
    assert_eq!(wire.len(), 100 + OVERHEAD);
    // A length beyond the largest record is refused before any work.
    let mut opener = Opener::new(Cipher::preferred(), &[1; 32]);
    let mut huge = vec![0xff, 0xff, 0];
    assert_eq!(opener.open(&mut huge), Err(RecordError::Malformed));
    assert_eq!(opener.open(&mut [0]), Ok(Opened::Incomplete));
}

#[test]
fn an_ask_proves_its_asker_and_address() {
    let (a, b) = keys(Cipher::preferred());
    let proof = a.prove_ask(3, "127.0.0.1", 8888);
    assert!(b.checks_ask(&proof, "127.0.0.1", 8888));
    assert!(!b.checks_ask(&proof, "127.0.0.1", 22), "another port");
    assert!(!b.checks_ask(&proof, "127.0.0.2", 8888), "another address");
    let renumbered = super::ask::AskProof { number: 4, ..proof };
    assert!(!b.checks_ask(&renumbered, "127.0.0.1", 8888));
    let (c, _) = keys(Cipher::preferred());
    assert!(!c.checks_ask(&proof, "127.0.0.1", 8888), "another pair");
}

#[test]
fn a_link_binding_proves_its_end_of_this_tls_session_only() {
    let (a, b) = keys(Cipher::preferred());
    let exporter = [5u8; 32];
    let dialer = a.prove_link(&exporter, true);
    assert!(b.checks_link(&dialer, &exporter, true));
    assert!(
        !b.checks_link(&dialer, &exporter, false),
        "the other end's role"
    );
    assert!(
        !b.checks_link(&dialer, &[6; 32], true),
        "another TLS session"
    );
    let (c, _) = keys(Cipher::preferred());
    assert!(!c.checks_link(&dialer, &exporter, true), "another pair");
    let accepter = b.prove_link(&exporter, false);
    assert!(a.checks_link(&accepter, &exporter, false));
    assert_ne!(
        dialer, accepter,
        "a proof cannot be sent back as the answer"
    );
}
