//! The fixed bytes that open every connection: magic, then version.
//!
//! Kept outside the frame codec so that a peer speaking something else
//! entirely (HTTP, an old vnet) is told apart before any length prefix is
//! trusted.
use crate::{MAGIC, PROTOCOL_VERSION};

/// Length of the preamble on the wire.
pub const LEN: usize = 6;

/// What was wrong with a received preamble.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreambleError {
    /// The first four bytes are not `VNET`.
    #[error("peer is not a vnet or route: it sent {}", describe(.0))]
    BadMagic([u8; 4]),
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {peer}, this side speaks {ours}")]
    Version {
        /// The peer's version.
        peer: u16,
        /// Ours, [`PROTOCOL_VERSION`].
        ours: u16,
    },
}

/// The first bytes of a stranger, as text when printable, with a guess at
/// what sent them.
///
/// ```
/// use proto::preamble::describe;
/// assert_eq!(describe(b"SSH-"), "\"SSH-\" (an ssh client?)");
/// assert_eq!(describe(&[0x16, 3, 1, 0]), "16 03 01 00 (a TLS client? check tls= on both sides)");
/// ```
pub fn describe(bytes: &[u8; 4]) -> String {
    let guess = match bytes {
        b"SSH-" => Some("an ssh client?"),
        b"GET " | b"POST" | b"HEAD" | b"PUT " | b"OPTI" | b"CONN" => Some("an HTTP client?"),
        [0x16, 0x03, ..] => Some("a TLS client? check tls= on both sides"),
        _ => None,
    };
    let shown = if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        crate::hex::encode(bytes)
            .as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    match guess {
        Some(guess) => format!("{shown} ({guess})"),
        None => shown,
    }
}

/// Our preamble, ready to send.
pub fn encode() -> [u8; LEN] {
    let v = PROTOCOL_VERSION.to_be_bytes();
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], v[0], v[1]]
}

/// Checks a received preamble.
///
/// ```
/// assert!(proto::preamble::check(&proto::preamble::encode()).is_ok());
/// assert!(proto::preamble::check(b"GET / ").is_err());
/// ```
pub fn check(bytes: &[u8; LEN]) -> Result<(), PreambleError> {
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if magic != MAGIC {
        return Err(PreambleError::BadMagic(magic));
    }
    let peer = u16::from_be_bytes([bytes[4], bytes[5]]);
    if peer != PROTOCOL_VERSION {
        return Err(PreambleError::Version {
            peer,
            ours: PROTOCOL_VERSION,
        });
    }
    Ok(())
}
