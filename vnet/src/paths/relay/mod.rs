//! The path through the route. Every stream gets its own data connection
//! from each vnet to the route, which pairs the two and copies bytes, so
//! TCP flow control applies per stream.
//!
//! - [`dial`]: opening a data connection and reading the route's answer.
//! - [`spares`]: data connections opened ahead of need, per session.
//! - [`visit`]: the visiting side starting a stream, on a spare or a new
//!   connection, with the client's first bytes going ahead.
//! - [`answer`]: the serving side answering the route, on a spare or by
//!   dialing back with the route's ticket.
pub(crate) mod answer;
pub(crate) mod dial;
pub(crate) mod spares;
pub(crate) mod visit;
