//! A link's TCP lane: where one vnet can reach the other's TCP port (a
//! LAN, a public host, this machine), streams may travel on a TCP
//! connection of their own instead of the QUIC link, which the kernel
//! relays without copying (as on the route). Each end offers its lane
//! inside the link's hello ([`LinkHello`]), with a key made for that link
//! alone; every lane connection starts with a [`LaneHello`] proving it,
//! good once (a counter in a replay window), then waits as a spare until
//! a stream's header comes.
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::auth::Proof;

/// The key a vnet hands the other end of a link for its lane.
#[derive(Clone, PartialEq, Eq)]
pub struct LaneKey {
    /// Names the key (and so the link) at the lane's listener.
    pub id: [u8; 8],
    /// Proves lane connections; never leaves the link.
    pub secret: [u8; 32],
}

impl std::fmt::Debug for LaneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LaneKey({})", crate::hex::encode(&self.id))
    }
}

impl LaneKey {
    fn mac(&self, counter: u64) -> Proof {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length");
        mac.update(b"vnet lane");
        mac.update(&self.id);
        mac.update(&counter.to_be_bytes());
        Proof(mac.finalize().into_bytes().into())
    }

    /// The hello of lane connection number `counter`.
    pub fn hello(&self, counter: u64) -> LaneHello {
        LaneHello {
            key_id: self.id,
            counter,
            mac: self.mac(counter),
        }
    }

    /// Whether `hello` was made with this key (its counter's freshness is
    /// the caller's to check).
    pub fn verify(&self, hello: &LaneHello) -> bool {
        hello.key_id == self.id && self.mac(hello.counter).matches(&hello.mac)
    }
}

/// What opens a lane connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneHello {
    /// The key it is made with.
    pub key_id: [u8; 8],
    /// Drawn once per connection.
    pub counter: u64,
    /// HMAC-SHA256 with the key over its id and the counter.
    pub mac: Proof,
}

impl LaneHello {
    const MAGIC: [u8; 8] = *b"VNLANE1\0";
    /// Its size on the wire.
    pub const LEN: usize = 8 + 8 + 8 + 32;

    /// Its bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&Self::MAGIC);
        out[8..16].copy_from_slice(&self.key_id);
        out[16..24].copy_from_slice(&self.counter.to_be_bytes());
        out[24..].copy_from_slice(&self.mac.0);
        out
    }

    /// A hello, if `bytes` is one.
    pub fn decode(bytes: &[u8; Self::LEN]) -> Option<Self> {
        if bytes[..8] != Self::MAGIC {
            return None;
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&bytes[8..16]);
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&bytes[16..24]);
        let mut mac = [0u8; 32];
        mac.copy_from_slice(&bytes[24..]);
        Some(Self {
            key_id,
            counter: u64::from_be_bytes(counter),
            mac: Proof(mac),
        })
    }
}

/// What each end of a new link says first, on its first stream: that it
/// takes this link, and its lane if it offers one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkHello {
    /// The port of its lane listener, and the key for this link.
    pub lane: Option<(u16, LaneKey)>,
}

impl LinkHello {
    const MAGIC: [u8; 8] = *b"VNLINK1\0";
    /// Its size on the wire.
    pub const LEN: usize = 8 + 1 + 2 + 8 + 32;

    /// Its bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&Self::MAGIC);
        if let Some((port, key)) = &self.lane {
            out[8] = 1;
            out[9..11].copy_from_slice(&port.to_be_bytes());
            out[11..19].copy_from_slice(&key.id);
            out[19..].copy_from_slice(&key.secret);
        }
        out
    }

    /// A hello, if `bytes` is one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::LEN || bytes[..8] != Self::MAGIC {
            return None;
        }
        let lane = match bytes[8] {
            0 => None,
            1 => {
                let port = u16::from_be_bytes([bytes[9], bytes[10]]);
                let mut id = [0u8; 8];
                id.copy_from_slice(&bytes[11..19]);
                let mut secret = [0u8; 32];
                secret.copy_from_slice(&bytes[19..]);
                Some((port, LaneKey { id, secret }))
            }
            _ => return None,
        };
        Some(Self { lane })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fill: u8) -> LaneKey {
        LaneKey {
            id: [fill; 8],
            secret: [fill.wrapping_add(1); 32],
        }
    }

    #[test]
    fn a_lane_hello_is_proved_by_its_key_only() {
        let hello = key(1).hello(7);
        let decoded = LaneHello::decode(&hello.encode()).unwrap();
        assert_eq!(decoded, hello);
        assert!(key(1).verify(&decoded));
        assert!(!key(2).verify(&decoded), "another link's key");
        let mut forged = decoded;
        forged.counter = 8;
        assert!(!key(1).verify(&forged), "a counter the mac is not over");
        let mut bytes = hello.encode();
        bytes[0] = b'X';
        assert_eq!(LaneHello::decode(&bytes), None);
    }

    #[test]
    fn a_link_hello_keeps_its_lane_or_its_absence() {
        for hello in [
            LinkHello { lane: None },
            LinkHello {
                lane: Some((7750, key(3))),
            },
        ] {
            assert_eq!(LinkHello::decode(&hello.encode()), Some(hello));
        }
        let mut bytes = LinkHello { lane: None }.encode();
        bytes[8] = 2;
        assert_eq!(LinkHello::decode(&bytes), None);
        assert_eq!(LinkHello::decode(&bytes[1..]), None);
    }
}
