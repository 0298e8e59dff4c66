//! Messages both ways. A vnet sends [`VnetMsg`], the route sends [`RouteMsg`].
//!
//! Every connection's first frame is a hello: [`VnetMsg::Hello`] opens a
//! control connection; [`VnetMsg::Visit`], [`VnetMsg::Accept`] and
//! [`VnetMsg::Spare`] open a data connection, each with a
//! [`DataPass`]. After a data connection's stream has started, only raw
//! bytes follow.
//!
//! A vnet keeps a few data connections open ahead of need
//! ([`VnetMsg::Spare`]), so a new stream costs neither a TCP connect nor a
//! control round trip: a visiting spare later carries a `Visit`, and the
//! route hands a serving spare a stream with [`RouteMsg::Open`].
//!
//! The route holds every vnet message to the limits of
//! [`VnetMsg::validate`] (see [`crate::validate`]) before acting on it.
use serde::{Deserialize, Serialize};

use crate::auth::{PakeMsg, Proof};
use crate::direct::{DirectCard, Introduction};
use crate::e2e::ask::AskProof;
use crate::e2e::pairing::{Answer, Offer};
use crate::features::Features;
use crate::pass::{DataPass, Purpose};
use crate::{AskId, Refusal, ServeId, SessionId, Ticket, VnetId};

/// From a vnet to the route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VnetMsg {
    /// Opens a control connection: who this vnet is, which group it joins,
    /// and the first message of the token exchange (see [`crate::auth`]).
    /// Answered by [`RouteMsg::Challenge`] or [`RouteMsg::Refused`].
    Hello {
        /// Display name of the vnet; need not be unique.
        name: String,
        /// Only vnets of the same group see each other's serves.
        group: String,
        /// The vnet's SPAKE2 message.
        pake: PakeMsg,
        /// What this vnet supports beyond the base protocol.
        features: Features,
    },
    /// Second frame of a control connection, answering
    /// [`RouteMsg::Challenge`]: the vnet's key confirmation.
    Auth {
        /// Proves the vnet derived the same secret, so knows the token.
        confirm: Proof,
    },
    /// Opens the visiting half of a data connection (or follows a visiting
    /// spare's hello): carry this connection to the serve with this id in
    /// the sender's group. Answered by `Ready` or `Refused`. The client's
    /// first bytes may follow at once, ahead of the answer (see the `net`
    /// crate's `ahead`).
    Visit {
        /// The serve wanted.
        serve_id: ServeId,
        /// Admits this connection for this visit.
        pass: DataPass,
    },
    /// Opens the serving half of a data connection, in answer to
    /// [`RouteMsg::OpenStream`]. `Err` says why the local service could
    /// not be reached, so the visitor can be told at once.
    Accept {
        /// The ticket from `OpenStream`.
        ticket: Ticket,
        /// Admits this connection as the answer to that ticket.
        pass: DataPass,
        /// Whether the serving vnet reached its local service.
        result: Result<(), Refusal>,
    },
    /// Opens a spare data connection, kept idle until a stream needs it.
    /// Sends nothing back until then. A `Visit` spare's next frame is a
    /// [`VnetMsg::Visit`]; a `Serve` spare waits for [`RouteMsg::Open`].
    Spare {
        /// Which way streams will go on it.
        role: SpareRole,
        /// Admits this connection as a spare of that role; it closes with
        /// the pass's session.
        pass: DataPass,
    },
    /// Answer to [`RouteMsg::Open`] on a serving spare: whether the local
    /// service was reached. After `Ok`, raw bytes follow both ways.
    Opened {
        /// Whether the serving vnet reached its local service.
        result: Result<(), Refusal>,
    },
    /// The answer to [`RouteMsg::UnserveAsk`]; the route passes it on to
    /// the vnet that asked, as the response to its request.
    UnserveAnswer {
        /// The ask, as the route named it.
        ask: AskId,
        /// The serve id granted, or why not.
        result: Result<ServeId, Refusal>,
    },
    /// For another vnet of the group (feature `e2e` on both sides): the
    /// route passes it on as [`RouteMsg::Peer`], or answers for the vnet
    /// that cannot take it with a [`PeerMsg::Refused`].
    Peer {
        /// The vnet it is for.
        to: VnetId,
        /// What it says.
        msg: PeerMsg,
    },
    /// How this vnet can be reached directly (feature `direct`); sent at
    /// the start of each session. Without one, the route introduces
    /// nobody to this vnet.
    Direct(DirectCard),
    /// A request on the control connection; answered by a
    /// [`RouteMsg::Response`] with the same id.
    Request {
        /// Chosen by the vnet to match the response.
        id: u32,
        /// What is asked.
        body: Request,
    },
}

/// What vnets say to each other through the route, to agree on a pair
/// key (see [`crate::e2e::pairing`]). The route reads none of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMsg {
    /// The starting vnet's offer.
    Offer(Offer),
    /// The other vnet's answer.
    Answer(Answer),
    /// The starting vnet's confirmation.
    Confirm(Proof),
    /// No pairing: why, for the log of the vnet that asked.
    Refused(String),
}

/// What a spare data connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpareRole {
    /// This vnet will send a `Visit` on it for one of its uses.
    Visit,
    /// The route will hand it a stream to one of this vnet's serves.
    Serve,
}

impl SpareRole {
    /// What a spare's pass is made for.
    pub fn purpose(self) -> Purpose {
        match self {
            SpareRole::Visit => Purpose::SpareForVisits,
            SpareRole::Serve => Purpose::SpareForServes,
        }
    }
}

/// Requests a vnet makes on its control connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Register a local service. Answered by `Registered` (with the id the
    /// route settled on) or `Error`.
    RegisterServe(ServeSpec),
    /// Withdraw a serve this vnet registered. Answered by `Done`.
    UnregisterServe {
        /// The id it was registered under.
        serve_id: ServeId,
    },
    /// Round trip measurement. Answered by `Pong`.
    Ping,
    /// All serves of the group. Answered by `Serves`.
    ListServes,
    /// All vnets of the group. Answered by `Vnets`.
    ListVnets,
    /// Ask another vnet of the group for a time-limited grant to a service
    /// it has not registered. Answered by `Unserved` or `Error`, once that
    /// vnet has decided.
    Unserve {
        /// The vnet that has the service.
        vnet_id: VnetId,
        /// The service's address as seen from that vnet.
        ip: String,
        /// The service's port.
        port: u16,
        /// With `secret=`: proves the ask is the asker's own (see
        /// [`crate::e2e::ask`]); the route passes it on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<AskProof>,
    },
    /// Introduce this vnet and another for a direct link (feature
    /// `direct`): answered by `Done` once both were sent an
    /// [`RouteMsg::Introduce`], or `Error` (the other has no card).
    Introduce {
        /// The other vnet.
        vnet_id: VnetId,
    },
}

/// A serve as its vnet describes it when registering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeSpec {
    /// Display name (the config's `name`).
    pub name: String,
    /// Wanted id; `None` lets the route pick a free dynamic one.
    pub serve_id: Option<ServeId>,
    /// Protocol; only `tcp` is carried.
    pub kind: String,
    /// Address of the service as seen from its vnet (for display).
    pub ip: String,
    /// Port of the service; also the default local port of a use.
    pub port: u16,
    /// Free text for people.
    pub info: String,
}

/// From the route to a vnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteMsg {
    /// Answer to a control hello: the route's half of the token exchange.
    /// The vnet checks `confirm`, then sends `Auth`.
    Challenge {
        /// The route's SPAKE2 message.
        pake: PakeMsg,
        /// Proves the route derived the same secret, so knows the token.
        confirm: Proof,
        /// Whether the route has a token at all, so a vnet without one can
        /// say what to fix.
        token: bool,
    },
    /// The vnet is authenticated; this is its id in its group. The
    /// group's current serves follow as `ServeUp` events.
    Welcome {
        /// Id given to the vnet.
        vnet_id: VnetId,
        /// Names this control session in the passes of its data
        /// connections.
        session: SessionId,
        /// The route drops a vnet it has heard nothing from for this many
        /// seconds; the vnet pings well within it.
        heartbeat_secs: u32,
        /// What the route supports beyond the base protocol.
        features: Features,
    },
    /// A hello (or a stream) was refused; the connection closes after this.
    Refused(Refusal),
    /// A data connection is paired; raw bytes follow.
    Ready,
    /// Answer to a [`VnetMsg::Request`].
    Response {
        /// The request's id.
        id: u32,
        /// The answer.
        body: Response,
    },
    /// A serve became available in the group (also sent for every serve
    /// already there after `Welcome`).
    ServeUp(ServeEntry),
    /// A serve left the group.
    ServeDown {
        /// Its id.
        serve_id: ServeId,
        /// Whether its vnet withdrew it (a serve closed, a grant over);
        /// otherwise its vnet left, and the serve may come back with it.
        #[serde(default)]
        withdrawn: bool,
    },
    /// Another vnet asks for a grant to one of this vnet's unregistered
    /// services; answer with [`VnetMsg::UnserveAnswer`] and this ask's id.
    UnserveAsk {
        /// Names this ask; the answer must carry it.
        ask: AskId,
        /// The asking vnet.
        from: VnetId,
        /// Its name, for logs.
        from_name: String,
        /// Address asked for.
        ip: String,
        /// Port asked for.
        port: u16,
        /// The asker's proof, as it sent it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<AskProof>,
    },
    /// From another vnet of the group (see [`VnetMsg::Peer`]).
    Peer {
        /// The vnet it is from.
        from: VnetId,
        /// That vnet's name, as it joined: the name it pairs under.
        from_name: String,
        /// What it says.
        msg: PeerMsg,
    },
    /// On a serving spare: a visitor wants this serve. Connect to it and
    /// answer with [`VnetMsg::Opened`]; raw bytes follow the answer. The
    /// visitor's first bytes may already follow this message.
    Open {
        /// Which of this vnet's serves.
        serve_id: ServeId,
        /// The visiting vnet, for the serving vnet's logs (absent from
        /// older routes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<VnetId>,
    },
    /// Another vnet of the group, for a direct link (feature `direct`).
    Introduce(Introduction),
    /// A visitor wants one of this vnet's serves: connect to it, then open a
    /// data connection that starts with [`VnetMsg::Accept`] and this ticket.
    OpenStream {
        /// Binds the answer to the waiting visitor; valid once.
        ticket: Ticket,
        /// Which of this vnet's serves.
        serve_id: ServeId,
        /// The visiting vnet, for the serving vnet's logs (absent from
        /// older routes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<VnetId>,
    },
}

/// Answers to [`Request`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The serve is registered under this id (which differs from the wanted
    /// one when a dynamic id was taken).
    Registered {
        /// Id in force.
        serve_id: ServeId,
    },
    /// The request was carried out.
    Done,
    /// Answer to `Ping`.
    Pong,
    /// Answer to `ListServes`, ordered by id.
    Serves(Vec<ServeEntry>),
    /// Answer to `ListVnets`, ordered by id.
    Vnets(Vec<VnetEntry>),
    /// Answer to `Unserve`: the grant is registered under this id.
    Unserved {
        /// The dynamic id the granting vnet registered it under.
        serve_id: ServeId,
    },
    /// The request was refused.
    Error(Refusal),
}

/// A registered serve as the route lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeEntry {
    /// Its id in the group.
    pub serve_id: ServeId,
    /// The vnet that holds it.
    pub vnet_id: VnetId,
    /// That vnet's name.
    pub vnet_name: String,
    /// The serve's details as registered.
    pub spec: ServeSpec,
}

/// A connected vnet as the route lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VnetEntry {
    /// Its id in the group.
    pub vnet_id: VnetId,
    /// Its name.
    pub name: String,
    /// How many serves it has registered.
    pub serves: u32,
    /// When it connected, in seconds since the Unix epoch (route's clock).
    pub connected_unix: u64,
}
