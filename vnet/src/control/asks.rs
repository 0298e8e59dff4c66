//! What the route asks of this vnet on the control connection that others
//! carry out: a stream to one of our serves (`OpenStream`, answered by the
//! relay path's serving side) and an unserve ask (answered by the grants).
//! The control task hands them on over channels and never waits for the
//! outcome; it does not know who reads them.
use proto::{AskId, ServeId, Ticket, VnetId};
use tokio::sync::mpsc;

use super::session::Session;

/// Asks waiting for their reader at most, of each kind: a burst of
/// clients at a use elsewhere is a burst of stream requests here.
const QUEUE: usize = 1024;

/// The route wants a stream to serve `serve_id`, paired by `ticket`.
pub(crate) struct StreamAsk {
    pub ticket: Ticket,
    pub serve_id: ServeId,
    /// The session it came on: the answer's pass is made with it.
    pub session: Session,
    /// The visiting vnet, if the route says.
    pub from: Option<proto::VnetId>,
}

/// Vnet `from` asks for a grant to our unregistered service `ip:port`.
pub(crate) struct UnserveAsk {
    /// Names the ask in our answer.
    pub ask: AskId,
    pub from: VnetId,
    pub from_name: String,
    pub ip: String,
    pub port: u16,
    /// Its end-to-end proof, if the asker made one.
    pub proof: Option<proto::e2e::ask::AskProof>,
}

/// Where the control task hands asks on.
#[derive(Clone)]
pub(crate) struct AskSenders {
    pub streams: mpsc::Sender<StreamAsk>,
    pub unserve: mpsc::Sender<UnserveAsk>,
    /// Messages from other vnets, to whoever pairs with them (`secret=`);
    /// none without a secret.
    pub peers: Option<mpsc::Sender<PeerNote>>,
    /// Introductions for direct links, to the direct path; none when
    /// this vnet makes none.
    pub introductions: Option<mpsc::Sender<proto::direct::Introduction>>,
}

/// What whoever pairs with the group's vnets hears of them.
pub(crate) enum PeerNote {
    /// A message from another vnet of the group.
    Message {
        from: proto::VnetId,
        from_name: String,
        msg: proto::message::PeerMsg,
    },
    /// A vnet left the route (its serves went down with it): if its
    /// process ended, so did the keys agreed with it.
    Left(proto::VnetId),
}

impl AskSenders {
    /// The senders, and the receivers for whoever answers each kind.
    pub(crate) fn channel() -> (Self, mpsc::Receiver<StreamAsk>, mpsc::Receiver<UnserveAsk>) {
        let (streams, stream_rx) = mpsc::channel(QUEUE);
        let (unserve, unserve_rx) = mpsc::channel(QUEUE);
        (
            Self {
                streams,
                unserve,
                peers: None,
                introductions: None,
            },
            stream_rx,
            unserve_rx,
        )
    }
}
