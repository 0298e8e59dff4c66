//! The async I/O both vnet programs share: connections to the route
//! ([`transport`], [`handshake`]), carrying a started stream ([`relay`],
//! [`ahead`]), and the sockets, signals and start of a process
//! ([`listen`], [`socket`], [`signal`], [`process`]).
//!
//! The wire format itself (messages, framing, authentication) is the pure
//! `proto` crate; this one puts it on sockets.
#![forbid(unsafe_code)]

pub mod ahead;
pub mod handshake;
pub mod listen;
pub mod process;
pub mod relay;
pub mod signal;
pub mod socket;
#[cfg(any(test, feature = "test-util"))]
pub mod test_sockets;
pub mod transport;

pub use handshake::{HandshakeError, Unframed};
pub use transport::Transport;
