//! Who is connected and what they serve, per group, and which data
//! connections they may open. Pure state: synchronous, no I/O and no
//! sockets; callers hold the lock briefly and never across an `.await`.
//!
//! A vnet joins when its control session starts and leaves when it ends;
//! its serves go with it. Each [`group`] keeps its own vnets and serves;
//! the registry finds groups by name and sessions by id, and admits data
//! connections by their pass (see [`Registry::admit`]).
use proto::auth::SessionSecret;
use proto::message::{RouteMsg, ServeEntry, ServeSpec, VnetEntry};
use proto::pass::{DataPass, Purpose};
use proto::{Refusal, RefusalCode, ServeId, SessionId, VnetId};
use std::collections::HashMap;

use crate::link::VnetLink;
pub use group::{Arrival, VnetView};
use group::{Group, VnetSlot};

pub mod direct;
mod group;
mod reach;

/// Where a visit goes.
pub struct VisitTarget {
    /// The group of both vnets.
    pub group: String,
    /// The visiting vnet, named to the serving one in its logs.
    pub visitor: VnetId,
    /// The serving vnet's control link.
    pub link: VnetLink,
    /// Its id, for logs.
    pub vnet_id: VnetId,
    /// Its session: a dialed-back answer must come from it, and its
    /// spares serve the visit.
    pub session: SessionId,
}

/// The vnet a data connection's pass admitted.
pub struct Admitted {
    /// Its group.
    pub group: String,
    /// Its id there.
    pub vnet_id: VnetId,
    /// Its control link.
    pub link: VnetLink,
}

/// One group as the route's status shows it.
pub struct GroupView {
    /// Its name.
    pub name: String,
    /// Its vnets, by id.
    pub vnets: Vec<VnetView>,
    /// Its serves, by id.
    pub serves: Vec<ServeEntry>,
}

/// The route's whole registry.
#[derive(Default)]
pub struct Registry {
    groups: HashMap<String, Group>,
    /// Every live session: its group and vnet id.
    sessions: HashMap<SessionId, (String, VnetId)>,
}

fn not_found(text: impl Into<String>) -> Refusal {
    Refusal::new(RefusalCode::NotFound, text)
}

impl Registry {
    /// Adds a vnet to `group` under the lowest free id, returning the id,
    /// a fresh session id, and the group's serves for its first view.
    ///
    /// # Errors
    /// The route or the group is full.
    pub fn join(
        &mut self,
        group: &str,
        name: &str,
        link: VnetLink,
        secret: SessionSecret,
        arrival: Arrival,
        max_vnets: usize,
    ) -> Result<(VnetId, SessionId, Vec<RouteMsg>), Refusal> {
        if self.sessions.len() >= max_vnets {
            return Err(Refusal::new(
                RefusalCode::Limit,
                format!("the route is full: {max_vnets} vnets are connected (max_vnets)"),
            ));
        }
        let mut session = SessionId(rand::random());
        while self.sessions.contains_key(&session) {
            session = SessionId(rand::random());
        }
        let slot = VnetSlot::new(name, link, session, secret, arrival);
        let g = self.groups.entry(group.to_string()).or_default();
        let (vnet_id, snapshot) = g.join(slot)?;
        self.sessions.insert(session, (group.to_string(), vnet_id));
        Ok((vnet_id, session, snapshot))
    }

    /// Removes a vnet and all its serves, telling the group; returns the
    /// serves withdrawn.
    pub fn leave(&mut self, group: &str, vnet_id: VnetId) -> Vec<ServeId> {
        let Some(g) = self.groups.get_mut(group) else {
            return Vec::new();
        };
        let (session, gone) = g.leave(vnet_id);
        if let Some(session) = session {
            self.sessions.remove(&session);
        }
        if g.is_empty() {
            self.groups.remove(group);
        }
        gone
    }

    /// Registers a serve for `vnet_id`. A static id is never changed: a
    /// conflict is refused. A taken or missing dynamic id is replaced by
    /// the lowest free one.
    ///
    /// # Errors
    /// The text says why, for the vnet to show its user.
    pub fn register(
        &mut self,
        group: &str,
        vnet_id: VnetId,
        spec: ServeSpec,
        max_serves: usize,
    ) -> Result<ServeId, Refusal> {
        self.joined(group)?.register(vnet_id, spec, max_serves)
    }

    /// Withdraws a serve, if `vnet_id` holds it.
    ///
    /// # Errors
    /// The vnet does not hold that id.
    pub fn unregister(
        &mut self,
        group: &str,
        vnet_id: VnetId,
        serve_id: ServeId,
    ) -> Result<(), Refusal> {
        if self.joined(group)?.unregister(vnet_id, serve_id) {
            return Ok(());
        }
        let text = format!("serve {serve_id} is not registered by this vnet");
        Err(not_found(text))
    }

    /// The group of a joined vnet.
    fn joined(&mut self, group: &str) -> Result<&mut Group, Refusal> {
        self.groups
            .get_mut(group)
            .ok_or_else(|| not_found("not joined"))
    }

    /// The group's serves, by id.
    pub fn serves(&self, group: &str) -> Vec<ServeEntry> {
        self.groups.get(group).map_or_else(Vec::new, Group::serves)
    }

    /// The group's vnets, by id.
    pub fn vnets(&self, group: &str) -> Vec<VnetEntry> {
        self.groups.get(group).map_or_else(Vec::new, Group::vnets)
    }

    /// Every group, by name, with its vnets and serves.
    pub fn overview(&self) -> Vec<GroupView> {
        let mut groups: Vec<GroupView> = self
            .groups
            .iter()
            .map(|(name, g)| GroupView {
                name: name.clone(),
                vnets: g.vnet_views(),
                serves: g.serves(),
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        groups
    }

    /// Checks a data connection's pass for `purpose`: a live session, a
    /// MAC made with its secret, a counter not used before. A pass is
    /// admitted once.
    ///
    /// # Errors
    /// Any of these fails; the refusal says no more than "not admitted".
    pub fn admit(&mut self, pass: &DataPass, purpose: Purpose) -> Result<Admitted, Refusal> {
        let refused = || {
            Refusal::new(
                RefusalCode::Auth,
                "pass refused: unknown session, or not made for this",
            )
        };
        let (group, vnet_id) = self.sessions.get(&pass.session).ok_or_else(refused)?;
        let slot = self
            .groups
            .get_mut(group)
            .and_then(|g| g.vnet_mut(*vnet_id))
            .ok_or_else(refused)?;
        if !slot.admit(pass, purpose) {
            return Err(refused());
        }
        Ok(Admitted {
            group: group.clone(),
            vnet_id: *vnet_id,
            link: slot.link.clone(),
        })
    }

    /// Finds the vnet serving `serve_id` in `group`.
    ///
    /// # Errors
    /// No such serve in that group.
    pub fn visit(
        &self,
        group: &str,
        serve_id: ServeId,
        visitor: VnetId,
    ) -> Result<VisitTarget, Refusal> {
        let not_registered = || not_found(format!("serve {serve_id} is not registered"));
        let g = self.groups.get(group).ok_or_else(not_registered)?;
        let (vnet_id, slot) = g.server(serve_id).ok_or_else(not_registered)?;
        Ok(VisitTarget {
            group: group.to_string(),
            visitor,
            link: slot.link.clone(),
            vnet_id,
            session: slot.session,
        })
    }

    /// A vnet of `group` by id that takes messages from other vnets
    /// (feature `e2e`): its control link; `Err(true)` if it is there but
    /// does not, `Err(false)` if it is not there.
    pub fn peer(&self, group: &str, vnet_id: VnetId) -> Result<VnetLink, bool> {
        let slot = self.groups.get(group).and_then(|g| g.vnet(vnet_id));
        match slot {
            Some(slot) if slot.arrival().e2e => Ok(slot.link.clone()),
            Some(_) => Err(true),
            None => Err(false),
        }
    }

    /// A vnet of `group` by id: its control link and name.
    pub fn vnet(&self, group: &str, vnet_id: VnetId) -> Option<(VnetLink, String)> {
        let slot = self.groups.get(group)?.vnet(vnet_id)?;
        Some((slot.link.clone(), slot.name.clone()))
    }
}

#[cfg(test)]
mod tests;
