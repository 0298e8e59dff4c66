//! Streams carried per serve, for the status page and metrics: open now,
//! started so far, and bytes each way, counted live as the relay moves
//! them (see `net::relay::Tallied`).
//!
//! Counted per registration: a serve's entry is made when it registers
//! (fresh, even under an id used before) and goes when it is withdrawn,
//! or with its last open stream if it had some then. So entries follow
//! the registry, whoever reads the status or not, and a stream that
//! outlives its serve counts into the entry it started with. Callers
//! hold the registry's lock while they tell of a registration or a
//! withdrawal, so the two never disagree on which registration is live.
use net::relay::Tally;
use proto::ServeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// One serve's streams. `open` and `gone` change under the map's lock.
#[derive(Debug, Default)]
struct ServeTraffic {
    open: AtomicU64,
    started: AtomicU64,
    /// Withdrawn: the entry goes with its last open stream.
    gone: std::sync::atomic::AtomicBool,
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

type Key = (String, ServeId);
type Entries = HashMap<Key, Arc<ServeTraffic>>;

/// Every registered serve's streams, shared by the stream tasks.
#[derive(Debug, Default, Clone)]
pub struct Traffic(Arc<Mutex<Entries>>);

/// A stream counted open while it lives.
pub struct Flowing {
    traffic: Traffic,
    key: Key,
    entry: Arc<ServeTraffic>,
}

impl Flowing {
    /// Where the visitor's side of the stream counts its bytes.
    pub fn tally(&self) -> Arc<Tally> {
        self.entry.visitors.clone()
    }
}

impl Drop for Flowing {
    fn drop(&mut self) {
        let mut entries = self.traffic.lock();
        let open = self.entry.open.fetch_sub(1, Ordering::Relaxed) - 1;
        if open == 0 && self.entry.gone.load(Ordering::Relaxed) {
            // Only this registration's entry: the id may be taken again.
            if entries
                .get(&self.key)
                .is_some_and(|e| Arc::ptr_eq(e, &self.entry))
            {
                entries.remove(&self.key);
            }
        }
    }
}

impl Traffic {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.0.lock().expect("traffic poisoned")
    }

    /// A serve was registered: its counts start at zero.
    pub fn registered(&self, group: &str, serve: ServeId) {
        let key = (group.to_string(), serve);
        self.lock().insert(key, Arc::default());
    }

    /// A serve was withdrawn (or its vnet left): its entry goes now, or
    /// with its last open stream.
    pub fn withdrawn(&self, group: &str, serve: ServeId) {
        let key = (group.to_string(), serve);
        let mut entries = self.lock();
        if let Some(entry) = entries.get(&key) {
            if entry.open.load(Ordering::Relaxed) == 0 {
                entries.remove(&key);
            } else {
                entry.gone.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Counts a stream that started to `serve` of `group`. A serve
    /// withdrawn meanwhile gets a count of its own that nobody shows.
    pub fn started(&self, group: &str, serve: ServeId) -> Flowing {
        let key = (group.to_string(), serve);
        let entries = self.lock();
        let entry = entries.get(&key).cloned().unwrap_or_default();
        entry.started.fetch_add(1, Ordering::Relaxed);
        entry.open.fetch_add(1, Ordering::Relaxed);
        drop(entries);
        Flowing {
            traffic: self.clone(),
            key,
            entry,
        }
    }

    /// The figures of `serve` in `group` (zero if unknown).
    pub fn figures(&self, group: &str, serve: ServeId) -> Figures {
        let key = (group.to_string(), serve);
        let entries = self.lock();
        let Some(t) = entries.get(&key) else {
            return Figures::default();
        };
        Figures {
            open: t.open.load(Ordering::Relaxed),
            started: t.started.load(Ordering::Relaxed),
            up: t.visitors.read(),
            down: t.visitors.written(),
        }
    }

    /// How many serves are counted now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_counted_per_registration_and_forgotten_with_it() {
        let traffic = Traffic::default();
        let serve = ServeId::new(7).unwrap();
        traffic.registered("g", serve);
        traffic.registered("h", serve);
        let first = traffic.started("g", serve);
        let second = traffic.started("g", serve);
        first.tally().add_read(10);
        second.tally().add_written(5);
        drop(first);
        let figures = Figures {
            open: 1,
            started: 2,
            up: 10,
            down: 5,
        };
        assert_eq!(traffic.figures("g", serve), figures);
        // Withdrawn with a stream open: it stays until that ends.
        traffic.withdrawn("g", serve);
        assert_eq!(traffic.figures("g", serve), figures);
        drop(second);
        assert_eq!(traffic.figures("g", serve), Figures::default());
        traffic.withdrawn("h", serve);
        assert_eq!(traffic.len(), 0);
    }

    #[test]
    fn a_new_registration_starts_at_zero_and_old_streams_do_not_touch_it() {
        let traffic = Traffic::default();
        let serve = ServeId::new(7).unwrap();
        traffic.registered("g", serve);
        let old = traffic.started("g", serve);
        traffic.withdrawn("g", serve);
        traffic.registered("g", serve);
        assert_eq!(traffic.figures("g", serve), Figures::default());
        let new = traffic.started("g", serve);
        old.tally().add_read(99);
        drop(old);
        assert_eq!(traffic.figures("g", serve).open, 1, "the new entry stays");
        assert_eq!(traffic.figures("g", serve).up, 0);
        drop(new);
        assert_eq!(traffic.figures("g", serve).started, 1);
    }

    #[test]
    fn a_stream_to_a_serve_not_registered_is_counted_nowhere() {
        let traffic = Traffic::default();
        let serve = ServeId::new(7).unwrap();
        let stream = traffic.started("g", serve);
        stream.tally().add_read(1);
        assert_eq!(
            (traffic.len(), traffic.figures("g", serve)),
            (0, Figures::default())
        );
        drop(stream);
        assert_eq!(traffic.len(), 0);
    }
}
