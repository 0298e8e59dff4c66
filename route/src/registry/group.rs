//! One group: its vnets, the serves they registered, and the events that
//! tell every member about a change. A vnet only ever sees its own group.
//!
//! Events (`ServeUp`, `ServeDown`) go to every vnet of the group through
//! its bounded control queue. A vnet whose queue is full is not reading its
//! control connection; it is cut off rather than allowed to grow memory.
use proto::auth::SessionSecret;
use proto::message::{RouteMsg, ServeEntry, ServeSpec, VnetEntry};
use proto::pass::{DataPass, Purpose, ReplayWindow};
use proto::{Refusal, RefusalCode, ServeId, SessionId, VnetId};

use super::reach::Reach;
use crate::link::VnetLink;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Where and when a vnet's control connection came from, and whether
/// it takes messages from other vnets (feature `e2e`).
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// The address the route saw it connect from.
    pub addr: SocketAddr,
    /// When it joined, in seconds since the Unix epoch.
    pub unix: u64,
    /// Both it and the route have feature `e2e`.
    pub e2e: bool,
}

/// A connected vnet as the route's status shows it.
pub struct VnetView {
    /// As the group lists it to its vnets.
    pub entry: VnetEntry,
    /// Where it connected from.
    pub addr: SocketAddr,
}

/// One connected vnet.
pub struct VnetSlot {
    /// Its name, as it said in its hello.
    pub name: String,
    /// Its control task.
    pub link: VnetLink,
    /// Its session: names it in the passes of its data connections.
    pub session: SessionId,
    /// Admits the session's data connections.
    secret: SessionSecret,
    /// Pass counters used so far.
    passes: ReplayWindow,
    arrival: Arrival,
    /// How it can be reached directly.
    pub reach: Reach,
}

impl VnetSlot {
    /// A vnet about to join.
    pub fn new(
        name: &str,
        link: VnetLink,
        session: SessionId,
        secret: SessionSecret,
        arrival: Arrival,
    ) -> Self {
        Self {
            name: name.to_string(),
            link,
            session,
            secret,
            passes: ReplayWindow::default(),
            arrival,
            reach: Reach::default(),
        }
    }

    /// Where, when and how it joined.
    pub fn arrival(&self) -> Arrival {
        self.arrival
    }

    /// Whether `pass` was made with this session's secret for `purpose`,
    /// with a counter not used before (it is used now).
    pub fn admit(&mut self, pass: &DataPass, purpose: Purpose) -> bool {
        self.secret.verify(pass, purpose) && self.passes.admit(pass.counter)
    }
}

/// One group's vnets and serves.
#[derive(Default)]
pub struct Group {
    vnets: BTreeMap<VnetId, VnetSlot>,
    serves: BTreeMap<ServeId, (VnetId, ServeSpec)>,
}

impl Group {
    /// Adds a vnet under the lowest free id; the id and the group's serves
    /// for the vnet's first view.
    ///
    /// # Errors
    /// The group is full.
    pub fn join(&mut self, slot: VnetSlot) -> Result<(VnetId, Vec<RouteMsg>), Refusal> {
        let Some(vnet_id) = (1..=u16::MAX)
            .map(VnetId)
            .find(|id| !self.vnets.contains_key(id))
        else {
            return Err(Refusal::new(
                RefusalCode::Limit,
                format!("group is full: {} vnets are in it", u16::MAX),
            ));
        };
        self.vnets.insert(vnet_id, slot);
        let snapshot = self
            .serves
            .iter()
            .map(|(id, (owner, spec))| RouteMsg::ServeUp(self.entry(*id, *owner, spec)))
            .collect();
        Ok((vnet_id, snapshot))
    }

    /// Removes a vnet and withdraws its serves, telling the others; its
    /// session, if it was here, and the serves withdrawn.
    pub fn leave(&mut self, vnet_id: VnetId) -> (Option<SessionId>, Vec<ServeId>) {
        let session = self.vnets.remove(&vnet_id).map(|slot| slot.session);
        let gone: Vec<ServeId> = self
            .serves
            .iter()
            .filter(|(_, (owner, _))| *owner == vnet_id)
            .map(|(id, _)| *id)
            .collect();
        for serve_id in &gone {
            self.serves.remove(serve_id);
            self.broadcast(RouteMsg::ServeDown {
                serve_id: *serve_id,
                withdrawn: false,
            });
        }
        (session, gone)
    }

    /// Whether no vnet is left.
    pub fn is_empty(&self) -> bool {
        self.vnets.is_empty()
    }

    /// A vnet by id.
    pub fn vnet(&self, vnet_id: VnetId) -> Option<&VnetSlot> {
        self.vnets.get(&vnet_id)
    }

    /// Whether a vnet other than `except` shows certificate `cert`.
    pub fn holds_cert(&self, cert: &proto::direct::Fingerprint, except: VnetId) -> bool {
        self.vnets.iter().any(|(id, slot)| {
            *id != except && slot.reach.card.as_ref().is_some_and(|c| c.cert == *cert)
        })
    }

    /// A vnet by id, to admit a pass.
    pub fn vnet_mut(&mut self, vnet_id: VnetId) -> Option<&mut VnetSlot> {
        self.vnets.get_mut(&vnet_id)
    }

    /// The vnet serving `serve_id`.
    pub fn server(&self, serve_id: ServeId) -> Option<(VnetId, &VnetSlot)> {
        let (owner, _) = self.serves.get(&serve_id)?;
        Some((*owner, self.vnets.get(owner)?))
    }

    /// Registers a serve for `vnet_id`. A static id is never changed: a
    /// conflict is refused. A taken or missing dynamic id is replaced by
    /// the lowest free one.
    ///
    /// # Errors
    /// The text says why, for the vnet to show its user.
    pub fn register(
        &mut self,
        vnet_id: VnetId,
        spec: ServeSpec,
        max_serves: usize,
    ) -> Result<ServeId, Refusal> {
        let held = self.held_by(vnet_id);
        if held >= max_serves {
            return Err(Refusal::new(
                RefusalCode::Limit,
                format!(
                    "vnet {vnet_id} holds {held} serves already \
                     (max_serves_per_vnet={max_serves})"
                ),
            ));
        }
        let serve_id = match spec.serve_id {
            Some(id) if id.is_static() => {
                if let Some((owner, held)) = self.serves.get(&id) {
                    let owner_name = self.vnets.get(owner).map_or("?", |v| v.name.as_str());
                    let held = &held.name;
                    return Err(Refusal::new(
                        RefusalCode::Taken,
                        format!(
                            "static serve id {id} is already held by vnet {owner} ({owner_name}) \
                             for serve {held:?}"
                        ),
                    ));
                }
                id
            }
            Some(id) if !self.serves.contains_key(&id) => id,
            _ => (ServeId::DYNAMIC_MIN..=ServeId::DYNAMIC_MAX)
                .filter_map(ServeId::new)
                .find(|id| !self.serves.contains_key(id))
                .ok_or_else(|| {
                    Refusal::new(
                        RefusalCode::Limit,
                        "all dynamic serve ids (1-499) are taken",
                    )
                })?,
        };
        let spec = ServeSpec {
            serve_id: Some(serve_id),
            ..spec
        };
        let up = RouteMsg::ServeUp(self.entry(serve_id, vnet_id, &spec));
        self.serves.insert(serve_id, (vnet_id, spec));
        self.broadcast(up);
        Ok(serve_id)
    }

    /// Withdraws a serve, if `vnet_id` holds it; whether it did.
    pub fn unregister(&mut self, vnet_id: VnetId, serve_id: ServeId) -> bool {
        match self.serves.get(&serve_id) {
            Some((owner, _)) if *owner == vnet_id => {
                self.serves.remove(&serve_id);
                self.broadcast(RouteMsg::ServeDown {
                    serve_id,
                    withdrawn: true,
                });
                true
            }
            _ => false,
        }
    }

    /// The serves, by id.
    pub fn serves(&self) -> Vec<ServeEntry> {
        self.serves
            .iter()
            .map(|(id, (owner, spec))| self.entry(*id, *owner, spec))
            .collect()
    }

    /// The vnets, by id.
    pub fn vnets(&self) -> Vec<VnetEntry> {
        self.vnets
            .iter()
            .map(|(id, v)| VnetEntry {
                vnet_id: *id,
                name: v.name.clone(),
                serves: self.held_by(*id) as u32,
                connected_unix: v.arrival.unix,
            })
            .collect()
    }

    /// The vnets with where they connected from, by id.
    pub fn vnet_views(&self) -> Vec<VnetView> {
        let addrs = self.vnets.values().map(|v| v.arrival.addr);
        self.vnets()
            .into_iter()
            .zip(addrs)
            .map(|(entry, addr)| VnetView { entry, addr })
            .collect()
    }

    fn held_by(&self, vnet_id: VnetId) -> usize {
        self.serves
            .values()
            .filter(|(owner, _)| *owner == vnet_id)
            .count()
    }

    fn entry(&self, serve_id: ServeId, owner: VnetId, spec: &ServeSpec) -> ServeEntry {
        ServeEntry {
            serve_id,
            vnet_id: owner,
            vnet_name: self
                .vnets
                .get(&owner)
                .map_or_else(String::new, |v| v.name.clone()),
            spec: spec.clone(),
        }
    }

    fn broadcast(&self, msg: RouteMsg) {
        for vnet in self.vnets.values() {
            vnet.link.event(msg.clone());
        }
    }
}
