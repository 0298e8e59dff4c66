//! Live counters of one serve or use: connections open and opened, bytes
//! each way. Shared cells ([`Traffic`]) that stream tasks update as bytes
//! move, read by `show` and by a grant's expiry; a stream's local side
//! is wrapped in a [`net::relay::Tallied`] to count its bytes.
use net::relay::{Tallied, Tally};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Live counters of one serve or use.
#[derive(Debug, Default)]
pub struct Traffic {
    open: watch::Sender<usize>,
    /// Bytes read from the local side (sent into the tunnel) and written
    /// to it (received from the tunnel).
    local: Arc<Tally>,
    /// Connections opened so far, closed ones included.
    opened: AtomicU64,
}

impl Traffic {
    /// Connections open now.
    pub fn connections(&self) -> usize {
        *self.open.borrow()
    }

    /// Bytes sent into the tunnel and received from it.
    pub fn bytes(&self) -> (u64, u64) {
        (self.local.read(), self.local.written())
    }

    /// Connections opened so far, closed ones included: a connection too
    /// short to be seen open still counts as use.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Watches the open-connection count (grants expire on it).
    pub fn watch_connections(&self) -> watch::Receiver<usize> {
        self.open.subscribe()
    }

    /// Counts a stream that opened.
    pub(crate) fn stream_opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.open.send_modify(|n| *n += 1);
    }

    /// Counts a stream that closed.
    pub(crate) fn stream_closed(&self) {
        self.open.send_modify(|n| *n -= 1);
    }

    /// A stream's local side, its bytes counted here.
    pub(crate) fn count<S>(&self, local: S) -> Tallied<S> {
        Tallied::new(local, self.local.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Status, StreamGuard};
    use bytes::Bytes;
    use net::relay::bridge;
    use net::test_sockets::socket_pair;
    use net::Unframed;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// As a serve relays: the route's side (with read-ahead) to the local
    /// service, whose bytes are counted. On Linux this takes the kernel
    /// path, where only the hooks can count.
    #[tokio::test]
    async fn relayed_bytes_are_counted_both_ways() {
        let status = watch::Sender::new(Status::default());
        let traffic = Arc::new(Traffic::default());
        let guard = StreamGuard::new(&status, traffic.clone());
        let (mut far, route_side) = socket_pair(None).await;
        let (service, mut local) = socket_pair(None).await;
        #[cfg(target_os = "linux")]
        let spliced = net::relay::splice::spliced_on_this_thread();
        let relay = tokio::spawn(bridge(
            Unframed {
                stream: route_side,
                leftover: Bytes::from_static(b"early "),
            },
            Unframed {
                stream: guard.count(service),
                leftover: Bytes::new(),
            },
        ));
        let (to_service, from_service) = (vec![1u8; 300_000], vec![2u8; 200_000]);
        let talk = async {
            let (mut up, mut down) = (Vec::new(), Vec::new());
            tokio::join!(
                async {
                    far.write_all(&to_service).await.unwrap();
                    far.shutdown().await.unwrap();
                    far.read_to_end(&mut down).await.unwrap();
                },
                async {
                    local.write_all(&from_service).await.unwrap();
                    local.shutdown().await.unwrap();
                    local.read_to_end(&mut up).await.unwrap();
                }
            );
            assert_eq!(&up[..6], b"early ");
            assert!(up[6..] == to_service[..] && down == from_service);
            relay.await.unwrap().unwrap()
        };
        let moved = tokio::time::timeout(Duration::from_secs(20), talk)
            .await
            .unwrap();
        assert_eq!(moved, (300_006, 200_000));
        assert_eq!(traffic.bytes(), (200_000, 300_006));
        #[cfg(target_os = "linux")]
        assert_eq!(
            net::relay::splice::spliced_on_this_thread() - spliced,
            500_000,
            "the kernel path was not taken"
        );
        drop(guard);
    }
}
