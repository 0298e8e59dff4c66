//! Carrying bytes both ways between two connections once a stream has
//! started: [`bridge`] picks the engine, [`splice`] (Linux, two plain TCP
//! sockets: the kernel moves the bytes) or [`copy`] (anything else:
//! buffers that exist only while data moves). Both pass a half-close on and
//! take turns between the two directions.
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::handshake::Unframed;

pub mod copy;
mod pool;
#[cfg(target_os = "linux")]
pub mod splice;

/// Buffer size for each direction of a stream copied through user space.
/// Larger than tokio's 8 KiB default so bulk transfers take fewer syscalls.
pub const SPLICE_BUF: usize = 64 * 1024;

/// A stream [`bridge`] can carry.
///
/// Between two plain TCP sockets on Linux, bytes move inside the kernel
/// (see [`splice`]) and never pass through the stream's `AsyncRead` or
/// `AsyncWrite`; a layer that watches its bytes (a counter) is told of them
/// through the `bytes_*` hooks instead.
pub trait Relayable: AsyncRead + AsyncWrite + Unpin {
    /// The plain TCP socket beneath, if bytes may be moved on it directly;
    /// `None` when they must pass through this layer (TLS, memory pipes).
    fn plain_tcp(&self) -> Option<&TcpStream> {
        None
    }

    /// `n` bytes were read from [`plain_tcp`](Self::plain_tcp) directly.
    fn bytes_read(&self, _n: u64) {}

    /// `n` bytes were written to [`plain_tcp`](Self::plain_tcp) directly.
    fn bytes_written(&self, _n: u64) {}
}

impl Relayable for TcpStream {
    fn plain_tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl Relayable for tokio::io::DuplexStream {}

/// Carries bytes both ways between `a` and `b` until both directions are
/// done, passing on a half-close (EOF one way shuts down writing the other
/// way). Each side's leftover goes to the other side first.
///
/// Two plain TCP sockets on Linux are relayed in the kernel with splice(2);
/// anything else is copied through user-space buffers.
///
/// Returns bytes carried a→b and b→a (leftovers included).
///
/// # Errors
/// Either socket failed; both are then dropped by the caller.
pub async fn bridge<A, B>(a: Unframed<A>, b: Unframed<B>) -> std::io::Result<(u64, u64)>
where
    A: Relayable,
    B: Relayable,
{
    let (mut a, a_left) = (a.stream, a.leftover);
    let (mut b, b_left) = (b.stream, b.leftover);
    if !a_left.is_empty() {
        b.write_all(&a_left).await?;
    }
    if !b_left.is_empty() {
        a.write_all(&b_left).await?;
    }
    let (ab, ba) = copy_both(&mut a, &mut b).await?;
    Ok((ab + a_left.len() as u64, ba + b_left.len() as u64))
}

/// Which direction goes first, alternating on every poll: each poll spends
/// the task's budget, so a direction that always went first could starve
/// the other.
#[derive(Default)]
struct Turns {
    forward_first: bool,
}

impl Turns {
    /// The order for this poll: `true` is a to b.
    fn next(&mut self) -> [bool; 2] {
        self.forward_first = !self.forward_first;
        [self.forward_first, !self.forward_first]
    }
}

/// The kernel path when both sides allow it, else the portable copy.
async fn copy_both<A: Relayable, B: Relayable>(
    a: &mut A,
    b: &mut B,
) -> std::io::Result<(u64, u64)> {
    #[cfg(target_os = "linux")]
    if let Some(relay) = splice::copy_both(&*a, &*b) {
        return relay.await;
    }
    copy::copy_both(a, b, SPLICE_BUF).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bridge_passes_half_close_and_counts_leftovers() {
        let (client, a) = tokio::io::duplex(1024);
        let (b, server) = tokio::io::duplex(1024);
        let splicer = tokio::spawn(bridge(
            Unframed {
                stream: a,
                leftover: Bytes::from_static(b"hi "),
            },
            Unframed {
                stream: b,
                leftover: Bytes::new(),
            },
        ));
        let (mut client_r, mut client_w) = tokio::io::split(client);
        let (mut server_r, mut server_w) = tokio::io::split(server);
        client_w.write_all(b"there").await.unwrap();
        client_w.shutdown().await.unwrap();
        let mut got = Vec::new();
        server_r.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hi there");
        server_w.write_all(b"reply").await.unwrap();
        server_w.shutdown().await.unwrap();
        let mut back = Vec::new();
        client_r.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"reply");
        assert_eq!(splicer.await.unwrap().unwrap(), (8, 5));
    }
}
