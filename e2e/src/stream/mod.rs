//! The data side of the tests: a byte pattern (`pattern`), what a reader
//! and a writer report about how a stream ended (`report`), and
//! [`transfer()`], one mapped connection with a cut in the middle
//! (`transfer`). Everything is re-exported here.
mod pattern;
mod report;
mod transfer;

pub use pattern::{first_mismatch, pattern, CHUNK};
pub use report::{reset, End, ReadReport, Side, WriteReport};
pub use transfer::{transfer, Dir, Outcome, Plan};
