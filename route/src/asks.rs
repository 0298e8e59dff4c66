//! Unserve asks the route has passed on and not yet seen answered.
//!
//! The route is the authority on which answers are real: it names each
//! ask it forwards with an id of its own, remembers who asked and who was
//! asked, and passes on an answer only from the vnet asked, for an ask
//! still open, once. Asks are few and short-lived: each vnet may have a
//! few open at once, and an ask not answered in time is dropped.
use proto::{AskId, VnetId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Open asks one vnet may have at once.
pub const MAX_OPEN_PER_VNET: usize = 8;

/// How long an ask waits for its answer (the asker gives up sooner).
pub const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// One forwarded ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAsk {
    /// The group both vnets are in.
    pub group: String,
    /// The vnet that asked, and its request id (the answer goes there).
    pub asker: VnetId,
    /// The asker's request id.
    pub request: u32,
    /// The vnet asked: only it may answer.
    pub asked: VnetId,
    /// When the ask was forwarded.
    pub since: Instant,
}

/// The open asks, by id.
#[derive(Debug, Default)]
pub struct Asks {
    open: HashMap<AskId, OpenAsk>,
}

impl Asks {
    /// Records an ask about to be forwarded; its id, or `None` when the
    /// asker has too many open.
    pub fn open(&mut self, ask: OpenAsk) -> Option<AskId> {
        let now = ask.since;
        self.open
            .retain(|_, open| now.saturating_duration_since(open.since) < ASK_TIMEOUT);
        let held = self
            .open
            .values()
            .filter(|o| o.group == ask.group && o.asker == ask.asker)
            .count();
        if held >= MAX_OPEN_PER_VNET {
            return None;
        }
        let mut id = AskId(rand::random());
        while self.open.contains_key(&id) {
            id = AskId(rand::random());
        }
        self.open.insert(id, ask);
        Some(id)
    }

    /// Takes the ask `id` if `from` of `group` is the vnet it was sent
    /// to; an answer to anything else is dropped by the caller.
    pub fn answered(&mut self, id: AskId, group: &str, from: VnetId) -> Option<OpenAsk> {
        let open = self.open.get(&id)?;
        if open.group != group || open.asked != from {
            return None;
        }
        self.open.remove(&id)
    }

    /// Forgets the asks sent to a vnet that has left. Asks from it stay
    /// until answered or expired: the vnet asked may still answer, and an
    /// answer to an ask the route forgot would pass for a forgery.
    pub fn forget(&mut self, group: &str, vnet: VnetId) {
        self.open.retain(|_, o| o.group != group || o.asked != vnet);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(asker: u16, asked: u16, since: Instant) -> OpenAsk {
        OpenAsk {
            group: "g".into(),
            asker: VnetId(asker),
            request: 7,
            asked: VnetId(asked),
            since,
        }
    }

    #[test]
    fn only_the_vnet_asked_answers_and_only_once() {
        let mut asks = Asks::default();
        let now = Instant::now();
        let id = asks.open(ask(1, 2, now)).unwrap();
        assert!(asks.answered(id, "g", VnetId(3)).is_none(), "a bystander");
        assert!(
            asks.answered(id, "other", VnetId(2)).is_none(),
            "another group"
        );
        assert!(
            asks.answered(AskId(id.0 ^ 1), "g", VnetId(2)).is_none(),
            "another id"
        );
        assert_eq!(asks.answered(id, "g", VnetId(2)).unwrap().request, 7);
        assert!(asks.answered(id, "g", VnetId(2)).is_none(), "twice");
    }

    #[test]
    fn open_asks_are_bounded_and_expire() {
        let mut asks = Asks::default();
        let start = Instant::now();
        for _ in 0..MAX_OPEN_PER_VNET {
            assert!(asks.open(ask(1, 2, start)).is_some());
        }
        assert!(asks.open(ask(1, 2, start)).is_none(), "one too many");
        assert!(
            asks.open(ask(4, 2, start)).is_some(),
            "other vnets unaffected"
        );
        assert!(
            asks.open(ask(1, 2, start + ASK_TIMEOUT)).is_some(),
            "old ones expired"
        );
        let to_gone = asks.open(ask(5, 6, start + ASK_TIMEOUT)).unwrap();
        let from_gone = asks.open(ask(7, 8, start + ASK_TIMEOUT)).unwrap();
        asks.forget("g", VnetId(6));
        asks.forget("g", VnetId(7));
        assert!(asks.answered(to_gone, "g", VnetId(6)).is_none());
        assert!(asks.answered(from_gone, "g", VnetId(8)).is_some());
    }
}
