//! What the data connections' tasks (`data`) share through the `Hub`:
//! visitors waiting for a dial-back ([`tickets`]), each session's spare
//! data connections ([`spares`]), and the streams open now, held to the
//! route's limit ([`counts`]).
pub mod counts;
pub mod spares;
pub mod tickets;
