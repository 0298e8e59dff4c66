//! Proving knowledge of the shared token without sending it.
//!
//! Each side contributes a fresh random nonce. The route proves itself with
//! `HMAC-SHA256(token, "vnet route" | vnet nonce | route nonce)`, the vnet
//! with `HMAC-SHA256(token, "vnet vnet" | route nonce | vnet nonce | name |
//! group)`. The labels keep one side's proof from passing as the other's;
//! the route's fresh nonce keeps a recorded vnet proof from being replayed.
//! A side without a token uses the empty key, so a token missing on one
//! side fails like a wrong one.
//!
//! Pure functions: the caller draws the nonces.
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;
use std::fmt;

/// 32 random bytes, fresh per handshake.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce(pub [u8; 32]);

/// An HMAC-SHA256 value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Proof(pub [u8; 32]);

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

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_bytes())
            .expect("HMAC takes keys of any length")
    }

    /// The route's proof for this pair of nonces.
    pub fn route_proof(&self, vnet_nonce: &Nonce, route_nonce: &Nonce) -> Proof {
        let mut mac = self.mac();
        mac.update(b"vnet route");
        mac.update(&vnet_nonce.0);
        mac.update(&route_nonce.0);
        Proof(mac.finalize().into_bytes().into())
    }

    /// The vnet's proof, bound to its name and group as sent in its hello.
    pub fn vnet_proof(
        &self,
        route_nonce: &Nonce,
        vnet_nonce: &Nonce,
        name: &str,
        group: &str,
    ) -> Proof {
        let mut mac = self.mac();
        mac.update(b"vnet vnet");
        mac.update(&route_nonce.0);
        mac.update(&vnet_nonce.0);
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        for text in [name, group] {
            mac.update(&(text.len() as u64).to_be_bytes());
            mac.update(text.as_bytes());
        }
        Proof(mac.finalize().into_bytes().into())
    }
}

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

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() {
            "Token(***)"
        } else {
            "Token(none)"
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    // from_str_radix alone would also take a leading '+'.
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

macro_rules! hex_bytes {
    ($type:ident) => {
        impl fmt::Debug for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($type), hex(&self.0))
            }
        }

        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex(&self.0))
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                unhex(&text)
                    .map($type)
                    .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
            }
        }
    };
}

hex_bytes!(Nonce);
hex_bytes!(Proof);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_agree_only_with_the_same_token_and_nonces() {
        let (a, b) = (Nonce([1; 32]), Nonce([2; 32]));
        let token = Token::new("s3cret");
        assert!(token
            .route_proof(&a, &b)
            .matches(&Token::new("s3cret").route_proof(&a, &b)));
        assert!(!token
            .route_proof(&a, &b)
            .matches(&Token::new("other").route_proof(&a, &b)));
        assert!(!token
            .route_proof(&a, &b)
            .matches(&Token::default().route_proof(&a, &b)));
        assert!(!token
            .route_proof(&a, &b)
            .matches(&token.route_proof(&a, &Nonce([3; 32]))));
        // The labels keep the two sides' proofs apart.
        assert!(!token
            .route_proof(&a, &b)
            .matches(&token.vnet_proof(&a, &b, "", "")));
        assert!(!token
            .vnet_proof(&b, &a, "ab", "c")
            .matches(&token.vnet_proof(&b, &a, "a", "bc")));
    }

    #[test]
    fn hex_round_trip_and_masked_debug() {
        let nonce = Nonce([0xab; 32]);
        let json = serde_json::to_string(&nonce).unwrap();
        assert_eq!(json.len(), 66);
        assert!(serde_json::from_str::<Nonce>(&json).unwrap() == nonce);
        assert!(serde_json::from_str::<Nonce>("\"zz\"").is_err());
        assert_eq!(format!("{:?}", Token::new("s3cret")), "Token(***)");
    }
}
