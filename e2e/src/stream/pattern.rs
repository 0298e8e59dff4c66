//! The byte pattern every transfer carries: deterministic, cheap to make
//! at any stream offset, and checked byte for byte by the reader, so a
//! lost, doubled or shifted chunk is found where it happens.
use std::sync::OnceLock;

/// Largest read or write of the fast paths.
pub const CHUNK: usize = 64 * 1024;

/// The pattern repeats every `PERIOD` bytes: a prime, so that a lost,
/// doubled or shifted chunk of any power-of-two size shows up.
const PERIOD: usize = 65_521;

/// `PERIOD` pseudo-random bytes, then `CHUNK` more that go on repeating
/// them, so that any offset has `CHUNK` contiguous bytes of pattern after
/// it.
fn block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| {
        let mut x: u32 = 0x9e37_79b9;
        let mut bytes: Vec<u8> = (0..PERIOD)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        for i in 0..CHUNK {
            bytes.push(bytes[i % PERIOD]);
        }
        bytes
    })
}

/// The `len` (at most [`CHUNK`]) pattern bytes that start at stream
/// offset `offset`.
pub fn pattern(offset: u64, len: usize) -> &'static [u8] {
    assert!(len <= CHUNK);
    let start = (offset % PERIOD as u64) as usize;
    &block()[start..start + len]
}

/// The stream offset of the first byte of `data` (received at `offset`)
/// that differs from the pattern, if any. Comparing with the pattern checks
/// every byte, which is stronger than a checksum of the whole.
pub fn first_mismatch(offset: u64, data: &[u8]) -> Option<u64> {
    let mut at = offset;
    for piece in data.chunks(CHUNK) {
        let want = pattern(at, piece.len());
        if piece != want {
            let i = piece
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Some(at + i as u64);
        }
        at += piece.len() as u64;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_continuous_across_chunks_and_period() {
        let mut whole = Vec::new();
        let mut at = 0u64;
        while at < 3 * PERIOD as u64 {
            let n = 1000.min(CHUNK);
            whole.extend_from_slice(pattern(at, n));
            at += n as u64;
        }
        assert_eq!(first_mismatch(0, &whole), None);
        assert_eq!(&whole[..100], &whole[PERIOD..PERIOD + 100]);
        // A lost byte shows at once.
        assert!(first_mismatch(0, &whole[1..]).is_some());
        let mut bad = whole.clone();
        bad[70_000] ^= 1;
        assert_eq!(first_mismatch(0, &bad), Some(70_000));
    }
}
