//! Log targets of the lines that restate what a shell command answers (a
//! use listening, closed or failed, a serve registered, refused or closed,
//! a reload's summary), so that the shell can leave them off its screen
//! while that command runs. They are logged as usual everywhere else.

/// A use's listening and closing.
pub const USE: &str = "vnet::use";
/// A serve's registration and closing.
pub const SERVE: &str = "vnet::serve";
/// A reload's summary.
pub const RELOAD: &str = "vnet::reload";
/// All of them.
pub const ALL: &[&str] = &[USE, SERVE, RELOAD];
