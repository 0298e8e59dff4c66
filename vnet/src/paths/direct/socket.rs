//! The direct socket: one UDP socket per vnet, carrying its QUIC endpoint
//! (every direct link) and, through a second handle on the same socket,
//! the few datagrams that are not QUIC: probes to the route, which show
//! the route the public address a NAT gives this socket, and punches
//! towards a vnet about to dial us, which open our NAT to it.
use proto::direct::{DirectCard, Probe, MAX_CANDIDATES};
use proto::pass::Purpose;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::control::session::Session;

/// A punch: too short to be a QUIC packet (or to draw a stateless reset),
/// so the peer's endpoint drops it; its only job is to leave our NAT.
const PUNCH: &[u8] = b"\0vnp";

/// How often a punch is sent while the peer dials.
pub(crate) const PUNCH_EVERY: Duration = Duration::from_millis(100);

/// Probes at a session's start: a few, as datagrams may be lost.
const FIRST_PROBES: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(300),
    Duration::from_secs(1),
];

/// Then one every this long: also keeps the NAT's mapping alive (UDP
/// mappings commonly last 30 s or more).
const PROBE_EVERY: Duration = Duration::from_secs(15);

/// The two handles on the direct socket.
pub(crate) struct DirectSocket {
    /// For quinn.
    pub quic: UdpSocket,
    /// For probes and punches; never read.
    pub raw: tokio::net::UdpSocket,
    /// Whether the socket is IPv6 (dual stack): IPv4 peers are reached at
    /// mapped addresses.
    v6: bool,
}

impl DirectSocket {
    /// A socket on every interface, IPv6 with IPv4 where the host has it,
    /// on `port` (0: any free one).
    ///
    /// # Errors
    /// The port cannot be bound; the error names it.
    pub(crate) fn bind(port: u16) -> std::io::Result<Self> {
        let quic = UdpSocket::bind(("::", port))
            .and_then(|s| dual_stack(&s).map(|()| s))
            .or_else(|_| UdpSocket::bind(("0.0.0.0", port)))
            .map_err(|err| {
                std::io::Error::new(err.kind(), format!("cannot bind UDP port {port}: {err}"))
            })?;
        let v6 = quic.local_addr()?.is_ipv6();
        let raw = quic.try_clone()?;
        raw.set_nonblocking(true)?;
        Ok(Self {
            quic,
            raw: tokio::net::UdpSocket::from_std(raw)?,
            v6,
        })
    }

    /// Sends `bytes` to `to`, mapping an IPv4 address on a dual-stack
    /// socket; errors are the network's and only logged.
    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        let to = match to {
            SocketAddr::V4(v4) if self.v6 => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            other => other,
        };
        if let Err(err) = self.raw.send_to(bytes, to).await {
            debug!(%err, %to, "datagram not sent");
        }
    }

    /// `addr` as this socket sends to it (an IPv4-mapped one as IPv4),
    /// if it can reach it and may send to it (one host, a port: see
    /// [`proto::direct::dialable`]).
    pub(crate) fn reaches(&self, addr: SocketAddr) -> Option<SocketAddr> {
        let addr = proto::direct::canonical(addr);
        ((self.v6 || addr.is_ipv4()) && proto::direct::dialable(&addr)).then_some(addr)
    }

    /// Probes the route of `session` until it ends.
    pub(crate) async fn probe(&self, session: &Session) {
        let route = session.route.addr;
        let mut waits = FIRST_PROBES
            .into_iter()
            .chain(std::iter::repeat(PROBE_EVERY));
        let mut last = tokio::time::Instant::now();
        loop {
            let wait = waits.next().unwrap_or(PROBE_EVERY);
            let at = last + wait;
            tokio::select! {
                _ = session.ended.cancelled() => return,
                _ = tokio::time::sleep_until(at) => {}
            }
            last = at;
            let probe = Probe {
                pass: session.pass(Purpose::Probe),
            };
            self.send(&probe.encode(), route).await;
        }
    }

    /// Punches towards each of `addrs` every [`PUNCH_EVERY`] until `done`.
    pub(crate) async fn punch(&self, addrs: &[SocketAddr], done: &CancellationToken) {
        loop {
            for addr in addrs.iter().filter_map(|a| self.reaches(*a)) {
                self.send(PUNCH, addr).await;
            }
            tokio::select! {
                _ = done.cancelled() => return,
                _ = tokio::time::sleep(PUNCH_EVERY) => {}
            }
        }
    }

    /// This vnet's card: its interfaces' addresses with the socket's port.
    pub(crate) fn card(&self, cert: proto::direct::Fingerprint) -> std::io::Result<DirectCard> {
        let port = self.quic.local_addr()?.port();
        let addrs = candidate_ips(self.v6)
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .filter(proto::direct::listable)
            .take(MAX_CANDIDATES)
            .collect();
        Ok(DirectCard { addrs, cert })
    }
}

fn dual_stack(socket: &UdpSocket) -> std::io::Result<()> {
    socket2::SockRef::from(socket).set_only_v6(false)
}

/// The host's addresses, IPv6 ones only if the socket has it, IPv4
/// first; the card keeps those a peer may be sent to (not loopback: the
/// route sees that itself when the vnets share a host).
fn candidate_ips(v6: bool) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|iface| iface.ip())
        .filter(|ip| v6 || ip.is_ipv4())
        .collect();
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.dedup();
    ips
}
