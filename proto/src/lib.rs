//! The vnet wire protocol and the types the route and the vnets share.
//!
//! # Glossary
//! - **route** (hub): the public process. It keeps, per group, a registry of
//!   connected vnets and their serves, and pairs data connections.
//! - **vnet** (endpoint): a private process. It registers local services
//!   (serves) and maps remote serve ids onto local ports (uses).
//! - **serve**: a local TCP service a vnet makes reachable, named by a
//!   [`ServeId`] (dynamic 1-499, static 500-999).
//! - **use** (mapping): a local listener on a vnet whose connections are
//!   carried to a serve of the same group.
//! - **control connection**: one per vnet, framed [`message`]s only:
//!   registration, events, requests. It never carries service bytes, so a
//!   slow reader elsewhere cannot stall it.
//! - **data connection**: one per mapped connection. It starts with a
//!   preamble and one hello frame, then carries raw bytes until closed.
//!   The route binds the visiting side (a use) to the serving side by a
//!   one-time ticket.
//!
//! # Connection start
//! Every connection to the route begins with the [`preamble`]: the client
//! sends `MAGIC` and its [`PROTOCOL_VERSION`]; the route answers with its
//! own. A peer that is not a vnet, or speaks another version, gets a clear
//! error on both sides before any frame is read.
//!
//! This crate opens no sockets and has no clock.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ahead;
pub mod auth;
pub mod codec;
pub mod config;
pub mod ids;
pub mod io;
pub mod message;
pub mod preamble;
pub mod pump;
pub mod signal;
pub mod socket;
#[cfg(test)]
mod test_sockets;
pub mod transport;
#[cfg(target_os = "linux")]
pub mod zero_copy;

pub use ids::{ServeId, SessionKey, Ticket, VnetId};

/// Version of the wire protocol; bumped on every incompatible change.
pub const PROTOCOL_VERSION: u16 = 2;

/// Spare data connections of each role a vnet may keep open at the route
/// (see [`message::VnetMsg::Spare`]); the route refuses more. A vnet is
/// configured with at most half as many, as it replaces a used spare
/// before the route has let go of it.
pub const MAX_SPARES: u32 = 32;

/// Bytes that open every connection to a route.
pub const MAGIC: [u8; 4] = *b"VNET";

/// Largest frame a vnet may send, in bytes: what the route buffers at most
/// for any one connection, authenticated or not.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Largest frame the route may send, in bytes. Larger than
/// [`MAX_FRAME_LEN`] because a group's serve list (up to 999 entries with
/// escaped text) travels in one frame; a vnet only reads frames from the
/// route it was configured to trust.
pub const MAX_ROUTE_FRAME_LEN: usize = 8 * 1024 * 1024;

/// Longest name, group or info string accepted in a message.
pub const MAX_TEXT_LEN: usize = 256;
