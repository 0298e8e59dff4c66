//! Unserve asks proved with the pair key (`proto::e2e::ask`): the asker
//! proves each ask, the asked vnet checks it and takes each number once,
//! so the route cannot ask in a vnet's name or replay an ask.
use proto::e2e::ask::AskProof;
use proto::VnetId;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{E2e, Pairing};

impl E2e {
    /// Proves an unserve ask to vnet `peer` (named `name`) for `ip:port`,
    /// pairing first if needed.
    ///
    /// # Errors
    /// No pair key: why.
    pub(crate) async fn prove_ask(
        &self,
        peer: VnetId,
        name: &str,
        ip: &str,
        port: u16,
    ) -> Result<AskProof, String> {
        let paired = self.paired(peer, name).await?;
        let number = paired.asks_sent.fetch_add(1, Ordering::Relaxed);
        Ok(paired.key.prove_ask(number, ip, port))
    }

    /// Checks an unserve ask from vnet `from` for `ip:port`: proved with
    /// our pair key, and not seen before.
    ///
    /// # Errors
    /// Why not, for the asker (and the log).
    pub(crate) async fn check_ask(
        &self,
        from: VnetId,
        proof: Option<&AskProof>,
        ip: &str,
        port: u16,
    ) -> Result<(), String> {
        let proof = proof.ok_or(
            "the ask is not proved end to end (the asker has no secret, or the route left the proof out)",
        )?;
        let paired = self.pair_of(proof.pair).await?;
        let ours = matches!(self.state().peers.get(&from), Some(Pairing::Paired(p)) if Arc::ptr_eq(p, &paired));
        if !ours || !paired.key.checks_ask(proof, ip, port) {
            return Err(
                "the ask's proof does not check (not from that vnet, or altered on the way)".into(),
            );
        }
        let fresh = paired
            .asks_seen
            .lock()
            .expect("replay window poisoned")
            .admit(proof.number);
        if !fresh {
            return Err("the ask was made before (a replay)".into());
        }
        Ok(())
    }
}
