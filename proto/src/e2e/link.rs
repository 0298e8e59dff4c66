//! A direct link bound to a pair key: with `secret=`, each end of a new
//! link proves with the pair's key that it holds this very TLS session
//! (an exporter value both ends derive from the handshake, which no one
//! in the middle of two handshakes shares). The route introduces the two
//! vnets and hands each the other's certificate fingerprint, so without
//! this it could sit in the middle of the link; with it, it cannot.
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::pairing::PairKey;
use crate::auth::Proof;

/// The TLS exporter label a link's binding is made from.
pub const EXPORTER_LABEL: &[u8] = b"vnet direct link binding";

impl PairKey {
    fn link_mac(&self, exporter: &[u8; 32], dialer: bool) -> Proof {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length");
        mac.update(b"vnet e2e direct link");
        mac.update(&self.id.0);
        mac.update(&[u8::from(dialer)]);
        mac.update(exporter);
        Proof(mac.finalize().into_bytes().into())
    }

    /// This end's proof for the link whose exporter value is `exporter`;
    /// `dialer` says which end this is (the two proofs differ).
    pub fn prove_link(&self, exporter: &[u8; 32], dialer: bool) -> Proof {
        self.link_mac(exporter, dialer)
    }

    /// Whether `proof` is the other end's for this link.
    pub fn checks_link(&self, proof: &Proof, exporter: &[u8; 32], other_dials: bool) -> bool {
        self.link_mac(exporter, other_dials).matches(proof)
    }
}
