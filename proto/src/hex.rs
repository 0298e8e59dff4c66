//! Hex text for binary values: nonces and proofs on the wire, and the
//! SHA-256 fingerprints of certificates that users pin.
use sha2::{Digest, Sha256};

/// Lowercase hex digits of `bytes`.
///
/// ```
/// assert_eq!(proto::hex::encode(&[0x0a, 0xff]), "0aff");
/// ```
pub fn encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The `N` bytes that `text` spells in exactly `2 * N` hex digits.
///
/// ```
/// assert_eq!(proto::hex::decode::<2>("0aFF"), Some([0x0a, 0xff]));
/// assert_eq!(proto::hex::decode::<2>("+aff"), None);
/// ```
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    // from_str_radix alone would also take a leading '+'.
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// SHA-256 of a certificate's DER bytes, as 64 lowercase hex digits.
///
/// ```
/// assert_eq!(proto::hex::fingerprint(b"").len(), 64);
/// ```
pub fn fingerprint(der: &[u8]) -> String {
    encode(&Sha256::digest(der))
}

/// A fingerprint as users write it (colons, spaces and case ignored), or
/// `None` if it is not 64 hex digits.
///
/// ```
/// use proto::hex::normalize_fingerprint;
/// let colons = "AB:".repeat(31) + "AB";
/// assert_eq!(normalize_fingerprint(&colons), Some("ab".repeat(32)));
/// assert_eq!(normalize_fingerprint("abc"), None);
/// ```
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    decode::<32>(&hex).map(|_| hex)
}

/// Debug, Serialize and Deserialize as hex text for a newtype over
/// `[u8; N]`.
macro_rules! hex_bytes {
    ($type:ident, $len:expr) => {
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($type), crate::hex::encode(&self.0))
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&crate::hex::encode(&self.0))
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                crate::hex::decode::<$len>(&text).map($type).ok_or_else(|| {
                    serde::de::Error::custom(concat!("expected ", $len, " bytes in hex"))
                })
            }
        }
    };
}

pub(crate) use hex_bytes;
