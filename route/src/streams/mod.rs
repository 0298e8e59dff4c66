//! What the data connections' tasks (`data`) share through the `Hub`:
//! visitors waiting for a dial-back ([`tickets`]), each session's spare
//! data connections ([`spares`]), the streams open now, held to the
//! route's limit ([`counts`]), and each serve's streams and bytes for the
//! status page ([`traffic`]).
pub mod counts;
pub mod spares;
pub mod tickets;
pub mod traffic;
