//! What the registry keeps for direct links between vnets (feature
//! `direct`): each vnet's card and the public address its probes came
//! from, and the introductions made from them.
use proto::direct::{DirectCard, Introduction};
use proto::pass::{DataPass, Purpose};
use proto::{Refusal, RefusalCode, VnetId};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Registry;
use crate::link::VnetLink;

/// How often a vnet may ask to be introduced to the same vnet: each
/// introduction sets both to work (dialing every address, punching), so
/// a vnet that asks in a loop is held to this.
pub const INTRODUCE_EVERY: Duration = Duration::from_secs(2);

/// What became of a vnet's card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardTaken {
    /// Recorded, without `left_out` addresses no peer may be sent to.
    Recorded { left_out: usize },
    /// Not recorded: another vnet of the group shows its certificate.
    Refused,
}

/// Two introductions, one for each vnet of a pair, and where to send them.
pub type Introductions = [(VnetLink, Introduction); 2];

impl Registry {
    /// Records the card of vnet `vnet_id` in `group`, with only the
    /// addresses a peer may be sent to ([`proto::direct::listable`]: an
    /// honest vnet lists no other, and no peer is sent to its own host's
    /// services, or to many hosts at once, on a card's word).
    pub fn set_card(&mut self, group: &str, vnet_id: VnetId, mut card: DirectCard) -> CardTaken {
        let Some(g) = self.groups.get_mut(group) else {
            return CardTaken::Refused;
        };
        if g.holds_cert(&card.cert, vnet_id) {
            return CardTaken::Refused;
        }
        let listed = card.addrs.len();
        card.addrs.retain(proto::direct::listable);
        let left_out = listed - card.addrs.len();
        if let Some(slot) = g.vnet_mut(vnet_id) {
            slot.reach.card = Some(card);
        }
        CardTaken::Recorded { left_out }
    }

    /// Records `from` as the public address of the session a probe's pass
    /// names, if the pass is good; the vnet, if it was.
    pub fn observe(&mut self, pass: &DataPass, from: SocketAddr) -> Option<VnetId> {
        let admitted = self.admit(pass, Purpose::Probe).ok()?;
        let slot = self
            .groups
            .get_mut(&admitted.group)?
            .vnet_mut(admitted.vnet_id)?;
        // A dual-stack socket shows an IPv4 peer as IPv4-mapped IPv6.
        slot.reach.observed = Some(proto::direct::canonical(from));
        Some(admitted.vnet_id)
    }

    /// Introductions of `asker` and `other` of `group` to each other, at
    /// `now`. The lower id dials, so two vnets that ask at once agree on
    /// the roles.
    ///
    /// # Errors
    /// The other is not there, cannot go direct, or was introduced to
    /// the asker less than [`INTRODUCE_EVERY`] ago.
    pub fn introduce(
        &mut self,
        group: &str,
        (asker, other): (VnetId, VnetId),
        now: Instant,
    ) -> Result<Introductions, Refusal> {
        let pair = self.introductions(group, asker, other)?;
        let slot = self.groups.get_mut(group).and_then(|g| g.vnet_mut(asker));
        let asked = &mut slot.expect("found above").reach.asked;
        if asked
            .get(&other)
            .is_some_and(|at| now - *at < INTRODUCE_EVERY)
        {
            return Err(Refusal::new(
                RefusalCode::Busy,
                format!("asked to meet vnet {other} less than {INTRODUCE_EVERY:?} ago"),
            ));
        }
        asked.insert(other, now);
        Ok(pair)
    }

    fn introductions(
        &self,
        group: &str,
        asker: VnetId,
        other: VnetId,
    ) -> Result<Introductions, Refusal> {
        let g = self.groups.get(group);
        let slot = |id: VnetId| g.and_then(|g| g.vnet(id));
        let (Some(a), Some(b)) = (slot(asker), slot(other)) else {
            return Err(Refusal::new(
                RefusalCode::NotFound,
                format!("no vnet {other} in this group"),
            ));
        };
        if asker == other {
            return Err(Refusal::new(RefusalCode::Protocol, "a vnet is itself"));
        }
        let no_card = |id: VnetId| {
            Refusal::new(
                RefusalCode::Unsupported,
                format!("vnet {id} does not take direct links (direct=off, or an older version)"),
            )
        };
        let card_a = a.reach.card.as_ref().ok_or_else(|| no_card(asker))?;
        let card_b = b.reach.card.as_ref().ok_or_else(|| no_card(other))?;
        let to_a = Introduction {
            peer: other,
            peer_name: b.name.clone(),
            dial: asker < other,
            addrs: b.reach.addrs(),
            cert: card_b.cert,
        };
        let to_b = Introduction {
            peer: asker,
            peer_name: a.name.clone(),
            dial: other < asker,
            addrs: a.reach.addrs(),
            cert: card_a.cert,
        };
        Ok([(a.link.clone(), to_a), (b.link.clone(), to_b)])
    }
}
