//! A sealed byte stream: a sequence of records, each sealed with the
//! stream's key for its direction and a nonce that counts records, ended
//! by a sealed close record.
//!
//! On the wire a record is a 2-byte length (of what follows) and the
//! AEAD's output over one kind byte and the payload; the length is the
//! associated data. So a record altered, dropped, repeated, moved to
//! another position or another stream fails to open, and a stream cut
//! before its close record is told from one that ended.
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};

use super::Cipher;

/// The AEAD's tag.
const TAG_LEN: usize = 16;
/// Bytes a record adds to its payload: length, kind, tag.
pub const OVERHEAD: usize = 2 + 1 + TAG_LEN;
/// Most payload bytes in one record: a whole record fills a 64 KiB
/// buffer, so a bulk transfer moves 64 KiB per read and per write (16 KiB
/// records took half again as much CPU per byte in the bench).
pub const MAX_PAYLOAD: usize = 64 * 1024 - OVERHEAD;
/// The largest record on the wire.
pub const MAX_RECORD: usize = MAX_PAYLOAD + OVERHEAD;
/// Where a record's payload starts (after the length and the kind).
pub const PAYLOAD_AT: usize = 3;

const DATA: u8 = 0;
const CLOSE: u8 = 1;

/// Why a record did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// It fails authentication: altered, out of place, or from another
    /// stream.
    #[error("a sealed record failed authentication (altered, reordered, or not of this stream)")]
    Forged,
    /// Its length or kind is impossible.
    #[error("a sealed record is malformed")]
    Malformed,
    /// Bytes came after the close record.
    #[error("data after the end of a sealed stream")]
    AfterClose,
    /// The stream ended without its close record: it was cut.
    #[error("a sealed stream ended without its close record (cut on the way)")]
    Truncated,
}

fn key(cipher: Cipher, bytes: &[u8; 32]) -> LessSafeKey {
    let algorithm = cipher.algorithm();
    let unbound = UnboundKey::new(algorithm, &bytes[..algorithm.key_len()])
        .expect("the key is cut to the AEAD's length");
    LessSafeKey::new(unbound)
}

/// The nonce of record `counter`: each key seals one direction of one
/// stream, so counting records never repeats a nonce.
fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[NONCE_LEN - 8..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// Seals what one side sends.
pub struct Sealer {
    key: LessSafeKey,
    counter: u64,
}

impl Sealer {
    /// Seals with a stream direction's key.
    pub fn new(cipher: Cipher, key_bytes: &[u8; 32]) -> Self {
        Self {
            key: key(cipher, key_bytes),
            counter: 0,
        }
    }

    /// Appends `payload` (at most [`MAX_PAYLOAD`] bytes) to `out` as one
    /// record.
    pub fn seal(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        assert!(
            payload.len() <= MAX_PAYLOAD,
            "a record holds at most MAX_PAYLOAD"
        );
        self.record(DATA, payload, out);
    }

    /// Seals, in place, a record whose payload the caller has put at
    /// `record[PAYLOAD_AT..PAYLOAD_AT + n]` (at most [`MAX_PAYLOAD`]
    /// bytes), with room for the tag after it; returns the record's
    /// length. Saves a copy when reading straight into the outgoing
    /// buffer.
    pub fn seal_in_place(&mut self, record: &mut [u8], n: usize) -> usize {
        assert!(n <= MAX_PAYLOAD, "a record holds at most MAX_PAYLOAD");
        let len = (1 + n + TAG_LEN) as u16;
        let length = len.to_be_bytes();
        record[..2].copy_from_slice(&length);
        record[2] = DATA;
        let tag = self
            .key
            .seal_in_place_separate_tag(
                nonce(self.counter),
                Aad::from(length),
                &mut record[2..PAYLOAD_AT + n],
            )
            .expect("records are far below the AEAD's limit");
        record[PAYLOAD_AT + n..PAYLOAD_AT + n + TAG_LEN].copy_from_slice(tag.as_ref());
        self.counter += 1;
        PAYLOAD_AT + n + TAG_LEN
    }

    /// Appends the close record: nothing follows it.
    pub fn seal_close(&mut self, out: &mut Vec<u8>) {
        self.record(CLOSE, &[], out);
    }

    fn record(&mut self, kind: u8, payload: &[u8], out: &mut Vec<u8>) {
        let len = (1 + payload.len() + TAG_LEN) as u16;
        let length = len.to_be_bytes();
        out.extend_from_slice(&length);
        let start = out.len();
        out.push(kind);
        out.extend_from_slice(payload);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(self.counter), Aad::from(length), &mut out[start..])
            .expect("records are far below the AEAD's limit");
        out.extend_from_slice(tag.as_ref());
        self.counter += 1;
    }
}

/// The length on the wire of the record starting `buf`, once its length
/// field has come (`None` before).
///
/// # Errors
/// [`RecordError::Malformed`]: no record is that long or that short.
pub fn wire_len(buf: &[u8]) -> Result<Option<usize>, RecordError> {
    let [a, b, ..] = *buf else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([a, b]));
    if !(1 + TAG_LEN..=1 + MAX_PAYLOAD + TAG_LEN).contains(&len) {
        return Err(RecordError::Malformed);
    }
    Ok(Some(2 + len))
}

/// What the first record of a buffer held.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// More bytes are needed for a whole record.
    Incomplete,
    /// A data record `consumed` bytes long, its payload now in place at
    /// `payload` within the buffer.
    Data {
        /// The record's bytes on the wire.
        consumed: usize,
        /// Where its payload is, opened.
        payload: std::ops::Range<usize>,
    },
    /// The close record, `consumed` bytes long.
    Closed {
        /// The record's bytes on the wire.
        consumed: usize,
    },
}

/// Opens what the other side sent.
pub struct Opener {
    key: LessSafeKey,
    counter: u64,
    closed: bool,
}

impl Opener {
    /// Opens with a stream direction's key.
    pub fn new(cipher: Cipher, key_bytes: &[u8; 32]) -> Self {
        Self {
            key: key(cipher, key_bytes),
            counter: 0,
            closed: false,
        }
    }

    /// Opens the record at the start of `buf`, in place.
    ///
    /// # Errors
    /// The record does not authenticate, is malformed, or follows the
    /// close record.
    pub fn open(&mut self, buf: &mut [u8]) -> Result<Opened, RecordError> {
        if buf.len() < 2 {
            return Ok(Opened::Incomplete);
        }
        if self.closed {
            return Err(RecordError::AfterClose);
        }
        let length = [buf[0], buf[1]];
        let Some(consumed) = wire_len(buf)? else {
            return Ok(Opened::Incomplete);
        };
        if buf.len() < consumed {
            return Ok(Opened::Incomplete);
        }
        let plain = self
            .key
            .open_in_place(
                nonce(self.counter),
                Aad::from(length),
                &mut buf[2..consumed],
            )
            .map_err(|_| RecordError::Forged)?;
        self.counter += 1;
        match plain[0] {
            DATA => Ok(Opened::Data {
                consumed,
                payload: 3..2 + plain.len(),
            }),
            CLOSE if plain.len() == 1 => {
                self.closed = true;
                Ok(Opened::Closed { consumed })
            }
            _ => Err(RecordError::Malformed),
        }
    }

    /// The stream's bytes have ended: fine only after the close record.
    ///
    /// # Errors
    /// [`RecordError::Truncated`] if it had not come.
    pub fn at_end(&self) -> Result<(), RecordError> {
        if self.closed {
            Ok(())
        } else {
            Err(RecordError::Truncated)
        }
    }
}
