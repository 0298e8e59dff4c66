//! Messages both ways. A vnet sends [`VnetMsg`], the route sends [`RouteMsg`].
//!
//! Every connection's first frame is a hello: [`VnetMsg::Hello`] opens a
//! control connection, [`VnetMsg::Visit`] and [`VnetMsg::Accept`] open the
//! two halves of a data connection. After a data connection's hello has
//! been answered with [`RouteMsg::Ready`], only raw bytes follow.
//!
//! A vnet also keeps a few data connections open ahead of need
//! ([`VnetMsg::Spare`]), so a new stream costs neither a TCP connect nor a
//! control round trip: a visiting spare later carries a `Visit`, and the
//! route hands a serving spare a stream with [`RouteMsg::Open`].
use crate::auth::{Nonce, Proof};
use crate::{ServeId, SessionKey, Ticket, VnetId, MAX_TEXT_LEN};
use serde::{Deserialize, Serialize};

/// From a vnet to the route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VnetMsg {
    /// Opens a control connection: who this vnet is and which group it
    /// joins. Answered by [`RouteMsg::Welcome`] or [`RouteMsg::Refused`].
    Hello {
        /// Display name of the vnet; need not be unique.
        name: String,
        /// Only vnets of the same group see each other's serves.
        group: String,
        /// Fresh random value for the token proofs (see [`crate::auth`]).
        nonce: Nonce,
    },
    /// Second frame of a control connection, answering
    /// [`RouteMsg::Challenge`]: proof that this vnet knows the token.
    Auth {
        /// `Token::vnet_proof` over both nonces, name and group.
        proof: Proof,
    },
    /// Opens the visiting half of a data connection: carry this connection
    /// to the serve with this id in the sender's group. Needs the sender's
    /// control connection to be up; answered by `Ready` or `Refused`.
    /// The client's first bytes may follow at once, ahead of the answer
    /// (see [`crate::ahead`]).
    Visit {
        /// The serve wanted.
        serve_id: ServeId,
        /// The session key from the visiting vnet's `Welcome`: proves the
        /// visit comes from a connected vnet and ties it to that group.
        session: SessionKey,
    },
    /// Opens the serving half of a data connection, in answer to
    /// [`RouteMsg::OpenStream`]. `Err` carries why the local service could
    /// not be reached, so the visitor can be told at once.
    Accept {
        /// The ticket from `OpenStream`.
        ticket: Ticket,
        /// Whether the serving vnet reached its local service.
        result: Result<(), String>,
    },
    /// Opens a spare data connection, kept idle until a stream needs it.
    /// Sends nothing back until then. A `Visit` spare's next frame is a
    /// [`VnetMsg::Visit`]; a `Serve` spare waits for [`RouteMsg::Open`].
    Spare {
        /// The session key from `Welcome`; the spare closes with that
        /// control connection.
        session: SessionKey,
        /// Which way streams will go on it.
        role: SpareRole,
    },
    /// Answer to [`RouteMsg::Open`] on a serving spare: whether the local
    /// service was reached. After `Ok`, raw bytes follow both ways.
    Opened {
        /// Whether the serving vnet reached its local service.
        result: Result<(), String>,
    },
    /// A serving vnet's answer to [`RouteMsg::UnserveAsk`]; the route
    /// passes it on to the asker as the response to its request.
    UnserveAnswer {
        /// The asking vnet (from the ask).
        to: VnetId,
        /// The asker's request id (from the ask).
        request: u32,
        /// The serve id granted, or why not.
        result: Result<ServeId, String>,
    },
    /// A request on the control connection; answered by a
    /// [`RouteMsg::Response`] with the same id.
    Request {
        /// Chosen by the vnet to match the response.
        id: u32,
        /// What is asked.
        body: Request,
    },
}

/// What a spare data connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpareRole {
    /// This vnet will send a `Visit` on it for one of its uses.
    Visit,
    /// The route will hand it a stream to one of this vnet's serves.
    Serve,
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
    /// Answer to a control hello: the route's nonce and its proof that it
    /// knows the token. The vnet checks it, then sends `Auth`.
    Challenge {
        /// Fresh random value.
        nonce: Nonce,
        /// `Token::route_proof` over both nonces.
        proof: Proof,
    },
    /// The control hello was accepted; this is the vnet's id in its group.
    /// The group's current serves follow as `ServeUp` events.
    Welcome {
        /// Id given to the vnet.
        vnet_id: VnetId,
        /// Secret the vnet puts in each `Visit` while this control
        /// connection lasts.
        session: SessionKey,
        /// The route drops a vnet it has heard nothing from for this many
        /// seconds; the vnet pings well within it.
        heartbeat_secs: u32,
    },
    /// A hello was refused; the connection closes after this.
    Refused {
        /// Why, for people.
        reason: String,
    },
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
    },
    /// Another vnet asks for a grant to one of this vnet's unregistered
    /// services; answer with [`VnetMsg::UnserveAnswer`].
    UnserveAsk {
        /// The asking vnet.
        from: VnetId,
        /// Its name, for logs.
        from_name: String,
        /// The asker's request id, to be echoed back.
        request: u32,
        /// Address asked for.
        ip: String,
        /// Port asked for.
        port: u16,
    },
    /// On a serving spare: a visitor wants this serve. Connect to it and
    /// answer with [`VnetMsg::Opened`]; raw bytes follow the answer. The
    /// visitor's first bytes may already follow this message.
    Open {
        /// Which of this vnet's serves.
        serve_id: ServeId,
    },
    /// A visitor wants one of this vnet's serves: connect to it, then open a
    /// data connection that starts with [`VnetMsg::Accept`] and this ticket.
    OpenStream {
        /// Binds the answer to the waiting visitor; valid once.
        ticket: Ticket,
        /// Which of this vnet's serves.
        serve_id: ServeId,
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
    /// The request was refused; the text says why.
    Error(String),
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

/// A message field that breaks a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field} is longer than {MAX_TEXT_LEN} bytes")]
pub struct TooLong {
    /// Which field.
    pub field: &'static str,
}

fn bounded(field: &'static str, text: &str) -> Result<(), TooLong> {
    if text.len() > MAX_TEXT_LEN {
        Err(TooLong { field })
    } else {
        Ok(())
    }
}

impl VnetMsg {
    /// Checks the bounds the route relies on (text lengths). The frame cap
    /// already bounds memory; this keeps registry entries small.
    pub fn validate(&self) -> Result<(), TooLong> {
        match self {
            VnetMsg::Hello { name, group, .. } => {
                bounded("name", name)?;
                bounded("group", group)
            }
            VnetMsg::Visit { .. } | VnetMsg::Auth { .. } | VnetMsg::Spare { .. } => Ok(()),
            VnetMsg::Accept { result, .. } | VnetMsg::Opened { result } => match result {
                Err(reason) => bounded("reason", reason),
                Ok(()) => Ok(()),
            },
            VnetMsg::UnserveAnswer { result, .. } => match result {
                Err(reason) => bounded("reason", reason),
                Ok(_) => Ok(()),
            },
            VnetMsg::Request {
                body: Request::Unserve { ip, .. },
                ..
            } => bounded("ip", ip),
            VnetMsg::Request {
                body: Request::RegisterServe(spec),
                ..
            } => {
                bounded("name", &spec.name)?;
                bounded("kind", &spec.kind)?;
                bounded("ip", &spec.ip)?;
                bounded("info", &spec.info)
            }
            VnetMsg::Request { .. } => Ok(()),
        }
    }
}
