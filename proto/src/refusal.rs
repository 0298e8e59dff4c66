//! Why something was refused, as it travels on the wire: a code to count,
//! test and act on, and a text for people.
use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of refusal. Unknown codes from a newer peer read as
/// [`RefusalCode::Other`], so adding one needs no version bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The token was not proved (wrong, missing, or one side has none).
    Auth,
    /// The message broke the protocol or a limit (too long, unexpected).
    Protocol,
    /// A limit of the route or of a vnet is reached (`max_vnets`,
    /// `max_serves_per_vnet`, `max_connections`, spares, grants).
    Limit,
    /// No such serve, vnet, session or ticket.
    NotFound,
    /// A static serve id is held by another vnet.
    Taken,
    /// The serving vnet could not reach its local service.
    Unreachable,
    /// A rule of the asked vnet forbids it (unserve rules).
    NotAllowed,
    /// The peer is not keeping up (its queue is full) or did not answer
    /// in time.
    Busy,
    /// Not supported (a serve type other than tcp).
    Unsupported,
    /// A code this side does not know.
    #[serde(other)]
    Other,
}

impl RefusalCode {
    /// Every code, for whoever lists or counts them.
    pub const ALL: [RefusalCode; 10] = [
        Self::Auth,
        Self::Protocol,
        Self::Limit,
        Self::NotFound,
        Self::Taken,
        Self::Unreachable,
        Self::NotAllowed,
        Self::Busy,
        Self::Unsupported,
        Self::Other,
    ];

    /// The code as written on the wire and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Protocol => "protocol",
            Self::Limit => "limit",
            Self::NotFound => "not_found",
            Self::Taken => "taken",
            Self::Unreachable => "unreachable",
            Self::NotAllowed => "not_allowed",
            Self::Busy => "busy",
            Self::Unsupported => "unsupported",
            Self::Other => "other",
        }
    }
}

/// A refusal: its code and a text for people.
///
/// ```
/// use proto::{Refusal, RefusalCode};
/// let r = Refusal::new(RefusalCode::Limit, "the route is full");
/// assert_eq!(r.to_string(), "the route is full");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// What kind.
    pub code: RefusalCode,
    /// Why, for people (at most [`crate::MAX_TEXT_LEN`] bytes on the wire
    /// from a vnet).
    pub text: String,
}

impl Refusal {
    /// A refusal with this code and text.
    pub fn new(code: RefusalCode, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }
}

/// The text, escaped: it came from a peer, and is shown in logs and at
/// terminals (see [`crate::text`]).
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text::escape(&self.text))
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_shown_escaped() {
        let r = Refusal::new(RefusalCode::Other, "no\n2026 INFO forged");
        assert_eq!(r.to_string(), "no\\n2026 INFO forged");
    }

    #[test]
    fn unknown_codes_read_as_other() {
        let r: Refusal = serde_json::from_str(r#"{"code":"quota","text":"x"}"#).unwrap();
        assert_eq!(r.code, RefusalCode::Other);
        let json = serde_json::to_string(&Refusal::new(RefusalCode::NotFound, "x")).unwrap();
        assert_eq!(json, r#"{"code":"not_found","text":"x"}"#);
    }

    #[test]
    fn all_lists_every_code_once_in_order() {
        // A new code fails this match until it is placed in ALL too.
        for (at, code) in RefusalCode::ALL.into_iter().enumerate() {
            let place = match code {
                RefusalCode::Auth => 0,
                RefusalCode::Protocol => 1,
                RefusalCode::Limit => 2,
                RefusalCode::NotFound => 3,
                RefusalCode::Taken => 4,
                RefusalCode::Unreachable => 5,
                RefusalCode::NotAllowed => 6,
                RefusalCode::Busy => 7,
                RefusalCode::Unsupported => 8,
                RefusalCode::Other => 9,
            };
            assert_eq!(at, place, "{code:?}");
        }
    }
}
