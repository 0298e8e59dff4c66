//! Passes: how a data connection proves it belongs to a session.
//!
//! A data connection's hello carries a [`DataPass`]: the session's public
//! id, a counter, and an HMAC-SHA256 keyed with the session secret (from
//! [`crate::auth`]) over both and over what the connection is for (a
//! visit to which serve, a spare of which role, the answer to which
//! ticket). So someone who reads a vnet's traffic learns nothing that
//! opens or attaches a data connection: the secret never travels, a pass
//! names exactly one purpose, and the route's [`ReplayWindow`] admits each
//! counter once.
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::{Proof, SessionSecret};
use crate::{ServeId, SessionId, Ticket};

/// Proof that a data connection belongs to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPass {
    /// The session, as its welcome named it.
    pub session: SessionId,
    /// Drawn once per pass from the session's counter.
    pub counter: u64,
    /// HMAC over session, counter and purpose.
    pub mac: Proof,
}

/// What a data connection is for; its pass is good for nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Carry a client to this serve.
    Visit(ServeId),
    /// Wait as a spare for the vnet's uses.
    SpareForVisits,
    /// Wait as a spare for streams to the vnet's serves.
    SpareForServes,
    /// Answer the route's request with this ticket.
    Accept(Ticket),
    /// Tell the route, in a UDP datagram, the address a NAT gives the
    /// vnet's direct socket (see [`crate::direct::Probe`]).
    Probe,
}

impl Purpose {
    fn encode(self) -> [u8; 9] {
        let (tag, value) = match self {
            Purpose::Visit(id) => (1, u64::from(id.get())),
            Purpose::SpareForVisits => (2, 0),
            Purpose::SpareForServes => (3, 0),
            Purpose::Accept(ticket) => (4, ticket.0),
            Purpose::Probe => (5, 0),
        };
        let mut out = [tag; 9];
        out[1..].copy_from_slice(&value.to_be_bytes());
        out
    }
}

impl SessionSecret {
    fn mac(&self, session: SessionId, counter: u64, purpose: Purpose) -> Proof {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(b"vnet data pass");
        mac.update(&session.0.to_be_bytes());
        mac.update(&counter.to_be_bytes());
        mac.update(&purpose.encode());
        Proof(mac.finalize().into_bytes().into())
    }

    /// A pass for one data connection.
    pub fn pass(&self, session: SessionId, counter: u64, purpose: Purpose) -> DataPass {
        DataPass {
            session,
            counter,
            mac: self.mac(session, counter, purpose),
        }
    }

    /// Whether `pass` was made with this secret for `purpose` (the
    /// caller checks the session id and the counter's freshness).
    pub fn verify(&self, pass: &DataPass, purpose: Purpose) -> bool {
        self.mac(pass.session, pass.counter, purpose)
            .matches(&pass.mac)
    }
}

/// Counters a session has used, so each pass is admitted once. Passes are
/// drawn in order but may arrive a little out of order (connections race),
/// so a window of recent counters is kept, as IPsec does for its packets.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// Highest counter admitted so far (`None` before the first).
    highest: Option<u64>,
    /// Bit `i` set: counter `highest - i` was admitted.
    seen: [u64; Self::WORDS],
}

impl ReplayWindow {
    const WORDS: usize = 16;
    /// How far behind the highest counter a pass may be.
    pub const SPAN: u64 = (Self::WORDS * 64) as u64;

    /// Admits `counter` if it was not seen and is within the window.
    ///
    /// ```
    /// let mut window = proto::pass::ReplayWindow::default();
    /// assert!(window.admit(5) && window.admit(3) && !window.admit(5));
    /// ```
    pub fn admit(&mut self, counter: u64) -> bool {
        let Some(highest) = self.highest else {
            self.highest = Some(counter);
            self.set(0);
            return true;
        };
        if counter > highest {
            self.shift(counter - highest);
            self.highest = Some(counter);
            self.set(0);
            return true;
        }
        let behind = highest - counter;
        if behind >= Self::SPAN || self.get(behind) {
            return false;
        }
        self.set(behind);
        true
    }

    fn get(&self, i: u64) -> bool {
        self.seen[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: u64) {
        self.seen[(i / 64) as usize] |= 1 << (i % 64);
    }

    /// Moves every mark `by` places further behind.
    fn shift(&mut self, by: u64) {
        if by >= Self::SPAN {
            self.seen = [0; Self::WORDS];
            return;
        }
        let (words, bits) = ((by / 64) as usize, by % 64);
        for i in (0..Self::WORDS).rev() {
            let from = i.checked_sub(words);
            let high = from.map_or(0, |f| self.seen[f] << bits);
            let carry = match from.and_then(|f| f.checked_sub(1)) {
                Some(g) if bits > 0 => self.seen[g] >> (64 - bits),
                _ => 0,
            };
            self.seen[i] = high | carry;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_good_for_its_secret_session_and_purpose_only() {
        let secret = SessionSecret([7; 32]);
        let session = SessionId(42);
        let visit = Purpose::Visit(ServeId::new(700).unwrap());
        let pass = secret.pass(session, 1, visit);
        assert!(secret.verify(&pass, visit));
        assert!(!SessionSecret([8; 32]).verify(&pass, visit));
        assert!(!secret.verify(&pass, Purpose::Visit(ServeId::new(701).unwrap())));
        assert!(!secret.verify(&pass, Purpose::SpareForServes));
        assert!(!secret.verify(&DataPass { counter: 2, ..pass }, visit));
        assert!(!secret.verify(
            &DataPass {
                session: SessionId(43),
                ..pass
            },
            visit
        ));
    }

    #[test]
    fn the_window_admits_each_counter_once_within_its_span() {
        let mut window = ReplayWindow::default();
        assert!(window.admit(10));
        assert!(!window.admit(10));
        assert!(window.admit(8) && window.admit(12) && window.admit(9));
        assert!(!window.admit(8) && !window.admit(9) && !window.admit(12));
        assert!(window.admit(11));
        // Far ahead: everything older than the span is refused.
        assert!(window.admit(12 + 2 * ReplayWindow::SPAN));
        assert!(!window.admit(12));
        let top = 12 + 2 * ReplayWindow::SPAN;
        assert!(window.admit(top - ReplayWindow::SPAN + 1));
        assert!(!window.admit(top - ReplayWindow::SPAN));
    }

    #[test]
    fn shifting_keeps_marks_at_their_distance() {
        for step in [1, 63, 64, 65, 130, 1000] {
            let mut window = ReplayWindow::default();
            for counter in [100, 90, 37] {
                assert!(window.admit(counter));
            }
            let top = 100 + step;
            assert!(window.admit(top));
            for (counter, seen) in [
                (100, true),
                (90, true),
                (37, true),
                (95, false),
                (38, false),
            ] {
                let in_span = top - counter < ReplayWindow::SPAN;
                assert_eq!(
                    window.clone().admit(counter),
                    in_span && !seen,
                    "{counter} after a step of {step}"
                );
            }
        }
    }
}
