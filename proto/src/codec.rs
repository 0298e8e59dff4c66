//! Length-prefixed JSON frames for tokio-util's `Framed`.
//!
//! A frame is a 4-byte big-endian length and that many bytes of JSON. JSON
//! keeps the control protocol readable in a capture; only control frames
//! and the one hello per data connection use it, never service bytes.
use bytes::{BufMut, BytesMut};
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::{MAX_FRAME_LEN, MAX_ROUTE_FRAME_LEN};

/// What can go wrong reading or writing frames.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A frame longer than its direction's limit ([`MAX_FRAME_LEN`] from
    /// a vnet, [`MAX_ROUTE_FRAME_LEN`] from the route).
    #[error("frame longer than allowed")]
    FrameTooLong,
    /// A frame was not a message we know.
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// A message type and the largest frame it may travel in.
pub trait Limited {
    /// Largest encoded size, in bytes.
    const MAX_LEN: usize;
}

impl Limited for crate::message::VnetMsg {
    const MAX_LEN: usize = MAX_FRAME_LEN;
}

impl Limited for crate::message::RouteMsg {
    const MAX_LEN: usize = MAX_ROUTE_FRAME_LEN;
}

/// Decodes `In` and encodes `Out`, each under its own direction's limit.
pub struct MessageCodec<In, Out> {
    frames: LengthDelimitedCodec,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In: Limited, Out> Default for MessageCodec<In, Out> {
    fn default() -> Self {
        Self {
            frames: LengthDelimitedCodec::builder()
                .max_frame_length(In::MAX_LEN)
                .new_codec(),
            _types: PhantomData,
        }
    }
}

impl<In: Limited, Out> MessageCodec<In, Out> {
    /// A codec with the protocol's frame caps.
    pub fn new() -> Self {
        Self::default()
    }

    /// A codec that reads frames of at most `max` bytes (the route's
    /// limit for peers that have not proved the token yet).
    pub fn with_limit(max: usize) -> Self {
        let mut codec = Self::default();
        codec.set_limit(max);
        codec
    }

    /// Changes the largest frame read from now on (at most `In`'s own).
    pub fn set_limit(&mut self, max: usize) {
        self.frames.set_max_frame_length(max.min(In::MAX_LEN));
    }
}

impl<In: DeserializeOwned, Out> Decoder for MessageCodec<In, Out> {
    type Item = In;
    type Error = ProtoError;

    /// `Ok(None)` while a frame is incomplete.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, ProtoError> {
        match self.frames.decode(src) {
            Ok(Some(frame)) => Ok(Some(serde_json::from_slice(&frame)?)),
            Ok(None) => Ok(None),
            Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                Err(ProtoError::FrameTooLong)
            }
            Err(err) => Err(err.into()),
        }
    }
}

impl<In, Out: Serialize + Limited> Encoder<Out> for MessageCodec<In, Out> {
    type Error = ProtoError;

    /// Writes the length and the JSON; the length prefix matches what
    /// `LengthDelimitedCodec` reads (4 bytes, big-endian).
    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), ProtoError> {
        let json = serde_json::to_vec(&item)?;
        if json.len() > Out::MAX_LEN {
            return Err(ProtoError::FrameTooLong);
        }
        dst.reserve(4 + json.len());
        dst.put_u32(u32::try_from(json.len()).expect("limits are far below 4 GiB"));
        dst.put_slice(&json);
        Ok(())
    }
}

/// The route's side: reads [`crate::message::VnetMsg`], writes
/// [`crate::message::RouteMsg`].
pub type RouteCodec = MessageCodec<crate::message::VnetMsg, crate::message::RouteMsg>;

/// A vnet's side: reads [`crate::message::RouteMsg`], writes
/// [`crate::message::VnetMsg`].
pub type VnetCodec = MessageCodec<crate::message::RouteMsg, crate::message::VnetMsg>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Request, RouteMsg, VnetMsg};
    use crate::VnetId;

    #[test]
    fn round_trip_both_directions() {
        let mut vnet = VnetCodec::new();
        let mut route = RouteCodec::new();
        let mut buf = BytesMut::new();
        let msg = VnetMsg::Request {
            id: 7,
            body: Request::Ping,
        };
        vnet.encode(msg.clone(), &mut buf).unwrap();
        assert_eq!(route.decode(&mut buf).unwrap(), Some(msg));

        let reply = RouteMsg::Welcome {
            vnet_id: VnetId(3),
            session: crate::SessionId(1),
            heartbeat_secs: 30,
            features: Default::default(),
        };
        route.encode(reply.clone(), &mut buf).unwrap();
        assert_eq!(vnet.decode(&mut buf).unwrap(), Some(reply));
    }

    #[test]
    fn partial_frame_is_incomplete_not_error() {
        let mut vnet = VnetCodec::new();
        let mut route = RouteCodec::new();
        let mut full = BytesMut::new();
        vnet.encode(
            VnetMsg::Request {
                id: 9,
                body: Request::ListServes,
            },
            &mut full,
        )
        .unwrap();
        let mut part = full.split_to(full.len() - 1);
        assert!(route.decode(&mut part).unwrap().is_none());
        part.unsplit(full);
        assert!(route.decode(&mut part).unwrap().is_some());
    }

    #[test]
    fn oversized_frame_is_refused_before_buffering() {
        let mut route = RouteCodec::new();
        let mut buf = BytesMut::from(&((MAX_FRAME_LEN as u32 + 1).to_be_bytes())[..]);
        assert!(matches!(
            route.decode(&mut buf),
            Err(ProtoError::FrameTooLong)
        ));
    }

    #[test]
    fn a_lowered_limit_holds_from_the_next_frame() {
        let mut route = RouteCodec::with_limit(crate::MAX_HELLO_LEN);
        let mut buf = BytesMut::from(&((crate::MAX_HELLO_LEN as u32 + 1).to_be_bytes())[..]);
        assert!(matches!(
            route.decode(&mut buf),
            Err(ProtoError::FrameTooLong)
        ));
        let mut route = RouteCodec::with_limit(crate::MAX_HELLO_LEN);
        route.set_limit(MAX_FRAME_LEN);
        let mut buf = BytesMut::from(&((crate::MAX_HELLO_LEN as u32 + 1).to_be_bytes())[..]);
        assert!(route.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn garbage_and_unknown_variants_are_errors() {
        let mut route = RouteCodec::new();
        for payload in [
            &b"\xff\xfe"[..],
            b"{\"Launch\":{}}",
            b"{\"Visit\":{\"serve_id\":0}}",
        ] {
            let mut buf = BytesMut::from(&(payload.len() as u32).to_be_bytes()[..]);
            buf.extend_from_slice(payload);
            assert!(
                matches!(route.decode(&mut buf), Err(ProtoError::Malformed(_))),
                "{payload:?}"
            );
        }
    }
}
