//! Unserve asks sealed end to end: a vnet asking another for a grant
//! proves, with their pair key, that the ask is its own and new, so the
//! route (which relays it) cannot ask in its name, change the address or
//! replay an old ask.
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::pairing::{PairId, PairKey};
use crate::auth::Proof;

/// What an ask carries to prove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskProof {
    /// The pair key it was made with.
    pub pair: PairId,
    /// The asker's number for it (each is taken once).
    pub number: u64,
    /// An HMAC over the pair, the number and the address asked for.
    pub mac: Proof,
}

impl PairKey {
    fn ask_mac(&self, number: u64, ip: &str, port: u16) -> Proof {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length");
        mac.update(b"vnet e2e unserve ask");
        mac.update(&self.id.0);
        mac.update(&number.to_be_bytes());
        mac.update(&(ip.len() as u64).to_be_bytes());
        mac.update(ip.as_bytes());
        mac.update(&port.to_be_bytes());
        Proof(mac.finalize().into_bytes().into())
    }

    /// The proof of ask `number` for `ip:port`.
    pub fn prove_ask(&self, number: u64, ip: &str, port: u16) -> AskProof {
        AskProof {
            pair: self.id,
            number,
            mac: self.ask_mac(number, ip, port),
        }
    }

    /// Whether `proof` was made with this key for `ip:port`. (Whether its
    /// number is new is the caller's to check.)
    pub fn checks_ask(&self, proof: &AskProof, ip: &str, port: u16) -> bool {
        proof.pair == self.id && self.ask_mac(proof.number, ip, port).matches(&proof.mac)
    }
}
