//! The paths a stream can take between two vnets. Today there is one,
//! [`relay`]: through the route, on a data connection of its own from each
//! vnet. A direct path between vnets will be a sibling of it; the stream
//! sides in `streams` choose the path.
pub(crate) mod relay;
