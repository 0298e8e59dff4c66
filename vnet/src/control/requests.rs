//! Requests sent on the control connection and not yet answered, by id:
//! who waits for each answer, and which registrations are in flight so a
//! second ask for the same serve joins the first.
use proto::message::Response;
use proto::ServeId;
use std::collections::HashMap;
use tokio::sync::oneshot;

use crate::error::VnetError;

/// Everyone waiting for one registration's outcome.
pub(crate) type Waiters = Vec<oneshot::Sender<Result<ServeId, VnetError>>>;

/// What a request in flight was for.
pub(crate) enum InFlight {
    /// Registering the serve with this key.
    Register(String, Waiters),
    /// Withdrawing a registration; nobody waits.
    Unregister,
    /// A keep-alive ping; any answer will do.
    Heartbeat,
    /// Someone's request; the answer goes back as it is.
    Reply(oneshot::Sender<Result<Response, VnetError>>),
}

/// Requests sent and not yet answered, by id.
#[derive(Default)]
pub(crate) struct Requests {
    in_flight: HashMap<u32, InFlight>,
    last_id: u32,
}

impl Requests {
    /// The waiters of a registration of `key` in flight, if there is one.
    pub(crate) fn registering(&mut self, key: &str) -> Option<&mut Waiters> {
        self.in_flight.values_mut().find_map(|f| match f {
            InFlight::Register(k, waiters) if k == key => Some(waiters),
            _ => None,
        })
    }

    /// Records a request about to be sent; returns its id.
    pub(crate) fn track(&mut self, what: InFlight) -> u32 {
        self.last_id = self.last_id.wrapping_add(1);
        self.in_flight.insert(self.last_id, what);
        self.last_id
    }

    /// What the answered request `id` was for.
    pub(crate) fn answered(&mut self, id: u32) -> Option<InFlight> {
        self.in_flight.remove(&id)
    }
}
