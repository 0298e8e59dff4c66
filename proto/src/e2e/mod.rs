//! End to end between vnets: what two vnets of a group that share a
//! secret (`[vnet] secret=`) agree on and how their streams are sealed,
//! so the route carries bytes it cannot read, alter, reorder, replay or
//! cut unnoticed. Pure: no sockets, no clock.
//!
//! - [`pairing`]: once per pair of vnets, a SPAKE2 exchange with the
//!   group secret as the password, relayed by the route, binding both
//!   names and both long-term public keys. The route sees the exchange
//!   and can test no guess of the secret offline; a route that plays
//!   either side gets one guess per exchange, and each failure is seen.
//!   Both end with a [`pairing::PairKey`].
//! - [`stream`]: each stream's keys, derived from the pair key, the
//!   serve id and a stream number the visitor picks (sent in a short
//!   header): no round trip before the first byte, and a start replayed
//!   by the route is refused by number.
//! - [`ask`]: unserve asks proved with the pair key, so the route cannot
//!   ask in a vnet's name.
//! - [`record`]: the sealed byte stream: records of at most
//!   [`record::MAX_PAYLOAD`] bytes, each an AEAD with a counter nonce,
//!   ended by a sealed close record, so a cut shows as an error.
pub mod ask;
pub mod link;
pub mod pairing;
pub mod record;
pub mod stream;

use std::fmt;

/// The secret the vnets of a group share; never sent, in any form.
/// Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupSecret(String);

impl GroupSecret {
    /// The secret from config text.
    pub fn new(text: &str) -> Self {
        Self(text.to_string())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for GroupSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupSecret(***)")
    }
}

/// Which AEAD a pair's streams use: AES-128-GCM where both sides have
/// AES instructions, ChaCha20-Poly1305 otherwise (fast in software).
/// AES-128 rather than 256: a fresh key per stream and direction, and
/// about a third less CPU per byte for the same 128-bit security margin
/// against anything but a quantum computer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// AES-128-GCM.
    Aes128Gcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

impl Cipher {
    /// What this machine runs fastest.
    pub fn preferred() -> Self {
        if has_aes_instructions() {
            Self::Aes128Gcm
        } else {
            Self::ChaCha20Poly1305
        }
    }

    /// The one both use: AES-GCM only if both prefer it.
    pub fn agreed(a: Self, b: Self) -> Self {
        if a == Self::Aes128Gcm && b == Self::Aes128Gcm {
            Self::Aes128Gcm
        } else {
            Self::ChaCha20Poly1305
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Aes128Gcm => 1,
            Self::ChaCha20Poly1305 => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Aes128Gcm),
            2 => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }

    fn algorithm(self) -> &'static ring::aead::Algorithm {
        match self {
            Self::Aes128Gcm => &ring::aead::AES_128_GCM,
            Self::ChaCha20Poly1305 => &ring::aead::CHACHA20_POLY1305,
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_aes_instructions() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn has_aes_instructions() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn has_aes_instructions() -> bool {
    false
}

#[cfg(test)]
mod tests;
