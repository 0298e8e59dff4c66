//! Direct links bound to pair keys (`proto::e2e::link`): each end proves
//! with the key agreed with the other vnet that it holds this very TLS
//! session, pairing first if needed.
use proto::auth::Proof;
use proto::VnetId;

use super::E2e;

impl E2e {
    /// Our proof for a link to vnet `peer` (named `name`) whose TLS
    /// exporter value is `exporter`; `dialer` says which end we are.
    ///
    /// # Errors
    /// No pair key with that vnet: why.
    pub(crate) async fn link_proof(
        &self,
        (peer, name): (VnetId, &str),
        exporter: &[u8; 32],
        dialer: bool,
    ) -> Result<Proof, String> {
        let paired = self.paired(peer, name).await?;
        Ok(paired.key.prove_link(exporter, dialer))
    }

    /// Whether `proof` is the other end's for this link.
    ///
    /// # Errors
    /// No pair key with that vnet: why.
    pub(crate) async fn checks_link(
        &self,
        (peer, name): (VnetId, &str),
        proof: &Proof,
        exporter: &[u8; 32],
        other_dials: bool,
    ) -> Result<bool, String> {
        let paired = self.paired(peer, name).await?;
        Ok(paired.key.checks_link(proof, exporter, other_dials))
    }
}
