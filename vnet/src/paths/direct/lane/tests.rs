//! The pool of spare lane connections: it keeps [`SPARES`], opens more
//! when streams find none idle (up to [`MAX_SPARES`], side by side), and
//! goes back to [`SPARES`] after a quiet while.
use super::*;

/// A lane that takes every connection and holds it, and the pool for it
/// (kept until the token is cancelled).
async fn pool() -> (Arc<LanePool>, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let key = LaneKey {
        id: [1; 8],
        secret: [2; 32],
    };
    let pool = LanePool::new(addr, key);
    let closed = CancellationToken::new();
    tokio::spawn(pool.clone().keep(VnetId(2), closed.clone()));
    (pool, closed)
}

/// Waits (bounded) until `n` spares are idle.
async fn idle(pool: &LanePool, n: usize) {
    let filled = async {
        loop {
            let added = pool.added.notified();
            if pool.idle().len() >= n {
                return;
            }
            added.await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), filled)
        .await
        .unwrap_or_else(|_| panic!("{} spares idle, not {n}", pool.idle().len()));
}

#[tokio::test]
async fn streams_that_find_no_spare_make_more_kept_then_fewer_when_quiet() {
    let (pool, closed) = pool().await;
    idle(&pool, SPARES).await;
    assert_eq!(pool.idle().len(), SPARES, "no more than asked for");

    // A burst: the spares are taken, and then streams find none.
    let misses = 3;
    let taken: Vec<_> = (0..SPARES + misses).filter_map(|_| pool.take()).collect();
    assert!(taken.len() <= SPARES);
    let wanted = pool.wanted.load(Ordering::Relaxed);
    assert!(wanted > SPARES, "a miss raises the number kept: {wanted}");
    idle(&pool, wanted).await;

    // Never past the cap, however many streams find none.
    for _ in 0..2 * MAX_SPARES {
        while pool.take().is_some() {}
    }
    assert_eq!(pool.wanted.load(Ordering::Relaxed), MAX_SPARES);
    idle(&pool, MAX_SPARES).await;

    // Quiet for a while: back to the few.
    tokio::time::pause();
    tokio::time::advance(SHRINK_AFTER + Duration::from_secs(1)).await;
    // The keeper runs on this thread once we give way.
    for _ in 0..100 {
        if pool.wanted.load(Ordering::Relaxed) == SPARES {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.wanted.load(Ordering::Relaxed), SPARES);
    assert_eq!(pool.idle().len(), SPARES);
    closed.cancel();
}
