//! What both decoder targets check: decoding never panics, is the same
//! whether the input arrives whole or in two pieces, and every message it
//! yields survives a round trip through the opposite side's encoder.
use bytes::BytesMut;
use proto::codec::Limited;
use proto::codec::ProtoError;
use std::fmt::Debug;
use tokio_util::codec::{Decoder, Encoder};

/// How a run of decode calls stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// `Ok(None)`: the decoder wants more bytes.
    Incomplete,
    /// `Err(FrameTooLong)`.
    TooLong,
    /// `Err(Malformed)`.
    Malformed,
    /// `Err(Io)`: never expected from an in-memory buffer.
    Io,
}

/// Calls `decode` until it returns `Ok(None)` or an error, collecting the
/// messages. A message must consume input, so this always ends.
pub fn drain<D>(codec: &mut D, buf: &mut BytesMut, out: &mut Vec<D::Item>) -> Ending
where
    D: Decoder<Error = ProtoError>,
{
    loop {
        let before = buf.len();
        match codec.decode(buf) {
            Ok(Some(msg)) => {
                assert!(buf.len() < before, "a message was decoded from no bytes");
                out.push(msg);
            }
            Ok(None) => return Ending::Incomplete,
            Err(ProtoError::FrameTooLong) => return Ending::TooLong,
            Err(ProtoError::Malformed(_)) => return Ending::Malformed,
            Err(ProtoError::Io(_)) => return Ending::Io,
        }
    }
}

/// Runs decoder `D` over `data` whole, then split in two at the offset
/// given by the first byte's value, and compares; then re-encodes every
/// message with `E` and decodes it again with a fresh `D`. `inspect` sees
/// each message (for side-specific checks).
pub fn check<D, E>(data: &[u8], inspect: impl Fn(&D::Item))
where
    D: Decoder<Error = ProtoError> + Default,
    D::Item: Clone + PartialEq + Debug + serde::Serialize + Limited,
    E: Encoder<D::Item, Error = ProtoError> + Default,
{
    let mut whole = Vec::new();
    let whole_end = drain(&mut D::default(), &mut BytesMut::from(data), &mut whole);
    assert_ne!(whole_end, Ending::Io, "I/O error from a memory buffer");

    if let Some(&first) = data.first() {
        let at = usize::from(first).min(data.len());
        let mut codec = D::default();
        let mut buf = BytesMut::from(&data[..at]);
        let mut parts = Vec::new();
        let mut end = drain(&mut codec, &mut buf, &mut parts);
        if end == Ending::Incomplete {
            buf.extend_from_slice(&data[at..]);
            end = drain(&mut codec, &mut buf, &mut parts);
        }
        assert_eq!(whole, parts, "split at {at} changed the messages");
        assert_eq!(whole_end, end, "split at {at} changed how decoding ended");
    }

    for msg in &whole {
        inspect(msg);
        let json_len = serde_json_len(msg);
        let mut buf = BytesMut::new();
        match E::default().encode(msg.clone(), &mut buf) {
            Ok(()) => {
                assert!(json_len <= D::Item::MAX_LEN);
                let mut again = Vec::new();
                let end = drain(&mut D::default(), &mut buf, &mut again);
                assert_eq!(end, Ending::Incomplete);
                assert_eq!(again.as_slice(), std::slice::from_ref(msg), "round trip");
                assert!(buf.is_empty());
            }
            // Decoding accepts shorthand (a missing optional field, a
            // shorter escape) that encoding spells out, so a message read
            // from a frame at the cap may not fit one when written again.
            Err(ProtoError::FrameTooLong) => assert!(json_len > D::Item::MAX_LEN),
            Err(err) => panic!("a decoded message failed to encode: {err}"),
        }
    }
}

fn serde_json_len<T: serde::Serialize>(value: &T) -> usize {
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).expect("messages serialise");
    counter.0
}

struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
