//! Carrying bytes both ways between two connections once a stream has
//! started: [`bridge`] picks the engine, [`splice`] (Linux, two plain TCP
//! sockets: the kernel moves the bytes) or [`copy`] (anything else:
//! buffers that exist only while data moves). Both pass a half-close on and
//! take turns between the two directions.
use tokio::io::AsyncWriteExt;

use crate::handshake::Unframed;

pub mod copy;
mod pool;
mod relayable;
#[cfg(target_os = "linux")]
pub mod splice;
mod turns;

pub use relayable::Relayable;

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

/// The kernel path when both sides allow it, else the portable copy.
async fn copy_both<A: Relayable, B: Relayable>(
    a: &mut A,
    b: &mut B,
) -> std::io::Result<(u64, u64)> {
    #[cfg(target_os = "linux")]
    if let Some(relay) = splice::copy_both(&*a, &*b) {
        return relay.await;
    }
    copy::copy_both(a, b, pool::BUFFER_SIZE).await
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
