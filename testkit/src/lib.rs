//! Test support for the vnet workspace, in one place: a bounded wait
//! ([`within`]), connected socket pairs, small real TCP services
//! ([`services`]), a route and vnets started in-process on 127.0.0.1
//! port 0 ([`harness`]), and a vnet written by hand from the protocol
//! ([`raw`]) for tests that must see or send exactly what is on the wire.
use std::future::Future;
use std::time::Duration;

pub mod harness;
pub mod raw;
pub mod services;

pub use harness::*;
pub use net::test_sockets::socket_pair;
pub use services::*;

/// Bound on any single wait in these tests.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Awaits `f`, failing the test with `what` if it takes longer than LIMIT.
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(LIMIT, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {LIMIT:?}: {what}"),
    }
}
