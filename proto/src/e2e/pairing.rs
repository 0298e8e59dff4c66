//! Two vnets of a group agreeing on a pair key through the route, which
//! relays the three messages and must learn nothing it could use.
//!
//! SPAKE2 over Ed25519 with the group secret as the password and the two
//! vnets' names as the identities (A is the vnet that starts):
//! 1. A sends an [`Offer`]: its PAKE message, its long-term public key
//!    and the cipher it prefers.
//! 2. B answers with an [`Answer`]: the same of its own, and its
//!    confirmation.
//! 3. A checks it and sends its own confirmation; B checks that.
//!
//! The confirmations are HMACs over a transcript of the group, both
//! names, both public keys, both cipher preferences and both PAKE
//! messages, so a route that changes any of them, or substitutes a key,
//! fails the exchange. As in the token exchange (see `crate::auth`),
//! a recorded exchange tests no guess of the secret, and one the route
//! takes part in tests one.
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use std::fmt;

use super::{Cipher, GroupSecret};
use crate::auth::{PakeMsg, Proof, PAKE_LEN};

/// HKDF salt: this exchange and its version.
const SALT: &[u8] = b"vnet e2e pairing 1";

/// A vnet's long-term public key (Ed25519), kept with its config.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);
crate::hex::hex_bytes!(PublicKey, 32);

/// Names a pair key: the header of each stream carries it, so a stream
/// sealed under an older key is told apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PairId(pub [u8; 8]);
crate::hex::hex_bytes!(PairId, 8);

/// One side as it enters the exchange.
#[derive(Debug, Clone, Copy)]
pub struct Party<'a> {
    /// Its name in the group.
    pub name: &'a str,
    /// Its long-term public key.
    pub key: PublicKey,
    /// The cipher it runs fastest.
    pub cipher: Cipher,
}

/// The starting vnet's first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// A's SPAKE2 message.
    pub pake: PakeMsg,
    /// A's long-term public key.
    pub key: PublicKey,
    /// [`Cipher`]'s code.
    pub cipher: u8,
}

/// The other vnet's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// B's SPAKE2 message.
    pub pake: PakeMsg,
    /// B's long-term public key.
    pub key: PublicKey,
    /// [`Cipher`]'s code.
    pub cipher: u8,
    /// Proves B derived the same key from the same exchange.
    pub confirm: Proof,
}

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// A message is not a valid one.
    #[error("malformed pairing message")]
    Malformed,
    /// A confirmation does not match: the peer has another secret (or
    /// none), or something on the way changed the exchange.
    #[error("the peer does not prove the group secret (another secret, or the exchange was altered on the way)")]
    Mismatch,
}

/// What two vnets share once paired. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct PairKey {
    pub(super) secret: [u8; 32],
    /// Names this key in stream headers.
    pub id: PairId,
    /// The AEAD of the pair's streams.
    pub cipher: Cipher,
    /// The peer's long-term public key, as proved in the exchange.
    pub peer_key: PublicKey,
}

impl fmt::Debug for PairKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairKey")
            .field("id", &self.id)
            .field("cipher", &self.cipher)
            .field("peer_key", &self.peer_key)
            .finish_non_exhaustive()
    }
}

/// Both sides' contributions, in A-then-B order.
struct Transcript<'a> {
    group: &'a str,
    a: (&'a str, &'a PublicKey, u8, &'a PakeMsg),
    b: (&'a str, &'a PublicKey, u8, &'a PakeMsg),
}

/// What both sides derive from the PAKE's shared secret.
struct Derived {
    a_confirm: Proof,
    b_confirm: Proof,
    key: PairKey,
}

impl Transcript<'_> {
    fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        let (a, b) = (self.a, self.b);
        let parts: [&[u8]; 9] = [
            self.group.as_bytes(),
            a.0.as_bytes(),
            &a.1 .0,
            &[a.2],
            &a.3 .0,
            b.0.as_bytes(),
            &b.1 .0,
            &[b.2],
            &b.3 .0,
        ];
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        for part in parts {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        hash.finalize().into()
    }

    /// `peer_key` is the other side's, from where `derive` is called.
    fn derive(&self, shared: &[u8], cipher: Cipher, peer_key: PublicKey) -> Derived {
        let transcript = self.digest();
        let hkdf = Hkdf::<Sha256>::new(Some(SALT), shared);
        let expand = |label: &[u8], out: &mut [u8]| {
            let info = [label, &transcript].concat();
            hkdf.expand(&info, out)
                .expect("short outputs are valid HKDF-SHA256 lengths");
        };
        let confirm = |label: &[u8]| {
            let mut key = [0u8; 32];
            expand(label, &mut key);
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
                .expect("HMAC takes keys of any length");
            mac.update(&transcript);
            Proof(mac.finalize().into_bytes().into())
        };
        let (mut secret, mut id) = ([0u8; 32], [0u8; 8]);
        expand(b"pair key", &mut secret);
        expand(b"pair id", &mut id);
        Derived {
            a_confirm: confirm(b"a confirmation"),
            b_confirm: confirm(b"b confirmation"),
            key: PairKey {
                secret,
                id: PairId(id),
                cipher,
                peer_key,
            },
        }
    }
}

fn cipher_of(code: u8) -> Result<Cipher, PairError> {
    Cipher::from_code(code).ok_or(PairError::Malformed)
}

fn pake_msg(bytes: &[u8]) -> PakeMsg {
    let bytes: [u8; PAKE_LEN] = bytes
        .try_into()
        .expect("SPAKE2 Ed25519 messages are 33 bytes");
    PakeMsg(bytes)
}

/// The starting vnet (A), between its offer and the answer.
pub struct Initiator {
    state: Spake2<Ed25519Group>,
    group: String,
    name: String,
    peer_name: String,
    offer: Offer,
}

impl Initiator {
    /// Starts pairing `me` with the vnet named `peer_name` in `group`.
    pub fn start(
        secret: &GroupSecret,
        group: &str,
        me: Party<'_>,
        peer_name: &str,
    ) -> (Self, Offer) {
        let (state, msg) = Spake2::<Ed25519Group>::start_a(
            &Password::new(secret.bytes()),
            &Identity::new(me.name.as_bytes()),
            &Identity::new(peer_name.as_bytes()),
        );
        let offer = Offer {
            pake: pake_msg(&msg),
            key: me.key,
            cipher: me.cipher.code(),
        };
        let initiator = Self {
            state,
            group: group.to_string(),
            name: me.name.to_string(),
            peer_name: peer_name.to_string(),
            offer: offer.clone(),
        };
        (initiator, offer)
    }

    /// Checks the answer; returns A's confirmation to send and the key.
    ///
    /// # Errors
    /// A malformed answer, or one made without the same secret (or
    /// altered on the way).
    pub fn finish(self, answer: &Answer) -> Result<(Proof, PairKey), PairError> {
        let cipher = Cipher::agreed(cipher_of(self.offer.cipher)?, cipher_of(answer.cipher)?);
        let shared = self
            .state
            .finish(&answer.pake.0)
            .map_err(|_| PairError::Malformed)?;
        let transcript = Transcript {
            group: &self.group,
            a: (
                &self.name,
                &self.offer.key,
                self.offer.cipher,
                &self.offer.pake,
            ),
            b: (&self.peer_name, &answer.key, answer.cipher, &answer.pake),
        };
        let derived = transcript.derive(&shared, cipher, answer.key);
        if !derived.b_confirm.matches(&answer.confirm) {
            return Err(PairError::Mismatch);
        }
        Ok((derived.a_confirm, derived.key))
    }
}

/// The answering vnet (B), between its answer and A's confirmation.
pub struct Responder {
    expected: Proof,
    key: PairKey,
}

impl Responder {
    /// Answers an offer from the vnet named `peer_name` in `group`.
    ///
    /// # Errors
    /// The offer is malformed.
    pub fn answer(
        secret: &GroupSecret,
        group: &str,
        me: Party<'_>,
        peer_name: &str,
        offer: &Offer,
    ) -> Result<(Self, Answer), PairError> {
        let theirs = cipher_of(offer.cipher)?;
        let (state, msg) = Spake2::<Ed25519Group>::start_b(
            &Password::new(secret.bytes()),
            &Identity::new(peer_name.as_bytes()),
            &Identity::new(me.name.as_bytes()),
        );
        let pake = pake_msg(&msg);
        let shared = state
            .finish(&offer.pake.0)
            .map_err(|_| PairError::Malformed)?;
        let ours = me.cipher.code();
        let transcript = Transcript {
            group,
            a: (peer_name, &offer.key, offer.cipher, &offer.pake),
            b: (me.name, &me.key, ours, &pake),
        };
        let derived = transcript.derive(&shared, Cipher::agreed(theirs, me.cipher), offer.key);
        let answer = Answer {
            pake,
            key: me.key,
            cipher: ours,
            confirm: derived.b_confirm,
        };
        let responder = Self {
            expected: derived.a_confirm,
            key: derived.key,
        };
        Ok((responder, answer))
    }

    /// Checks A's confirmation; returns the key.
    ///
    /// # Errors
    /// A has another secret, or the exchange was altered on the way.
    pub fn check(self, confirm: &Proof) -> Result<PairKey, PairError> {
        if self.expected.matches(confirm) {
            Ok(self.key)
        } else {
            Err(PairError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests;
