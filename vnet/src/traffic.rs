//! Live counters of one serve or use: connections open and opened, bytes
//! each way. Shared cells ([`Traffic`]) that stream tasks update as bytes
//! move, read by `show` and by a grant's expiry; [`Counted`] wraps the
//! local side of a stream to count its bytes.
use net::relay::Relayable;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Live counters of one serve or use.
#[derive(Debug, Default)]
pub struct Traffic {
    open: watch::Sender<usize>,
    /// Bytes from the local side into the tunnel.
    sent: AtomicU64,
    /// Bytes from the tunnel to the local side.
    received: AtomicU64,
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
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
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
}

/// The local side of a stream, counting bytes read from it (sent into the
/// tunnel) and written to it (received from the tunnel).
pub(crate) struct Counted<S> {
    inner: S,
    traffic: Arc<Traffic>,
}

impl<S> Counted<S> {
    /// Counts `inner`'s bytes into `traffic`.
    pub(crate) fn new(inner: S, traffic: Arc<Traffic>) -> Self {
        Self { inner, traffic }
    }
}

/// Bytes relayed in the kernel bypass `poll_read`/`poll_write` and are
/// counted here instead.
impl<S: Relayable> Relayable for Counted<S> {
    fn socket(&self) -> Option<&TcpStream> {
        self.inner.socket()
    }

    fn plain_tcp(&self) -> Option<&TcpStream> {
        self.inner.plain_tcp()
    }

    fn bytes_read(&self, n: u64) {
        self.traffic.sent.fetch_add(n, Ordering::Relaxed);
        self.inner.bytes_read(n);
    }

    fn bytes_written(&self, n: u64) {
        self.traffic.received.fetch_add(n, Ordering::Relaxed);
        self.inner.bytes_written(n);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.traffic.sent.fetch_add(n, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.traffic.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
