//! Connection start and byte splicing, generic over tokio's I/O traits so
//! both sides share one implementation (and tests can use `io::duplex`).
//! Timeouts are the caller's: this module has no clock.
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Encoder, Framed};

use crate::codec::{Limited, MessageCodec, ProtoError};
use crate::preamble::{self, PreambleError};

/// Why a connection could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The socket failed or closed early.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The peer's preamble was wrong.
    #[error(transparent)]
    Preamble(#[from] PreambleError),
    /// A frame could not be read.
    #[error(transparent)]
    Proto(#[from] ProtoError),
    /// The peer closed before its first frame.
    #[error("peer closed the connection during the handshake")]
    Closed,
}

/// Reads and checks the peer's preamble.
///
/// # Errors
/// Early close, or a preamble from something that is not a vnet peer or
/// speaks another protocol version.
///
/// Not cancel-safe (uses `read_exact`); call it under a timeout, not in
/// `select!`.
pub async fn read_preamble<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(), HandshakeError> {
    let mut bytes = [0u8; preamble::LEN];
    stream.read_exact(&mut bytes).await?;
    preamble::check(&bytes)?;
    Ok(())
}

/// Writes our preamble followed by `first` as one frame, in one write, so a
/// data connection costs no extra round trip.
///
/// # Errors
/// The socket failed or the message could not be encoded.
pub async fn write_preamble_and<S, In, Out>(
    stream: &mut S,
    first: Option<Out>,
) -> Result<(), HandshakeError>
where
    S: AsyncWrite + Unpin,
    In: Limited,
    Out: Serialize + Limited,
{
    let mut buf = BytesMut::from(&preamble::encode()[..]);
    if let Some(msg) = first {
        MessageCodec::<In, Out>::new().encode(msg, &mut buf)?;
    }
    stream.write_all(&buf).await?;
    Ok(())
}

/// Reads one message from a framed stream.
///
/// # Errors
/// The peer closed, or sent something that is not a message.
///
/// Cancel-safe: `Framed` keeps partial frames buffered.
pub async fn next_message<S, In, Out>(
    framed: &mut Framed<S, MessageCodec<In, Out>>,
) -> Result<In, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    In: DeserializeOwned,
{
    match framed.next().await {
        Some(Ok(msg)) => Ok(msg),
        Some(Err(err)) => Err(err.into()),
        None => Err(HandshakeError::Closed),
    }
}

/// Sends one message and flushes it.
///
/// # Errors
/// The socket failed.
pub async fn send_message<S, In, Out>(
    framed: &mut Framed<S, MessageCodec<In, Out>>,
    msg: Out,
) -> Result<(), ProtoError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Out: Serialize + Limited,
{
    framed.send(msg).await
}

/// A stream taken out of its `Framed`, with bytes the codec had read past
/// the last frame; they belong to the raw data that follows.
pub struct Unframed<S> {
    /// The socket.
    pub stream: S,
    /// Bytes already read from it and not yet forwarded.
    pub leftover: Bytes,
}

impl<S> Unframed<S> {
    /// Takes the stream out of `framed`, keeping its read-ahead.
    pub fn from_framed<C>(framed: Framed<S, C>) -> Self {
        let parts = framed.into_parts();
        // Frames are flushed before this is called, so write_buf is empty.
        // Copy out only the bytes: freezing the buffer would keep its whole
        // allocation (8 KiB or more) alive for the connection's life.
        Self {
            stream: parts.io,
            leftover: Bytes::copy_from_slice(&parts.read_buf),
        }
    }
}

/// Buffer size for each direction of a splice copied through user space.
/// Larger than tokio's 8 KiB default so bulk transfers take fewer syscalls.
pub const SPLICE_BUF: usize = 64 * 1024;

/// A stream [`splice`] can carry.
///
/// Between two plain TCP sockets on Linux, bytes move inside the kernel
/// (see `zero_copy`) and never pass through the stream's `AsyncRead` or
/// `AsyncWrite`; a layer that watches its bytes (a counter) is told of them
/// through the `bytes_*` hooks instead.
pub trait Spliceable: AsyncRead + AsyncWrite + Unpin {
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

impl Spliceable for TcpStream {
    fn plain_tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl Spliceable for tokio::io::DuplexStream {}

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
pub async fn splice<A, B>(a: Unframed<A>, b: Unframed<B>) -> std::io::Result<(u64, u64)>
where
    A: Spliceable,
    B: Spliceable,
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
async fn copy_both<A: Spliceable, B: Spliceable>(
    a: &mut A,
    b: &mut B,
) -> std::io::Result<(u64, u64)> {
    #[cfg(target_os = "linux")]
    if let Some(relay) = crate::zero_copy::copy_both(&*a, &*b) {
        return relay.await;
    }
    crate::pump::copy_both(a, b, SPLICE_BUF).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::RouteCodec;
    use crate::message::{RouteMsg, VnetMsg};
    use crate::{ServeId, SessionKey};

    #[tokio::test]
    async fn hello_and_leftover_reach_the_other_side() {
        let (mut vnet, mut route) = tokio::io::duplex(8);
        let visit = VnetMsg::Visit {
            serve_id: ServeId::new(42).unwrap(),
            session: SessionKey(5),
        };
        let writer = tokio::spawn(async move {
            write_preamble_and::<_, RouteMsg, _>(&mut vnet, Some(visit))
                .await
                .unwrap();
            vnet.write_all(b"raw bytes").await.unwrap();
            vnet
        });
        read_preamble(&mut route).await.unwrap();
        let mut framed = Framed::new(route, RouteCodec::new());
        assert!(matches!(
            next_message(&mut framed).await.unwrap(),
            VnetMsg::Visit { .. }
        ));
        let mut rest = Unframed::from_framed(framed);
        drop(writer.await.unwrap());
        let mut tail = Vec::new();
        rest.stream.read_to_end(&mut tail).await.unwrap();
        let mut all = rest.leftover.to_vec();
        all.extend_from_slice(&tail);
        assert_eq!(all, b"raw bytes");
    }

    #[tokio::test]
    async fn wrong_magic_and_version_are_named() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let err = read_preamble(&mut b).await.unwrap_err();
        assert!(err.to_string().contains("not a vnet"), "{err}");

        let mut old = preamble::encode();
        old[5] = old[5].wrapping_add(1);
        let (mut c, mut d) = tokio::io::duplex(64);
        c.write_all(&old).await.unwrap();
        let err = read_preamble(&mut d).await.unwrap_err();
        assert!(err.to_string().contains("protocol version"), "{err}");
    }

    #[tokio::test]
    async fn splice_passes_half_close_and_counts_leftovers() {
        let (client, a) = tokio::io::duplex(1024);
        let (b, server) = tokio::io::duplex(1024);
        let splicer = tokio::spawn(splice(
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
