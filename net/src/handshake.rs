//! Starting a connection: preamble, first frames, and taking the socket
//! out of its framing once raw bytes follow. Generic over tokio's I/O
//! traits so both programs share one implementation (and tests can use
//! `io::duplex`). Timeouts are the caller's.
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{Encoder, Framed};

use proto::codec::{Limited, MessageCodec, ProtoError};
use proto::preamble::{self, PreambleError};

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
    /// A frame broke the protocol's limits.
    #[error(transparent)]
    Invalid(#[from] proto::validate::Invalid),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proto::codec::RouteCodec;
    use proto::message::{RouteMsg, VnetMsg};

    #[tokio::test]
    async fn hello_and_leftover_reach_the_other_side() {
        let (mut vnet, mut route) = tokio::io::duplex(8);
        let visit = VnetMsg::Request {
            id: 42,
            body: proto::message::Request::ListServes,
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
            VnetMsg::Request { id: 42, .. }
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
}
