//! The vnet wire protocol and the types the route and the vnets share.
//!
//! Pure: messages, ids, limits, framing, the authentication exchange and
//! the ini helpers. No sockets, no clock; the async I/O both programs
//! share is in the `net` crate.
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
//! - **grant** (unserve): a time-limited serve a vnet registers when
//!   another vnet of its group asks for one of its unregistered services.
//! - **control connection**: one per vnet, framed [`message`]s only:
//!   registration, events, requests. It never carries service bytes, so a
//!   slow reader elsewhere cannot stall it.
//! - **data connection**: one per mapped connection from each vnet to the
//!   route. It starts with a preamble and one hello frame carrying a
//!   [`pass`], then carries raw bytes until closed. The route pairs the
//!   visiting side (a use) with the serving side.
//! - **spare**: a data connection opened ahead of need, so a new stream
//!   costs no connect.
//! - **session**: one control connection's life; its [`SessionId`] and the
//!   secret derived in [`auth`] admit that vnet's data connections.
//!
//! # Connection start
//! Every connection to the route begins with the [`preamble`]: the client
//! sends `MAGIC` and its [`PROTOCOL_VERSION`]; the route answers with its
//! own. A peer that is not a vnet, or speaks another version, gets a clear
//! error on both sides before any frame is read. Within a version, the
//! hello and the welcome announce [`features`], so later additions need no
//! lockstep upgrade.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod codec;
pub mod direct;
pub mod e2e;
pub mod features;
pub mod hex;
pub mod ids;
pub mod ini;
pub mod message;
pub mod pass;
pub mod preamble;
pub mod refusal;
pub mod text;
pub mod validate;

pub use ids::{AskId, ServeId, SessionId, Ticket, VnetId};
pub use refusal::{Refusal, RefusalCode};

/// Version of the wire protocol; bumped on every incompatible change.
/// 3: token proved by a PAKE, data connections carry passes, typed
/// refusals, features in the hello and welcome.
pub const PROTOCOL_VERSION: u16 = 3;

/// Spare data connections of each role a vnet may keep open at the route
/// (see [`message::VnetMsg::Spare`]); the route refuses more. A vnet is
/// configured with at most half as many, as it replaces a used spare
/// before the route has let go of it.
pub const MAX_SPARES: u32 = 32;

/// Bytes that open every connection to a route.
pub const MAGIC: [u8; 4] = *b"VNET";

/// Largest frame a vnet may send on an authenticated control connection:
/// what the route buffers at most for it.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Largest frame the route reads from a peer that has not proved the
/// token yet, and on data connections: hellos are small, so a stranger
/// cannot make the route buffer much.
pub const MAX_HELLO_LEN: usize = 4 * 1024;

/// Largest frame the route may send, in bytes. Larger than
/// [`MAX_FRAME_LEN`] because a group's serve list (up to 999 entries)
/// travels in one frame; a vnet only reads frames from the route it was
/// configured to trust.
pub const MAX_ROUTE_FRAME_LEN: usize = 8 * 1024 * 1024;

/// Longest name, group or info string accepted in a message.
pub const MAX_TEXT_LEN: usize = 256;
