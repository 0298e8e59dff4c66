//! A link from its hellos to its end: what our end offers on it (its TCP
//! lane), binding it to the pair key with `secret=`, putting it up (its
//! lane's spares, its streams, its watch), and falling back when it closes.
use proto::direct::lane::LinkHello;
use proto::direct::Fingerprint;
use proto::text::Escaped;
use proto::VnetId;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::lane::LanePool;
use super::links::Link;
use super::{bind, identity, serve, Direct, Offered, RTT_EVERY};
use crate::model::DirectState;

impl Direct {
    /// What our end offers on a new link with `peer`: its lane, if it
    /// has one, with a key for this link alone.
    pub(super) fn offer(&self, peer: VnetId) -> Offered {
        let closed = CancellationToken::new();
        let lane = (self.0.lanes.as_ref()).map(|lanes| lanes.offer(peer, closed.clone()));
        let key_id = lane.as_ref().map(|(_, key)| key.id);
        Offered {
            hello: LinkHello { lane },
            key_id,
            closed,
        }
    }

    /// Undoes an offer: its link closed, or never came up.
    pub(super) fn withdraw(&self, offered: &Offered) {
        offered.closed.cancel();
        if let (Some(lanes), Some(id)) = (&self.0.lanes, &offered.key_id) {
            lanes.withdraw(id);
        }
    }

    /// A link with `peer` whose hellos are through: with `secret=`, both
    /// ends prove it is bound to their pair key first; then it is up.
    pub(super) async fn establish(
        &self,
        (peer, name): (VnetId, &str),
        conn: quinn::Connection,
        theirs: LinkHello,
        offered: Offered,
        dialer: bool,
    ) {
        if let Some(e2e) = &self.0.e2e {
            if let Err(why) = bind::exchange(&conn, e2e, (peer, name), dialer).await {
                self.withdraw(&offered);
                conn.close(2u32.into(), b"not bound to the pair key");
                let cert = identity::peer_fingerprint(&conn);
                return self.failed(peer, cert, &format!("link refused: {why}"));
            }
        }
        self.up((peer, name), conn, theirs, offered)
    }

    /// A link with `peer` (named `name`) is up, and the other end said
    /// `theirs`: new streams go on it (or on its lane).
    fn up(
        &self,
        (peer, name): (VnetId, &str),
        conn: quinn::Connection,
        theirs: LinkHello,
        offered: Offered,
    ) {
        let Some(cert) = identity::peer_fingerprint(&conn) else {
            self.withdraw(&offered);
            return conn.close(1u32.into(), b"no certificate");
        };
        let lane = theirs.lane.map(|(port, key)| {
            let addr = SocketAddr::new(conn.remote_address().ip().to_canonical(), port);
            let pool = LanePool::new(addr, key);
            let keeping = pool.clone().keep(peer, offered.closed.clone());
            self.0.serving.tracker.spawn(keeping);
            pool
        });
        let link = Link {
            conn: conn.clone(),
            lane,
        };
        if let Some(old) = self.links().up(peer, cert, link) {
            old.conn.close(0u32.into(), b"replaced by a newer link");
        }
        let (addr, rtt) = (conn.remote_address(), conn.rtt());
        info!(vnet = %peer, name = %Escaped(name), %addr, rtt_ms = rtt.as_millis() as u64, "direct link up; new streams to this vnet go direct");
        self.publish_up(peer, &conn);
        let tracker = &self.0.serving.tracker;
        tracker.spawn(serve::run(self.0.serving.clone(), conn.clone(), peer));
        tracker.spawn(self.clone().watch(cert, conn, name.to_string(), offered));
    }

    pub(super) fn publish_up(&self, peer: VnetId, link: &quinn::Connection) {
        let (addr, rtt) = (link.remote_address(), link.rtt());
        self.publish(peer, DirectState::Up { addr, rtt });
    }

    /// Publishes the link's round trip until it closes, then falls back.
    async fn watch(
        self,
        cert: Fingerprint,
        link: quinn::Connection,
        name: String,
        offered: Offered,
    ) {
        let mut every = tokio::time::interval(RTT_EVERY);
        let why = loop {
            tokio::select! {
                why = link.closed() => break why,
                _ = every.tick() => {
                    let peers = self.links().peers_on(cert);
                    for peer in peers {
                        self.publish_up(peer, &link);
                    }
                }
            }
        };
        self.withdraw(&offered);
        self.0.expected.remove(&cert);
        let gone = self.links().down(cert, &link);
        let why = Escaped(&why.to_string()).to_string();
        for peer in gone {
            self.publish(
                peer,
                DirectState::Relay(format!("the link went down: {why}")),
            );
            info!(vnet = %peer, name = %Escaped(&name), why = %Escaped(&why), "direct link down; new streams to this vnet go through the route");
            self.0.control.direct_down(peer).await;
        }
    }
}
