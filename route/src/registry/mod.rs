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

mod group;

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
mod tests {
    use super::*;
    use crate::link::Queues;
    use tokio_util::sync::CancellationToken;

    fn link() -> (VnetLink, Queues) {
        VnetLink::with_room(CancellationToken::new(), 16, 16)
    }

    fn arrival() -> Arrival {
        Arrival {
            addr: "127.0.0.1:1".parse().unwrap(),
            unix: 0,
            e2e: true,
        }
    }

    fn secret() -> SessionSecret {
        SessionSecret::from_bytes(rand::random())
    }

    fn spec(name: &str, id: u16) -> ServeSpec {
        ServeSpec {
            name: name.into(),
            serve_id: ServeId::new(id),
            kind: "tcp".into(),
            ip: "127.0.0.1".into(),
            port: 22,
            info: String::new(),
        }
    }

    #[test]
    fn ids_dynamic_reassigned_static_refused() {
        let mut reg = Registry::default();
        let (a, _ra) = link();
        let (b, _rb) = link();
        let (va, _, _) = reg.join("g", "a", a, secret(), arrival(), 10).unwrap();
        let (vb, _, _) = reg.join("g", "b", b, secret(), arrival(), 10).unwrap();
        assert_eq!((va, vb), (VnetId(1), VnetId(2)));
        assert_eq!(reg.register("g", va, spec("x", 7), 100).unwrap().get(), 7);
        assert_eq!(reg.register("g", vb, spec("y", 7), 100).unwrap().get(), 1);
        assert_eq!(reg.register("g", vb, spec("z", 0), 100).unwrap().get(), 2);
        assert_eq!(
            reg.register("g", va, spec("s", 700), 100).unwrap().get(),
            700
        );
        let err = reg.register("g", vb, spec("t", 700), 100).unwrap_err();
        assert_eq!(err.code, RefusalCode::Taken);
        assert!(
            err.text.contains("700") && err.text.contains("vnet 01 (a)"),
            "{err}"
        );
    }

    #[test]
    fn groups_are_separate_and_leave_withdraws_serves() {
        let mut reg = Registry::default();
        let (a, _ra) = link();
        let (b, mut rb) = link();
        let (c, _rc) = link();
        let (va, _, _) = reg.join("g", "a", a, secret(), arrival(), 10).unwrap();
        reg.join("g", "b", b, secret(), arrival(), 10).unwrap();
        reg.join("other", "c", c, secret(), arrival(), 10).unwrap();
        let id = reg.register("g", va, spec("x", 700), 100).unwrap();
        assert!(reg.visit("g", id, VnetId(9)).is_ok());
        assert!(reg.visit("other", id, VnetId(9)).is_err());
        assert!(matches!(rb.try_event(), Some(RouteMsg::ServeUp(_))));
        reg.leave("g", va);
        assert!(matches!(
            rb.try_event(),
            Some(RouteMsg::ServeDown {
                withdrawn: false,
                ..
            })
        ));
        assert!(reg.visit("g", id, VnetId(9)).is_err());
        assert!(reg.serves("g").is_empty());
    }

    #[test]
    fn limits_refuse_with_a_reason() {
        let mut reg = Registry::default();
        let (a, _ra) = link();
        let (b, _rb) = link();
        let (va, _, _) = reg.join("g", "a", a, secret(), arrival(), 1).unwrap();
        let err = reg.join("g", "b", b, secret(), arrival(), 1).err().unwrap();
        assert_eq!(
            err.text,
            "the route is full: 1 vnets are connected (max_vnets)"
        );
        reg.register("g", va, spec("x", 0), 1).unwrap();
        let err = reg.register("g", va, spec("y", 0), 1).unwrap_err();
        assert_eq!(
            err.text,
            "vnet 01 holds 1 serves already (max_serves_per_vnet=1)"
        );
    }

    #[test]
    fn a_pass_is_admitted_once_for_its_session_and_purpose() {
        let mut reg = Registry::default();
        let (a, _ra) = link();
        let key = secret();
        let (va, session, _) = reg.join("g", "a", a, key.clone(), arrival(), 10).unwrap();
        let purpose = Purpose::SpareForServes;
        let pass = key.pass(session, 1, purpose);
        let admitted = reg.admit(&pass, purpose).ok().unwrap();
        assert_eq!((admitted.group.as_str(), admitted.vnet_id), ("g", va));
        assert!(reg.admit(&pass, purpose).is_err(), "replayed");
        let other = key.pass(session, 2, Purpose::SpareForVisits);
        assert!(
            reg.admit(&other, purpose).is_err(),
            "made for another purpose"
        );
        let forged = secret().pass(session, 3, purpose);
        assert!(
            reg.admit(&forged, purpose).is_err(),
            "made with another secret"
        );
        reg.leave("g", va);
        assert!(
            reg.admit(&key.pass(session, 4, purpose), purpose).is_err(),
            "session over"
        );
    }

    #[test]
    fn a_vnet_that_does_not_read_is_cut_off() {
        let mut reg = Registry::default();
        let (slow, _queues) = VnetLink::with_room(CancellationToken::new(), 1, 1);
        let cancel = slow.cancel.clone();
        let (a, _ra) = link();
        reg.join("g", "slow", slow, secret(), arrival(), 10)
            .unwrap();
        let (va, _, _) = reg.join("g", "a", a, secret(), arrival(), 10).unwrap();
        reg.register("g", va, spec("x", 0), 100).unwrap();
        assert!(!cancel.is_cancelled());
        reg.register("g", va, spec("y", 0), 100).unwrap();
        assert!(cancel.is_cancelled());
        assert_eq!(
            slow_reason(&reg),
            Some("not reading its control connection")
        );
    }

    fn slow_reason(reg: &Registry) -> Option<&'static str> {
        let (link, _) = reg.vnet("g", VnetId(1))?;
        link.cut_reason()
    }
}
