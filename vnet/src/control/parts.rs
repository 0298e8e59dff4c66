//! What the control task owns and writes: the session watch, the group's
//! serves, our vnet id and the serves' registrations in the model, the
//! local-serves table, and where the route's asks go. Nobody else writes
//! the session or the group's serves.
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::asks::AskSenders;
use super::session::Session;
use crate::current::Current;
use crate::local::LocalServes;
use crate::model::{GroupServes, Model};

/// The control task's share of the vnet.
pub(crate) struct ControlParts {
    /// Settings in force, read on every connect.
    pub current: Current,
    /// The model: link state, vnet id, registrations.
    pub model: Model,
    /// The group's serves, as the route announces them.
    pub group: watch::Sender<GroupServes>,
    /// The live session; `None` while not connected.
    pub session: watch::Sender<Option<Session>>,
    /// Registered serves by id, for the serving side.
    pub local: LocalServes,
    /// Where stream requests and unserve asks go.
    pub asks: AskSenders,
    /// Ends the task; registered serves' streams are its children.
    pub shutdown: CancellationToken,
}
