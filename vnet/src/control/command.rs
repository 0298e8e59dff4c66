//! Asking the control task for something: a request to the route, a
//! registration, a withdrawal, a message, a reconnect. [`ControlSender`]
//! is the only way in; the task answers over a `oneshot` where someone
//! waits, and refuses what needs the route while it is not connected.
use proto::message::{Request, Response, VnetMsg};
use proto::ServeId;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use crate::error::VnetError;

/// How long a request to the route may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Commands waiting for the control task at most.
const QUEUE: usize = 64;

/// Something asked of the control task.
pub(crate) enum Command {
    /// A request; the answer goes to the sender.
    Request(Request, oneshot::Sender<Result<Response, VnetError>>),
    /// Register the serve with this key (as the status has it); the id or
    /// the refusal goes to the sender, if any.
    Register(String, Option<oneshot::Sender<Result<ServeId, VnetError>>>),
    /// Withdraw a registration; nobody waits for the answer.
    Unregister(ServeId),
    /// Send a message that is not a request.
    Send(VnetMsg),
    /// Send a message that is not a request, only on this session (it
    /// was made for what that session's route supports).
    SendIn(proto::SessionId, VnetMsg),
    /// Drop the control connection and connect again with the settings
    /// in force.
    Reconnect,
    /// The direct link to this vnet went down: serves of it kept only
    /// for the link go.
    DirectDown(proto::VnetId),
}

impl Command {
    /// Answers a command that cannot be carried out now. A registration
    /// stays pending: it happens when the route is back.
    pub(crate) fn refuse(self, err: VnetError) {
        match self {
            Command::Request(_, reply) => {
                let _ = reply.send(Err(err));
            }
            Command::Register(_, Some(reply)) => {
                let _ = reply.send(Err(err));
            }
            Command::Register(_, None)
            | Command::Unregister(_)
            | Command::Send(_)
            | Command::SendIn(..)
            | Command::DirectDown(_)
            | Command::Reconnect => {}
        }
    }
}

/// Sends commands to the control task. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ControlSender(mpsc::Sender<Command>);

impl ControlSender {
    /// A sender and the receiving end the control task reads.
    pub(crate) fn channel() -> (Self, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self(tx), rx)
    }

    async fn send_command(&self, command: Command) -> Result<(), VnetError> {
        self.0.send(command).await.map_err(|_| VnetError::Stopped)
    }

    /// Sends a request to the route and waits (bounded) for the answer; a
    /// refusal comes back as [`VnetError::Refused`].
    ///
    /// # Errors
    /// Not connected, refused, timed out, or stopping.
    pub(crate) async fn request(&self, request: Request) -> Result<Response, VnetError> {
        let (tx, rx) = oneshot::channel();
        self.send_command(Command::Request(request, tx)).await?;
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, rx)
            .await
            .map_err(|_| VnetError::Timeout(REQUEST_TIMEOUT))?
            .map_err(|_| VnetError::Stopped)??;
        match answer {
            Response::Error(refusal) => Err(VnetError::Refused(refusal)),
            answer => Ok(answer),
        }
    }

    /// Registers the serve `key` and waits (bounded) for its id.
    ///
    /// # Errors
    /// Not connected (it registers when the route is back), refused,
    /// timed out, or stopping.
    pub(crate) async fn register(&self, key: &str) -> Result<ServeId, VnetError> {
        let (tx, rx) = oneshot::channel();
        self.send_command(Command::Register(key.to_string(), Some(tx)))
            .await?;
        tokio::time::timeout(REQUEST_TIMEOUT, rx)
            .await
            .map_err(|_| VnetError::Timeout(REQUEST_TIMEOUT))?
            .map_err(|_| VnetError::Stopped)?
    }

    /// Registers the serve `key`; the outcome shows in the status only.
    pub(crate) async fn register_later(&self, key: String) {
        let _ = self.send_command(Command::Register(key, None)).await;
    }

    /// Withdraws registration `id`. Awaited, not tried: a full queue must
    /// not lose the withdrawal.
    pub(crate) async fn unregister(&self, id: ServeId) {
        let _ = self.send_command(Command::Unregister(id)).await;
    }

    /// Sends `msg` on the control connection, if it is up.
    pub(crate) async fn send(&self, msg: VnetMsg) {
        let _ = self.send_command(Command::Send(msg)).await;
    }

    /// Sends `msg` on the control connection if session `session` is
    /// still the live one.
    pub(crate) async fn send_in(&self, session: proto::SessionId, msg: VnetMsg) {
        let _ = self.send_command(Command::SendIn(session, msg)).await;
    }

    /// Says the direct link to `vnet` went down.
    pub(crate) async fn direct_down(&self, vnet: proto::VnetId) {
        let _ = self.send_command(Command::DirectDown(vnet)).await;
    }

    /// Reconnects with the settings in force.
    pub(crate) async fn reconnect(&self) {
        let _ = self.send_command(Command::Reconnect).await;
    }
}
