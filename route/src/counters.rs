//! What the route turned away, counted for its status page and metrics:
//! refusals by reason (what a peer was told) and peers dropped without
//! an answer. The reasons are fixed lists, so metric labels stay bounded.
use proto::RefusalCode;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a peer was refused: the refusal codes, and `version` for a peer of
/// another protocol version.
pub const REFUSAL_REASONS: [&str; 11] = [
    "auth",
    "version",
    "limit",
    "protocol",
    "not_found",
    "taken",
    "busy",
    "unreachable",
    "not_allowed",
    "unsupported",
    "other",
];

/// Why a peer was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Dropped {
    /// Its address (or the route) had too many unauthenticated
    /// connections, or too many failed proofs.
    Throttled,
    /// Others made progress while it did not.
    Evicted,
    /// It did not finish its handshake in time.
    TimedOut,
    /// Its handshake was not one of a vnet (TLS, preamble, first frame).
    BadHandshake,
}

/// [`Dropped`]'s names, by its values.
pub const DROP_REASONS: [&str; 4] = ["throttled", "evicted", "timed_out", "bad_handshake"];

/// Where a refusal code is counted in [`REFUSAL_REASONS`]; a `match`, so
/// a new code cannot go uncounted unnoticed.
fn slot(code: RefusalCode) -> usize {
    match code {
        RefusalCode::Auth => 0,
        RefusalCode::Limit => 2,
        RefusalCode::Protocol => 3,
        RefusalCode::NotFound => 4,
        RefusalCode::Taken => 5,
        RefusalCode::Busy => 6,
        RefusalCode::Unreachable => 7,
        RefusalCode::NotAllowed => 8,
        RefusalCode::Unsupported => 9,
        RefusalCode::Other => 10,
    }
}

/// Where a peer of another version is counted.
const VERSION_SLOT: usize = 1;

/// The counts, shared by every task.
#[derive(Debug, Default)]
pub struct Counters {
    refused: [AtomicU64; REFUSAL_REASONS.len()],
    dropped: [AtomicU64; DROP_REASONS.len()],
}

impl Counters {
    /// Counts a refusal with `code`.
    pub fn refused(&self, code: RefusalCode) {
        self.refused[slot(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a peer of another protocol version.
    pub fn refused_version(&self) {
        self.refused[VERSION_SLOT].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a dropped peer.
    pub fn dropped(&self, why: Dropped) {
        self.dropped[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals so far, by reason, in [`REFUSAL_REASONS`]' order.
    pub fn refusals(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let counts = self.refused.iter().map(|n| n.load(Ordering::Relaxed));
        REFUSAL_REASONS.into_iter().zip(counts)
    }

    /// Dropped peers so far, by reason, in [`DROP_REASONS`]' order.
    pub fn drops(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let counts = self.dropped.iter().map(|n| n.load(Ordering::Relaxed));
        DROP_REASONS.into_iter().zip(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_reason_and_drops_their_names() {
        let counters = Counters::default();
        for code in RefusalCode::ALL {
            counters.refused(code);
        }
        counters.refused_version();
        counters.refused(RefusalCode::Limit);
        let refusals: Vec<_> = counters.refusals().collect();
        assert!(refusals.iter().all(|(_, n)| *n >= 1), "{refusals:?}");
        assert_eq!(refusals[2], ("limit", 2));
        for code in RefusalCode::ALL {
            assert_eq!(REFUSAL_REASONS[slot(code)], code.as_str());
        }
        assert_eq!(REFUSAL_REASONS[VERSION_SLOT], "version");
        counters.dropped(Dropped::TimedOut);
        counters.dropped(Dropped::BadHandshake);
        let drops: Vec<_> = counters.drops().collect();
        assert_eq!(
            drops,
            [
                ("throttled", 0),
                ("evicted", 0),
                ("timed_out", 1),
                ("bad_handshake", 1)
            ]
        );
    }
}
