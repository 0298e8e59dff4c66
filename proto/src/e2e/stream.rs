//! One stream's keys, from the pair key without a round trip.
//!
//! The visitor numbers its streams to a peer (counting up from 0 under
//! each pair key) and starts each with a [`StreamHeader`]: the pair key's
//! id and the number, in the clear. Both sides derive the stream's two
//! keys, one per direction, from the pair key, the serve id and the
//! number, so a stream's records open only in that stream and only
//! toward that serve. The serving side admits each number once (a
//! `crate::pass::ReplayWindow` per pair), so a start replayed by the route
//! is refused.
use hkdf::Hkdf;
use sha2::Sha256;

use super::pairing::{PairId, PairKey};
use super::record::{Opener, Sealer};
use crate::ServeId;

/// Bytes of a [`StreamHeader`] on the wire.
pub const HEADER_LEN: usize = 4 + 8 + 8;

/// Marks a sealed stream's start, so a plain one is told apart.
const MAGIC: [u8; 4] = *b"VE2E";

/// What a sealed stream starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHeader {
    /// The pair key the stream is sealed under.
    pub pair: PairId,
    /// The visitor's number for it.
    pub number: u64,
}

impl StreamHeader {
    /// The header as sent.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4..12].copy_from_slice(&self.pair.0);
        out[12..].copy_from_slice(&self.number.to_be_bytes());
        out
    }

    /// `None` unless `bytes` start a sealed stream.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Option<Self> {
        if bytes[..4] != MAGIC {
            return None;
        }
        let pair = PairId(bytes[4..12].try_into().expect("8 bytes"));
        let number = u64::from_be_bytes(bytes[12..].try_into().expect("8 bytes"));
        Some(Self { pair, number })
    }
}

/// One side's halves of a stream: what it sends and what it receives.
pub struct StreamCrypto {
    /// Seals what this side sends.
    pub sealer: Sealer,
    /// Opens what it receives.
    pub opener: Opener,
}

impl PairKey {
    /// The visitor's side of stream `number` to `serve`, and its header.
    pub fn visit(&self, serve: ServeId, number: u64) -> (StreamHeader, StreamCrypto) {
        let [to_server, to_visitor] = self.stream_keys(serve, number);
        let header = StreamHeader {
            pair: self.id,
            number,
        };
        let crypto = StreamCrypto {
            sealer: Sealer::new(self.cipher, &to_server),
            opener: Opener::new(self.cipher, &to_visitor),
        };
        (header, crypto)
    }

    /// The serving side of the stream `header` starts, toward `serve`;
    /// `None` if it is sealed under another pair key. (Whether its number
    /// is new is the caller's to check.)
    pub fn serve(&self, serve: ServeId, header: &StreamHeader) -> Option<StreamCrypto> {
        if header.pair != self.id {
            return None;
        }
        let [to_server, to_visitor] = self.stream_keys(serve, header.number);
        Some(StreamCrypto {
            sealer: Sealer::new(self.cipher, &to_visitor),
            opener: Opener::new(self.cipher, &to_server),
        })
    }

    /// The keys toward the server and toward the visitor.
    fn stream_keys(&self, serve: ServeId, number: u64) -> [[u8; 32]; 2] {
        let hkdf = Hkdf::<Sha256>::from_prk(&self.secret).expect("32 bytes is a valid PRK");
        let key = |direction: &[u8]| {
            let info = [
                b"vnet e2e stream".as_slice(),
                &serve.get().to_be_bytes(),
                &number.to_be_bytes(),
                direction,
            ]
            .concat();
            let mut out = [0u8; 32];
            hkdf.expand(&info, &mut out)
                .expect("32 bytes is a valid HKDF-SHA256 length");
            out
        };
        [key(b"to server"), key(b"to visitor")]
    }
}
