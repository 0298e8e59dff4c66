//! Connections that have not proved the token yet, held to bounds.
//!
//! Anyone can open connections to the route, so before a peer has proved
//! the token it gets little: a place among at most [`Limits::total`]
//! such connections, and at most [`Limits::per_source`] from one source
//! (an IPv4 address, or an IPv6 /64, which one holder usually has whole).
//! When either bound is reached, the newcomer does not wait outside: the
//! connection that made progress least recently (a TLS handshake, a
//! preamble, a frame) is dropped to make room, so a flood of stalled
//! connections churns among itself while a vnet that answers promptly gets
//! through. Failed token proofs are counted per source in a small bucket
//! that refills slowly; a source that has spent it is turned away at once
//! for a while, so guessing the token costs a live connection each and
//! cannot be done quickly.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The bounds; [`Limits::default`] suits the public internet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Unauthenticated connections at once, all sources.
    pub total: usize,
    /// Unauthenticated connections at once from one source.
    pub per_source: usize,
    /// Failed proofs a source may make in a burst.
    pub failures: u32,
    /// How often a source gets one failure back.
    pub refill: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // A vnet opens a data connection per stream, so a burst of
            // clients is a burst of connections from one address: room for
            // that, and still only a few MiB held by a flood.
            total: 1024,
            per_source: 256,
            failures: 10,
            refill: Duration::from_secs(6),
        }
    }
}

/// Sources whose failures are remembered; the longest-quiet is forgotten
/// first beyond this.
const REMEMBERED: usize = 4096;

/// Where connections come from, as the bounds count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// One IPv4 address.
    V4([u8; 4]),
    /// One IPv6 /64.
    V6([u8; 8]),
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let mut net = [0u8; 8];
                    net.copy_from_slice(&v6.octets()[..8]);
                    Source::V6(net)
                }
            },
        }
    }
}

/// Why a connection was turned away at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed token proofs from this source; try again in {wait:?}")]
pub struct Throttled {
    /// Until the source may try again.
    pub wait: Duration,
}

struct Waiting {
    source: Source,
    progress: Instant,
    evict: CancellationToken,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    waiting: HashMap<u64, Waiting>,
    per_source: HashMap<Source, usize>,
    failures: HashMap<Source, Bucket>,
}

/// The route's unauthenticated connections and failed proofs.
#[derive(Default)]
pub struct Admission {
    limits: Limits,
    inner: Mutex<Inner>,
}

/// A connection's place among the unauthenticated ones; given up when
/// dropped (the peer proved the token, or left).
pub struct Place {
    admission: Arc<Admission>,
    id: u64,
    /// Cancelled when this connection is dropped to make room.
    pub evicted: CancellationToken,
}

impl Admission {
    /// Bounds as given.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("admission poisoned")
    }

    /// A place for a new connection from `ip`, making room by evicting
    /// the stalest if a bound is reached.
    ///
    /// # Errors
    /// The source has spent its failed proofs.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Place, Throttled> {
        let source = Source::from(ip);
        let mut inner = self.lock();
        if let Some(bucket) = inner.failures.get_mut(&source) {
            refill(bucket, &self.limits, now);
            if bucket.tokens < 1.0 {
                let wait = self.limits.refill.mul_f64(1.0 - bucket.tokens);
                return Err(Throttled { wait });
            }
        }
        if inner.per_source.get(&source).copied().unwrap_or(0) >= self.limits.per_source {
            inner.evict_stalest(Some(source));
        }
        if inner.waiting.len() >= self.limits.total {
            inner.evict_stalest(None);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let evicted = CancellationToken::new();
        inner.waiting.insert(
            id,
            Waiting {
                source,
                progress: now,
                evict: evicted.clone(),
            },
        );
        *inner.per_source.entry(source).or_default() += 1;
        Ok(Place {
            admission: self.clone(),
            id,
            evicted,
        })
    }

    /// Takes note of a failed token proof from `ip`; whether that has
    /// just spent the source's bucket (so it is turned away from now on).
    pub fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        let source = Source::from(ip);
        let mut inner = self.lock();
        if !inner.failures.contains_key(&source) && inner.failures.len() >= REMEMBERED {
            // Forget the source that failed longest ago.
            if let Some(oldest) = inner
                .failures
                .iter()
                .min_by_key(|(_, b)| b.at)
                .map(|(s, _)| *s)
            {
                inner.failures.remove(&oldest);
            }
        }
        let limits = &self.limits;
        let bucket = inner.failures.entry(source).or_insert(Bucket {
            tokens: f64::from(limits.failures),
            at: now,
        });
        refill(bucket, limits, now);
        let had = bucket.tokens >= 1.0;
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
        had && bucket.tokens < 1.0
    }

    /// Unauthenticated connections held now.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

fn refill(bucket: &mut Bucket, limits: &Limits, now: Instant) {
    let earned =
        now.saturating_duration_since(bucket.at).as_secs_f64() / limits.refill.as_secs_f64();
    bucket.tokens = (bucket.tokens + earned).min(f64::from(limits.failures));
    bucket.at = now;
}

impl Inner {
    /// Drops the connection (of `source`, if given) whose last progress is
    /// oldest.
    fn evict_stalest(&mut self, source: Option<Source>) {
        let stalest = self
            .waiting
            .iter()
            .filter(|(_, w)| source.is_none_or(|s| w.source == s))
            .min_by_key(|(id, w)| (w.progress, **id))
            .map(|(id, _)| *id);
        if let Some(id) = stalest {
            self.forget(id);
        }
    }

    fn forget(&mut self, id: u64) {
        let Some(waiting) = self.waiting.remove(&id) else {
            return;
        };
        waiting.evict.cancel();
        if let Some(n) = self.per_source.get_mut(&waiting.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&waiting.source);
            }
        }
    }
}

impl Place {
    /// The connection moved a step ahead (TLS done, a frame read): it is
    /// not the stalest any more.
    pub fn progressed(&self, now: Instant) {
        if let Some(waiting) = self.admission.lock().waiting.get_mut(&self.id) {
            waiting.progress = now;
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.admission.lock().forget(self.id);
    }
}

#[cfg(test)]
mod tests;
