//! Writing to the control connection without ever blocking the loop that
//! reads it and watches the heartbeat.
//!
//! Messages go into a bounded queue; a task of their own writes them, as
//! many per flush as are waiting. A route that stops reading fills the
//! socket, then the queue: a write not taken within a heartbeat, or a full
//! queue, ends the session (and the reader notices at once), instead of
//! the session waiting on a write while its heartbeat goes unwatched.
use futures::stream::SplitSink;
use futures::SinkExt;
use proto::message::VnetMsg;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::LinkLost;
use crate::link::FramedConn;

/// Messages waiting to be written at most. The sweep of registrations at
/// the start of a session (at most 999 serves) fits.
pub(crate) const QUEUE: usize = 1024;

/// The sending side of a session's control connection.
pub(crate) struct Writer {
    queue: mpsc::Sender<VnetMsg>,
    task: JoinHandle<LinkLost>,
}

impl Writer {
    /// Starts writing to `sink`; a write not taken within `deadline` ends
    /// the writer.
    pub(crate) fn spawn(sink: SplitSink<FramedConn, VnetMsg>, deadline: Duration) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write(sink, rx, deadline));
        Self { queue, task }
    }

    /// Queues `msg`.
    ///
    /// # Errors
    /// The queue is full (the route is not reading) or the writer ended.
    pub(crate) fn send(&self, msg: VnetMsg) -> Result<(), LinkLost> {
        self.queue.try_send(msg).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => LinkLost::NotReading(QUEUE),
            mpsc::error::TrySendError::Closed(_) => LinkLost::Closed,
        })
    }

    /// Resolves when the writer has ended, with why. Cancel-safe.
    pub(crate) async fn ended(&mut self) -> LinkLost {
        match (&mut self.task).await {
            Ok(why) => why,
            Err(_) => LinkLost::Closed,
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn write(
    mut sink: SplitSink<FramedConn, VnetMsg>,
    mut rx: mpsc::Receiver<VnetMsg>,
    deadline: Duration,
) -> LinkLost {
    while let Some(first) = rx.recv().await {
        let batch = async {
            sink.feed(first).await?;
            while let Ok(more) = rx.try_recv() {
                sink.feed(more).await?;
            }
            sink.flush().await
        };
        match tokio::time::timeout(deadline, batch).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return LinkLost::Broken(err),
            Err(_) => return LinkLost::Stuck(deadline),
        }
    }
    LinkLost::Closed
}
