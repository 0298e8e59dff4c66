//! What comes to the direct path from outside: links that vnets the route
//! introduced open to us (their handshake, then the hellos), and, for
//! each session, our card for the route and the probes that show it our
//! public address.
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{attempt, hello, identity, Direct};

impl Direct {
    /// Accepts links from vnets introduced to us until shutdown.
    pub(super) async fn accept_links(self, shutdown: CancellationToken) {
        loop {
            let incoming = tokio::select! {
                _ = shutdown.cancelled() => return,
                incoming = self.0.endpoint.accept() => match incoming {
                    Some(incoming) => incoming,
                    None => return,
                },
            };
            let direct = self.clone();
            self.0.serving.tracker.spawn(async move {
                let from = incoming.remote_address();
                if let Err(why) = direct.accepted(incoming).await {
                    let why = proto::text::Escaped(&why).to_string();
                    debug!(%from, %why, "direct link refused");
                }
            });
        }
    }

    /// A link a vnet introduced to us opens: its handshake, then hellos.
    async fn accepted(&self, incoming: quinn::Incoming) -> Result<(), String> {
        let conn = attempt::accepted(incoming).await?;
        let Some((peer, name)) =
            identity::peer_fingerprint(&conn).and_then(|c| self.0.expected.who(&c))
        else {
            conn.close(1u32.into(), b"not introduced");
            return Err("not introduced".into());
        };
        let offered = self.offer(peer);
        match hello::accept(&conn, &offered.hello).await {
            Ok(theirs) => {
                self.establish((peer, &name), conn, theirs, offered, false)
                    .await;
                Ok(())
            }
            Err(why) => {
                self.withdraw(&offered);
                Err(why)
            }
        }
    }

    /// Tells each session's route our card (if it takes direct links) and
    /// probes it while the session lasts.
    pub(super) async fn follow_sessions(self, shutdown: CancellationToken) {
        let mut sessions = self.0.sessions.clone();
        let mut last = None;
        loop {
            let session = sessions.borrow_and_update().clone();
            if let Some(session) = session.filter(|s| s.direct && last != Some(s.id)) {
                last = Some(session.id);
                match self.0.socket.card(self.0.identity.fingerprint) {
                    Ok(card) => {
                        debug!(addrs = ?card.addrs, "direct card");
                        let msg = proto::message::VnetMsg::Direct(card);
                        self.0.control.send_in(session.id, msg).await;
                    }
                    Err(err) => debug!(%err, "no direct card"),
                }
                let direct = self.clone();
                self.0.serving.tracker.spawn(async move {
                    direct.0.socket.probe(&session).await;
                });
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = sessions.changed() => if changed.is_err() { return },
            }
        }
    }
}
