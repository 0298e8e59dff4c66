//! How the rest of the route reaches a joined vnet's control connection,
//! and the task that writes to it.
//!
//! Two queues, two fates. Events a vnet must not miss (serve up and down,
//! answers to its requests) go on `events`: if that queue is full, the
//! vnet is not reading, and it is cut off (once, with one log line) rather
//! than left with a wrong view or allowed to grow the route's memory.
//! Best-effort traffic (dial-back requests, unserve asks and answers) goes
//! on `asides`: when that is full, only that one request fails, and its
//! requester is told the vnet is busy.
//!
//! A writer task of its own drains both, events first, as many per flush
//! as are waiting. A write the vnet does not take within a heartbeat ends
//! the writer; the session's loop, which only reads and watches the
//! heartbeat and the cut, never waits on a write.
use futures::stream::SplitSink;
use futures::SinkExt;
use proto::message::RouteMsg;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::conn::Half;

/// Events waiting for one vnet at most: a whole group's serves (999) and
/// a welcome fit.
pub const EVENTS: usize = 2048;
/// Best-effort messages waiting for one vnet at most: a burst of visitors
/// to its serves is a burst of dial-back requests.
pub const ASIDES: usize = 1024;

/// How to reach a connected vnet's control task. Cheap to clone.
#[derive(Clone)]
pub struct VnetLink {
    events: mpsc::Sender<RouteMsg>,
    asides: mpsc::Sender<RouteMsg>,
    /// Cancelled to end the session: shutdown, or the vnet cut off.
    pub cancel: CancellationToken,
    /// Why the vnet was cut off, set once.
    cut: Arc<OnceLock<&'static str>>,
    /// Cancelled when the vnet is lost (silent, or not reading, for a
    /// heartbeat): its streams end in a reset, as their own connections
    /// may be dead too.
    pub lost: CancellationToken,
}

/// The receiving ends of a [`VnetLink`], for its writer.
pub struct Queues {
    events: mpsc::Receiver<RouteMsg>,
    asides: mpsc::Receiver<RouteMsg>,
}

#[cfg(test)]
impl Queues {
    /// The next event queued, if any.
    pub fn try_event(&mut self) -> Option<RouteMsg> {
        self.events.try_recv().ok()
    }
}

/// A best-effort message could not be queued: the vnet is not keeping up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl VnetLink {
    /// A link for a new control session; its session ends with `cancel`.
    pub fn new(cancel: CancellationToken) -> (Self, Queues) {
        Self::with_room(cancel, EVENTS, ASIDES)
    }

    /// As [`VnetLink::new`], with queues of the given sizes.
    pub fn with_room(cancel: CancellationToken, events: usize, asides: usize) -> (Self, Queues) {
        let (events, events_rx) = mpsc::channel(events);
        let (asides, asides_rx) = mpsc::channel(asides);
        let link = Self {
            events,
            asides,
            cancel,
            cut: Arc::default(),
            lost: CancellationToken::new(),
        };
        let queues = Queues {
            events: events_rx,
            asides: asides_rx,
        };
        (link, queues)
    }

    /// Queues a message the vnet must not miss; a full queue cuts it off.
    pub fn event(&self, msg: RouteMsg) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events.try_send(msg) {
            self.cut_off("not reading its control connection");
        }
    }

    /// Queues a best-effort message.
    ///
    /// # Errors
    /// The queue is full (the vnet is not keeping up) or the session ended.
    pub fn aside(&self, msg: RouteMsg) -> Result<(), Busy> {
        self.asides.try_send(msg).map_err(|_| Busy)
    }

    /// Ends the session, saying why (the first reason given wins).
    pub fn cut_off(&self, why: &'static str) {
        let _ = self.cut.set(why);
        self.cancel.cancel();
    }

    /// Why the vnet was cut off, if it was.
    pub fn cut_reason(&self) -> Option<&'static str> {
        self.cut.get().copied()
    }
}

/// Why the writer stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriteFailed {
    /// The vnet took nothing for a whole heartbeat.
    #[error("took nothing written to it for {0:?}")]
    Stuck(Duration),
    /// The socket or the framing failed.
    #[error(transparent)]
    Broken(#[from] proto::codec::ProtoError),
}

/// Writes what the queues bring to `sink` until the session ends (the
/// queues' senders are gone) or a write fails or takes longer than
/// `deadline`.
pub async fn write(
    mut sink: SplitSink<Half, RouteMsg>,
    mut queues: Queues,
    deadline: Duration,
) -> Result<(), WriteFailed> {
    loop {
        let first = tokio::select! {
            biased;
            Some(msg) = queues.events.recv() => msg,
            Some(msg) = queues.asides.recv() => msg,
            else => return Ok(()),
        };
        let batch = async {
            sink.feed(first).await?;
            while let Ok(msg) = queues.events.try_recv() {
                sink.feed(msg).await?;
            }
            while let Ok(msg) = queues.asides.try_recv() {
                sink.feed(msg).await?;
            }
            sink.flush().await
        };
        match tokio::time::timeout(deadline, batch).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err.into()),
            Err(_) => return Err(WriteFailed::Stuck(deadline)),
        }
    }
}
