//! Streams open now, per serve and per visiting vnet and serve (what a
//! vnet's use is, as the route sees it), held to the route's own
//! `max_connections`: the route does not count on a vnet keeping its.
use proto::{Refusal, RefusalCode, ServeId, SessionId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// All streams to one serve of the serving session.
    Serve(SessionId, ServeId),
    /// The streams from one visiting session to one serve.
    Visitor(SessionId, SessionId, ServeId),
}

/// The counts, shared by every stream's task.
#[derive(Default, Clone)]
pub struct StreamCounts(Arc<Mutex<HashMap<Key, usize>>>);

/// One stream counted while it lives.
pub struct Counted {
    counts: StreamCounts,
    keys: [Key; 2],
}

impl StreamCounts {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, usize>> {
        self.0.lock().expect("stream counts poisoned")
    }

    /// Counts a new stream from `visitor` to `serve` of `serving`.
    ///
    /// # Errors
    /// The serve, or this visitor's streams to it, are at `max`.
    pub fn open(
        &self,
        serving: SessionId,
        visitor: SessionId,
        serve: ServeId,
        max: usize,
    ) -> Result<Counted, Refusal> {
        let keys = [
            Key::Serve(serving, serve),
            Key::Visitor(visitor, serving, serve),
        ];
        let mut counts = self.lock();
        for key in keys {
            if counts.get(&key).copied().unwrap_or(0) >= max {
                let whose = match key {
                    Key::Serve(..) => "serve",
                    Key::Visitor(..) => "this vnet's use of serve",
                };
                let text = format!(
                    "{whose} {serve} is at the route's connection limit ({max}, max_connections)"
                );
                return Err(Refusal::new(RefusalCode::Limit, text));
            }
        }
        for key in keys {
            *counts.entry(key).or_default() += 1;
        }
        Ok(Counted {
            counts: self.clone(),
            keys,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        for key in self.keys {
            if let Some(n) = counts.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serve_and_a_visitor_are_held_to_the_limit() {
        let counts = StreamCounts::default();
        let (serving, a, b) = (SessionId(1), SessionId(2), SessionId(3));
        let serve = ServeId::new(700).unwrap();
        let first = counts.open(serving, a, serve, 2).unwrap();
        let _second = counts.open(serving, a, serve, 2).unwrap();
        let refused = counts.open(serving, b, serve, 2).err().unwrap();
        assert!(refused.text.starts_with("serve 700 is at"), "{refused}");
        drop(first);
        let _third = counts.open(serving, b, serve, 2).unwrap();
        let counts_one = StreamCounts::default();
        let _x = counts_one.open(serving, a, serve, 1).unwrap();
        let refused = counts_one.open(SessionId(9), a, serve, 1);
        assert!(refused.is_ok(), "another serving session is another serve");
        assert!(counts.lock().values().all(|n| *n > 0));
    }
}
