//! Streams: one mapped connection each, between a use's client on one vnet
//! and a serve's local service on another. [`visit`] is the client's side,
//! [`serve`] the service's; both count the stream in the model and carry
//! its bytes (half-close included) once a path has started it. Today the
//! path is always the relay through the route (`paths::relay`).
pub(crate) mod serve;
pub(crate) mod visit;
