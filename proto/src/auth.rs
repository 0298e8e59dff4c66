//! Proving knowledge of the shared token without sending it, without
//! letting anyone test guesses offline, and agreeing on a session secret.
//!
//! SPAKE2 over Ed25519 (RustCrypto's `spake2`), with the token as the
//! password:
//! 1. The vnet's hello carries its PAKE message.
//! 2. The route answers with its own PAKE message and its confirmation.
//! 3. The vnet checks that confirmation, then sends its own; the route
//!    checks it and welcomes the vnet.
//!
//! Both sides end with the same 32-byte secret only if they used the same
//! token. A recorded handshake, or one an attacker provokes from either
//! side, verifies no guess offline: each handshake tests at most the one
//! guess the attacker committed to in its own PAKE message, so a weak token
//! costs one live connection per guess. The confirmations are HMAC-SHA256
//! over a transcript of the vnet's name and group and both PAKE messages,
//! each side under its own key (so neither can be passed off as the
//! other's, and a name or group changed on the way fails both). Keys come
//! from the PAKE's secret by HKDF-SHA256; the session secret that admits
//! data connections (see [`crate::pass`]) is derived the same way and is
//! never sent.
//!
//! A side without a token uses the empty password, so a token missing on
//! one side fails like a wrong one.
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use std::fmt;

/// The vnet's identity in the exchange (SPAKE2's side A).
const VNET_IDENTITY: &[u8] = b"vnet";
/// The route's identity (side B).
const ROUTE_IDENTITY: &[u8] = b"vnet route";
/// HKDF salt: the protocol and its version, so keys never repeat across
/// versions.
const SALT: &[u8] = b"vnet protocol 3";

/// Length of a SPAKE2 Ed25519 message: a side byte and a point.
pub const PAKE_LEN: usize = 33;

/// One side's SPAKE2 message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PakeMsg(pub [u8; PAKE_LEN]);

/// A 32-byte MAC: a key confirmation, or a data connection's pass.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Proof(pub [u8; 32]);

impl Proof {
    /// Compares in constant time.
    pub fn matches(&self, other: &Proof) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The shared token; its `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token from config text; empty means none.
    pub fn new(text: &str) -> Self {
        Self(text.to_string())
    }

    /// Whether a token is set.
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    fn password(&self) -> Password {
        Password::new(self.0.as_bytes())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() {
            "Token(***)"
        } else {
            "Token(none)"
        })
    }
}

/// The secret a session's data connections are admitted with; known to
/// the vnet and the route only. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(pub(crate) [u8; 32]);

impl SessionSecret {
    /// A secret from its bytes (for tests, and for programs that keep it).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret(***)")
    }
}

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The other side's PAKE message is not a valid one.
    #[error("malformed key-exchange message")]
    Malformed,
    /// The other side's confirmation does not match: it used another
    /// token (or none), or the exchange was tampered with.
    #[error("key confirmation failed")]
    Mismatch,
}

/// What both sides derive once the PAKE is done.
struct Keys {
    route_confirm: Proof,
    vnet_confirm: Proof,
    secret: SessionSecret,
}

impl Keys {
    fn derive(shared: &[u8], name: &str, group: &str, vnet: &PakeMsg, route: &PakeMsg) -> Self {
        let mut transcript = Sha256::new();
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        for part in [name.as_bytes(), group.as_bytes(), &vnet.0, &route.0] {
            transcript.update((part.len() as u64).to_be_bytes());
            transcript.update(part);
        }
        let transcript = transcript.finalize();
        let hkdf = Hkdf::<Sha256>::new(Some(SALT), shared);
        let key = |label: &[u8]| {
            let mut out = [0u8; 32];
            hkdf.expand(label, &mut out)
                .expect("32 bytes is a valid HKDF-SHA256 length");
            out
        };
        let confirm = |label: &[u8]| {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key(label))
                .expect("HMAC takes keys of any length");
            mac.update(&transcript);
            Proof(mac.finalize().into_bytes().into())
        };
        let mut secret_info = b"session secret".to_vec();
        secret_info.extend_from_slice(&transcript);
        Self {
            route_confirm: confirm(b"route confirmation"),
            vnet_confirm: confirm(b"vnet confirmation"),
            secret: SessionSecret(key(&secret_info)),
        }
    }
}

fn identities() -> (Identity, Identity) {
    (Identity::new(VNET_IDENTITY), Identity::new(ROUTE_IDENTITY))
}

fn pake_msg(bytes: &[u8]) -> PakeMsg {
    PakeMsg(
        bytes
            .try_into()
            .expect("SPAKE2 Ed25519 messages are 33 bytes"),
    )
}

/// The vnet's half of the exchange, between its hello and the challenge.
pub struct VnetExchange {
    state: Spake2<Ed25519Group>,
    ours: PakeMsg,
    name: String,
    group: String,
}

impl VnetExchange {
    /// Starts an exchange for a vnet with this name and group; the message
    /// goes in the hello.
    pub fn start(token: &Token, name: &str, group: &str) -> (Self, PakeMsg) {
        let (vnet, route) = identities();
        let (state, msg) = Spake2::<Ed25519Group>::start_a(&token.password(), &vnet, &route);
        let ours = pake_msg(&msg);
        let exchange = Self {
            state,
            ours,
            name: name.to_string(),
            group: group.to_string(),
        };
        (exchange, ours)
    }

    /// Checks the route's challenge; returns the vnet's confirmation to
    /// send and the session secret.
    ///
    /// # Errors
    /// A malformed message, or a confirmation made with another token.
    pub fn finish(
        self,
        route: &PakeMsg,
        route_confirm: &Proof,
    ) -> Result<(Proof, SessionSecret), AuthError> {
        let shared = self
            .state
            .finish(&route.0)
            .map_err(|_| AuthError::Malformed)?;
        let keys = Keys::derive(&shared, &self.name, &self.group, &self.ours, route);
        if !keys.route_confirm.matches(route_confirm) {
            return Err(AuthError::Mismatch);
        }
        Ok((keys.vnet_confirm, keys.secret))
    }
}

/// The route's half of the exchange, between the challenge and the
/// vnet's confirmation.
pub struct RouteExchange {
    expected: Proof,
    secret: SessionSecret,
}

impl RouteExchange {
    /// Answers a hello: the route's PAKE message and confirmation, for the
    /// challenge.
    ///
    /// # Errors
    /// The vnet's PAKE message is malformed.
    pub fn answer(
        token: &Token,
        name: &str,
        group: &str,
        vnet: &PakeMsg,
    ) -> Result<(Self, PakeMsg, Proof), AuthError> {
        let (vnet_id, route_id) = identities();
        let (state, msg) = Spake2::<Ed25519Group>::start_b(&token.password(), &vnet_id, &route_id);
        let ours = pake_msg(&msg);
        let shared = state.finish(&vnet.0).map_err(|_| AuthError::Malformed)?;
        let keys = Keys::derive(&shared, name, group, vnet, &ours);
        let exchange = Self {
            expected: keys.vnet_confirm,
            secret: keys.secret,
        };
        Ok((exchange, ours, keys.route_confirm))
    }

    /// Checks the vnet's confirmation; returns the session secret.
    ///
    /// # Errors
    /// The vnet used another token, or none.
    pub fn check(self, vnet_confirm: &Proof) -> Result<SessionSecret, AuthError> {
        if self.expected.matches(vnet_confirm) {
            Ok(self.secret)
        } else {
            Err(AuthError::Mismatch)
        }
    }
}

crate::hex::hex_bytes!(PakeMsg, 33);
crate::hex::hex_bytes!(Proof, 32);

#[cfg(test)]
mod tests;
