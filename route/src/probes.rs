//! The route's UDP socket, on the number of its TCP port: vnets send
//! [`Probe`]s to it from their direct sockets, and the address each
//! admitted probe came from is the one a NAT shows the world for that
//! vnet's socket (see `registry::direct`).
//!
//! It answers nothing, ever: a datagram that is not a probe with a good,
//! fresh pass is dropped without a word, so the socket cannot be used to
//! reflect or amplify traffic, and probes cost the sender more than the
//! route (one HMAC per datagram, under the registry's lock briefly).
use proto::direct::Probe;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tracing::debug;

use crate::state::Hub;

/// Reads probes until shutdown.
pub async fn serve(socket: UdpSocket, hub: Arc<Hub>) {
    // One byte more than a probe, so a longer datagram is seen as such.
    let mut buf = [0u8; Probe::LEN + 1];
    loop {
        let received = tokio::select! {
            _ = hub.shutdown.cancelled() => return,
            received = socket.recv_from(&mut buf) => received,
        };
        let Ok((len, from)) = received else {
            // An ICMP error for an earlier send; we send nothing, so this
            // is someone else's trouble.
            continue;
        };
        let Some(probe) = Probe::decode(&buf[..len]) else {
            continue;
        };
        match hub.registry().observe(&probe.pass, from) {
            Some(vnet) => debug!(%vnet, %from, "probe"),
            None => debug!(%from, "probe without a good pass dropped"),
        }
    }
}
