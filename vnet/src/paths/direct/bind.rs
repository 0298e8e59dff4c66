//! With `secret=`, a new link counts only once both ends have proved,
//! with the pair key they agreed through the route, that they hold this
//! very TLS session (see `proto::e2e::link`). The route hands out the
//! certificates and addresses of an introduction, so it could otherwise
//! put itself in the middle of the link; it cannot make these proofs.
use proto::auth::Proof;
use proto::e2e::link::EXPORTER_LABEL;
use proto::VnetId;
use quinn::Connection;
use std::time::Duration;

use crate::e2e::E2e;

/// How long the proofs may take, pairing included.
const BIND_TIMEOUT: Duration = Duration::from_secs(10);

/// Proves our end of `conn` to vnet `peer` and checks its proof.
///
/// # Errors
/// No pair key, a link that failed, or a proof that does not hold.
pub(crate) async fn exchange(
    conn: &Connection,
    e2e: &E2e,
    peer: (VnetId, &str),
    dialer: bool,
) -> Result<(), String> {
    let exchange = async {
        let mut exporter = [0u8; 32];
        conn.export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
            .map_err(|_| "no keying material from the link's TLS".to_string())?;
        let ours = e2e.link_proof(peer, &exporter, dialer).await?;
        let (mut send, mut recv) = if dialer {
            conn.open_bi().await
        } else {
            conn.accept_bi().await
        }
        .map_err(|e| e.to_string())?;
        send.write_all(&ours.0).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        let theirs = recv
            .read_to_end(32)
            .await
            .map_err(|e| format!("no proof: {e}"))?;
        let theirs: [u8; 32] = theirs.try_into().map_err(|_| "a proof of the wrong size")?;
        let holds = e2e
            .checks_link(peer, &Proof(theirs), &exporter, !dialer)
            .await?;
        if holds {
            Ok(())
        } else {
            Err("its proof does not hold: the link is not with the vnet we paired with (someone in the middle?)".into())
        }
    };
    tokio::time::timeout(BIND_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no proof in {BIND_TIMEOUT:?}")))
}
