//! Identifiers: serve ids, vnet ids, sessions, tickets and asks.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Names a serve within a group. 1-499 are dynamic (the route may change
/// them on conflict), 500-999 are static (never changed).
///
/// ```
/// use proto::ServeId;
/// assert_eq!(ServeId::new(7).unwrap().to_string(), "007");
/// assert!(ServeId::new(700).unwrap().is_static());
/// assert!(ServeId::new(1000).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct ServeId(u16);

impl ServeId {
    /// Smallest dynamic id.
    pub const DYNAMIC_MIN: u16 = 1;
    /// Largest dynamic id.
    pub const DYNAMIC_MAX: u16 = 499;
    /// Smallest static id.
    pub const STATIC_MIN: u16 = 500;
    /// Largest id of all.
    pub const MAX: u16 = 999;

    /// An id in 1..=999, or `None`.
    pub fn new(value: u16) -> Option<Self> {
        (1..=Self::MAX).contains(&value).then_some(Self(value))
    }

    /// The number itself.
    pub fn get(self) -> u16 {
        self.0
    }

    /// Whether the route must never change this id.
    pub fn is_static(self) -> bool {
        self.0 >= Self::STATIC_MIN
    }
}

impl TryFrom<u16> for ServeId {
    type Error = String;
    fn try_from(value: u16) -> Result<Self, String> {
        Self::new(value).ok_or_else(|| format!("serve id {value} is not in 1-999"))
    }
}

impl From<ServeId> for u16 {
    fn from(id: ServeId) -> u16 {
        id.0
    }
}

impl fmt::Display for ServeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

/// Names a connected vnet within its group; given by the route.
///
/// ```
/// assert_eq!(proto::VnetId(1).to_string(), "01");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VnetId(pub u16);

impl fmt::Display for VnetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

/// One-time random value that binds a serving vnet's data connection to a
/// waiting visitor at the route. Drawn fresh per connection so that it
/// cannot be guessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ticket(pub u64);

/// Names one control session at the route: the vnet's data connections
/// carry it in their pass. Public: a data connection is admitted by the
/// pass's MAC, keyed with the session's secret (see [`crate::pass`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub u64);

/// Names an unserve ask the route passed on to the vnet asked; the answer
/// must carry it. Chosen by the route, so a vnet can answer only asks it
/// was really sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AskId(pub u64);
