//! One bound on every wait in tests, so a bug fails instead of hanging.
use std::future::Future;
use std::time::Duration;

/// Bound on any single wait in these tests.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Awaits `f`, failing the test with `what` if it takes longer than LIMIT.
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(LIMIT, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {LIMIT:?}: {what}"),
    }
}
