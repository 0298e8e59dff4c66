//! Test support for the vnet workspace, in one place: a bounded wait
//! ([`within`]), connected socket pairs, small real TCP services
//! ([`services`]), a route and vnets started in-process on 127.0.0.1
//! port 0 ([`harness`]), a vnet written by hand from the protocol
//! ([`raw`]) for tests that must see or send exactly what is on the wire,
//! a binary run as its own process with its log read line by line
//! ([`process`]), and a cable that can be pulled ([`cable`]).
pub mod cable;
pub mod harness;
pub mod process;
pub mod raw;
pub mod services;
pub mod wait;

pub use harness::*;
pub use net::test_sockets::socket_pair;
pub use process::{line_with, Logged};
pub use services::*;
pub use wait::{within, LIMIT};
