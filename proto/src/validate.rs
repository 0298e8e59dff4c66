//! The limits the route holds every vnet message to, before acting on it:
//! text fields are short and printable (so registry entries stay small, a
//! group's listing fits one frame, and nothing a peer sends can forge a log
//! line or a table row), and feature lists are short.
use crate::message::{PeerMsg, Request, VnetMsg};
use crate::{Refusal, MAX_TEXT_LEN};

/// Most features a peer may announce.
const MAX_FEATURES: usize = 64;

/// A message field that breaks a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field} {problem}")]
pub struct Invalid {
    /// Which field.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn text(field: &'static str, value: &str) -> Result<(), Invalid> {
    if value.len() > MAX_TEXT_LEN {
        return Err(Invalid {
            field,
            problem: format!("is longer than {MAX_TEXT_LEN} bytes"),
        });
    }
    crate::text::printable(value).map_err(|problem| Invalid { field, problem })
}

fn refusal<T>(result: &Result<T, Refusal>) -> Result<(), Invalid> {
    match result {
        Err(refusal) => text("reason", &refusal.text),
        Ok(_) => Ok(()),
    }
}

impl VnetMsg {
    /// Checks the limits the route relies on.
    ///
    /// # Errors
    /// The first field that breaks one.
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            VnetMsg::Hello {
                name,
                group,
                features,
                ..
            } => {
                text("name", name)?;
                text("group", group)?;
                if features.len() > MAX_FEATURES {
                    return Err(Invalid {
                        field: "features",
                        problem: format!("lists more than {MAX_FEATURES}"),
                    });
                }
                Ok(())
            }
            VnetMsg::Visit { .. } | VnetMsg::Auth { .. } | VnetMsg::Spare { .. } => Ok(()),
            VnetMsg::Accept { result, .. } | VnetMsg::Opened { result } => refusal(result),
            VnetMsg::UnserveAnswer { result, .. } => refusal(result),
            VnetMsg::Peer {
                msg: PeerMsg::Refused(reason),
                ..
            } => text("reason", reason),
            VnetMsg::Peer { .. } => Ok(()),
            VnetMsg::Request {
                body: Request::Unserve { ip, .. },
                ..
            } => text("ip", ip),
            VnetMsg::Request {
                body: Request::RegisterServe(spec),
                ..
            } => {
                text("name", &spec.name)?;
                text("kind", &spec.kind)?;
                text("ip", &spec.ip)?;
                text("info", &spec.info)
            }
            VnetMsg::Request { .. } => Ok(()),
            VnetMsg::Direct(card) if card.addrs.len() > crate::direct::MAX_CANDIDATES => {
                Err(Invalid {
                    field: "addrs",
                    problem: format!("lists more than {}", crate::direct::MAX_CANDIDATES),
                })
            }
            VnetMsg::Direct(_) => Ok(()),
        }
    }
}
