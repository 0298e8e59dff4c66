//! How a vnet can be reached directly (feature `direct`), as far as the
//! route knows: the card it sent and where its probes come from.
use proto::direct::DirectCard;
use proto::VnetId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// How a vnet can be reached directly, as far as the route knows.
#[derive(Debug, Default, Clone)]
pub struct Reach {
    /// What the vnet sent; none until it does (or with `direct=off`).
    pub card: Option<DirectCard>,
    /// Where its last admitted probe came from.
    pub observed: Option<SocketAddr>,
    /// When it last asked to be introduced to each vnet.
    pub asked: HashMap<VnetId, Instant>,
}

impl Reach {
    /// Where the vnet may be reached: the observed address first (behind
    /// a NAT, the only one that works from outside), then its own list.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self.observed.into_iter().collect();
        if let Some(card) = &self.card {
            for addr in &card.addrs {
                if !addrs.contains(addr) {
                    addrs.push(*addr);
                }
            }
        }
        addrs
    }
}
