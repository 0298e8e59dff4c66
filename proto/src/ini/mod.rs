//! Reading the original's ini format, shared by route and vnet.
//!
//! rust-ini (with `inline-comment`) does the parsing; this module adds what
//! users need from errors: every one names the file, the section and the
//! key. Unknown sections and keys, and repeated ones, are errors rather
//! than silently ignored. An empty value counts as not written, as in the
//! original.
mod error;
mod file;
mod route;
mod section;

pub use error::ConfigError;
pub use file::IniFile;
pub use route::{join_host_port, RouteBasics, ROUTE_KEYS};
pub use section::{comment_hint, is_host, Section};

#[cfg(test)]
mod tests;
