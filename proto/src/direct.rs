//! The direct path between two vnets (feature `direct`): what the route
//! needs to introduce them, and the few bytes the vnets exchange on the
//! link they then open between themselves.
//!
//! A vnet that can go direct sends the route its [`DirectCard`]: the
//! addresses it can be reached at (its interfaces', with the port of its
//! UDP socket) and the fingerprint of the certificate its link presents.
//! It also sends [`Probe`] datagrams from that UDP socket to the route's
//! UDP port (the number of its TCP port), so the route learns the public
//! address a NAT gives it. A probe carries a pass for the session, so
//! the route records nothing for a datagram anyone could send, and it
//! never answers one.
//!
//! When a vnet wants a direct link to another, it asks the route, which
//! hands both an [`Introduction`]: the other's addresses (its own and the
//! one the route observed) and certificate fingerprint, and which of the
//! two dials. The link authenticates both ends against those
//! fingerprints; then each stream on it starts with a [`StreamHeader`].
pub mod lane;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::auth::Proof;
use crate::pass::DataPass;
use crate::{ServeId, SessionId, VnetId};

/// Most addresses a vnet may list in its card.
pub const MAX_CANDIDATES: usize = 16;

/// Whether a vnet may send a link's packets to `addr` of an
/// introduction: one host's address and a port, so an introduction cannot
/// make it send to many hosts at once (multicast, broadcast) or to
/// nowhere. Loopback is allowed here: the route observes it when vnets
/// share its host.
pub fn dialable(addr: &SocketAddr) -> bool {
    let ip = canonical(*addr).ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast
}

/// Whether a vnet may list `addr` in its card: [`dialable`], and an
/// address of a network interface that another host could reach. Never
/// loopback or IPv6 link-local, which would make a peer send handshakes
/// to services of its own host (or need an interface to be named). The
/// route leaves anything else out of the introductions it makes.
pub fn listable(addr: &SocketAddr) -> bool {
    let ip = canonical(*addr).ip();
    let link_local = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
    dialable(addr) && !ip.is_loopback() && !link_local
}

/// `addr` with an IPv4-mapped IPv6 address as the IPv4 one it stands
/// for: how a dual-stack socket shows an IPv4 peer.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// SHA-256 of a link certificate's DER bytes; hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a certificate's DER bytes.
    pub fn of(der: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        Self(Sha256::digest(der).into())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", crate::hex::encode(&self.0[..8]))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::hex::decode::<32>(&text)
            .map(Fingerprint)
            .ok_or_else(|| serde::de::Error::custom("a fingerprint is 64 hex digits"))
    }
}

/// How a vnet can be reached directly, as it tells the route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectCard {
    /// Its interfaces' addresses with its UDP port, at most
    /// [`MAX_CANDIDATES`]; the route keeps those [`listable`].
    pub addrs: Vec<SocketAddr>,
    /// Its link certificate's fingerprint.
    pub cert: Fingerprint,
}

/// The route introduces one vnet to another for a direct link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Introduction {
    /// The other vnet.
    pub peer: VnetId,
    /// Its name, for logs.
    pub peer_name: String,
    /// Whether this vnet dials (the other accepts and sends punches
    /// towards it, so its NAT lets the dialer in).
    pub dial: bool,
    /// Where the other may be reached: the address the route observed
    /// first, if any, then those it listed.
    pub addrs: Vec<SocketAddr>,
    /// The certificate the other's link must present.
    pub cert: Fingerprint,
}

/// A datagram from a vnet's UDP socket to the route's: the route notes
/// the address it came from as the vnet's public one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Made for [`crate::pass::Purpose::Probe`] with the session's secret.
    pub pass: DataPass,
}

impl Probe {
    /// Opens every probe; anything else on the route's UDP port is dropped.
    pub const MAGIC: [u8; 8] = *b"VNPROBE1";
    /// A probe's size on the wire.
    pub const LEN: usize = 8 + 8 + 8 + 32;

    /// The datagram.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&Self::MAGIC);
        out[8..16].copy_from_slice(&self.pass.session.0.to_be_bytes());
        out[16..24].copy_from_slice(&self.pass.counter.to_be_bytes());
        out[24..].copy_from_slice(&self.pass.mac.0);
        out
    }

    /// A probe, if `datagram` is exactly one.
    pub fn decode(datagram: &[u8]) -> Option<Self> {
        if datagram.len() != Self::LEN || datagram[..8] != Self::MAGIC {
            return None;
        }
        let u64_at = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&datagram[at..at + 8]);
            u64::from_be_bytes(bytes)
        };
        let mut mac = [0u8; 32];
        mac.copy_from_slice(&datagram[24..]);
        Some(Self {
            pass: DataPass {
                session: SessionId(u64_at(8)),
                counter: u64_at(16),
                mac: Proof(mac),
            },
        })
    }
}

/// What starts each stream on a direct link: the serve it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHeader {
    /// The serve wanted, one of the accepting vnet's.
    pub serve_id: ServeId,
}

impl StreamHeader {
    /// This layout's version, the header's first byte.
    const VERSION: u8 = 1;
    /// A header's size on the wire.
    pub const LEN: usize = 3;

    /// The header's bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let id = self.serve_id.get().to_be_bytes();
        [Self::VERSION, id[0], id[1]]
    }

    /// A header, if `bytes` is one of this version for a valid serve id.
    pub fn decode(bytes: &[u8; Self::LEN]) -> Option<Self> {
        if bytes[0] != Self::VERSION {
            return None;
        }
        let serve_id = ServeId::new(u16::from_be_bytes([bytes[1], bytes[2]]))?;
        Some(Self { serve_id })
    }
}

/// Why a direct stream was refused, as its reset code says it.
pub mod reset {
    /// The serving vnet does not have the serve (or it is at its limit).
    pub const REFUSED: u32 = 1;
    /// The local service could not be reached.
    pub const UNREACHABLE: u32 = 2;
    /// The stream was cut: its other end failed, or the vnet is closing.
    pub const CUT: u32 = 3;
    /// A header that is not one.
    pub const MALFORMED: u32 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_decodes_to_what_was_encoded_and_nothing_else_decodes() {
        let probe = Probe {
            pass: DataPass {
                session: SessionId(7),
                counter: 9,
                mac: Proof([3; 32]),
            },
        };
        let bytes = probe.encode();
        assert_eq!(Probe::decode(&bytes), Some(probe));
        assert_eq!(Probe::decode(&bytes[..Probe::LEN - 1]), None);
        let mut other = bytes;
        other[0] = b'X';
        assert_eq!(Probe::decode(&other), None);
        assert_eq!(Probe::decode(b""), None);
    }

    #[test]
    fn a_stream_header_keeps_its_serve_and_refuses_a_bad_one() {
        let header = StreamHeader {
            serve_id: ServeId::new(700).unwrap(),
        };
        assert_eq!(StreamHeader::decode(&header.encode()), Some(header));
        assert_eq!(StreamHeader::decode(&[2, 2, 188]), None);
        assert_eq!(StreamHeader::decode(&[1, 0, 0]), None);
        assert_eq!(StreamHeader::decode(&[1, 0x27, 0x10]), None);
    }

    #[test]
    fn only_one_reachable_host_and_port_is_dialable_or_listable() {
        let addr = |text: &str| text.parse::<SocketAddr>().unwrap();
        for ok in ["198.18.0.7:4000", "[2001:db8::7]:4000", "10.1.2.3:1"] {
            assert!(dialable(&addr(ok)) && listable(&addr(ok)), "{ok}");
        }
        // The route sees loopback when vnets share its host.
        for local in ["127.0.0.1:4000", "[::1]:4000", "[::ffff:127.0.0.1]:4000"] {
            assert!(dialable(&addr(local)), "{local}");
            assert!(!listable(&addr(local)), "{local}");
        }
        assert!(dialable(&addr("[fe80::1]:4000")) && !listable(&addr("[fe80::1]:4000")));
        for bad in [
            "0.0.0.0:4000",
            "[::]:4000",
            "198.18.0.7:0",
            "224.0.0.1:4000",
            "[ff02::1]:4000",
            "255.255.255.255:4000",
            "[::ffff:255.255.255.255]:4000",
            "[::ffff:0.0.0.0]:4000",
        ] {
            assert!(!dialable(&addr(bad)) && !listable(&addr(bad)), "{bad}");
        }
    }

    #[test]
    fn a_fingerprint_travels_as_hex_and_bad_hex_is_refused() {
        let fp = Fingerprint::of(b"cert");
        let json = serde_json::to_string(&fp).unwrap();
        assert_eq!(json.len(), 66);
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), fp);
        assert!(serde_json::from_str::<Fingerprint>("\"00\"").is_err());
    }
}
