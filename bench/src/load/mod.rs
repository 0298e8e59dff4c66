//! The workloads the phases run. Each takes an address (the target itself,
//! or the local end of a tunnel) and is bounded both in count and in time.
//!
//! - `throughput`: uploads and downloads, one stream or several, and the
//!   head-of-line test.
//! - `latency`: round trips on an echo connection, and percentiles.
//! - `connections`: connection rate, and many idle connections held open.
//! - `dial`: the bounded connect and the error text the others share.
mod connections;
mod dial;
mod latency;
mod throughput;

pub use connections::{conn_rate, open_idle, verify_idle};
pub use latency::{latency, percentile_us};
pub use throughput::{head_of_line, parallel, Direction, Hol, Transfer};
