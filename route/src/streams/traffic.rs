//! Streams carried per serve, for the status page and metrics: open now,
//! started so far, and bytes each way, counted live as the relay moves
//! them (see `net::relay::Tallied`).
//!
//! Kept per group and serve id, not per registration: a serve that goes
//! and comes back under its id goes on counting. An entry goes once its
//! serve is gone and none of its streams is open, so there are never more
//! than a group's 999 ids and the streams still running.
use net::relay::Tally;
use proto::ServeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// One serve's streams.
#[derive(Debug, Default)]
pub struct ServeTraffic {
    open: AtomicU64,
    started: AtomicU64,
    /// The visitors' sides: read is what went to the serve (up), written
    /// what came from it (down).
    visitors: Arc<Tally>,
}

/// One serve's figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Streams open now.
    pub open: u64,
    /// Streams started so far.
    pub started: u64,
    /// Bytes from visitors to the serve.
    pub up: u64,
    /// Bytes from the serve to visitors.
    pub down: u64,
}

impl ServeTraffic {
    fn figures(&self) -> Figures {
        Figures {
            open: self.open.load(Ordering::Relaxed),
            started: self.started.load(Ordering::Relaxed),
            up: self.visitors.read(),
            down: self.visitors.written(),
        }
    }
}

type Key = (String, ServeId);

/// Every serve's streams, shared by the stream tasks.
#[derive(Debug, Default)]
pub struct Traffic(Mutex<HashMap<Key, Arc<ServeTraffic>>>);

/// A stream counted open while it lives.
pub struct Flowing(Arc<ServeTraffic>);

impl Flowing {
    /// Where the visitor's side of the stream counts its bytes.
    pub fn tally(&self) -> Arc<Tally> {
        self.0.visitors.clone()
    }
}

impl Drop for Flowing {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Traffic {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Arc<ServeTraffic>>> {
        self.0.lock().expect("traffic poisoned")
    }

    /// Counts a stream that started to `serve` of `group`.
    pub fn started(&self, group: &str, serve: ServeId) -> Flowing {
        let key = (group.to_string(), serve);
        let traffic = self.lock().entry(key).or_default().clone();
        traffic.started.fetch_add(1, Ordering::Relaxed);
        traffic.open.fetch_add(1, Ordering::Relaxed);
        Flowing(traffic)
    }

    /// The figures of `serve` in `group` (zero if it never had a stream).
    pub fn figures(&self, group: &str, serve: ServeId) -> Figures {
        let key = (group.to_string(), serve);
        self.lock()
            .get(&key)
            .map_or_else(Figures::default, |t| t.figures())
    }

    /// Forgets the serves that `registered` says are gone and that have
    /// no stream open.
    pub fn forget_gone(&self, registered: impl Fn(&str, ServeId) -> bool) {
        self.lock().retain(|(group, serve), traffic| {
            registered(group, *serve) || traffic.open.load(Ordering::Relaxed) > 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_counted_per_group_and_serve_and_forgotten_when_gone() {
        let traffic = Traffic::default();
        let serve = ServeId::new(7).unwrap();
        let first = traffic.started("g", serve);
        let second = traffic.started("g", serve);
        let _elsewhere = traffic.started("h", serve);
        first.tally().add_read(10);
        second.tally().add_written(5);
        drop(first);
        let figures = traffic.figures("g", serve);
        assert_eq!(
            figures,
            Figures {
                open: 1,
                started: 2,
                up: 10,
                down: 5
            }
        );
        traffic.forget_gone(|_, _| false);
        assert_eq!(traffic.figures("g", serve).started, 2, "a stream is open");
        drop(second);
        traffic.forget_gone(|group, _| group == "h");
        assert_eq!(traffic.figures("g", serve), Figures::default());
        assert_eq!(traffic.figures("h", serve).open, 1);
    }
}
