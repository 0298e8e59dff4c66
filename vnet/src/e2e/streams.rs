//! Each stream's keys from a pair key: the visiting side takes the next
//! stream number, the serving side admits each number once.
use proto::e2e::stream::{StreamCrypto, StreamHeader};
use proto::text::Escaped;
use proto::{ServeId, VnetId};
use std::sync::atomic::Ordering;

use super::E2e;

impl E2e {
    /// The keys of a new stream to `serve` of vnet `peer` (named `name`),
    /// pairing first if needed.
    ///
    /// # Errors
    /// No pair key: why, for the log.
    pub(crate) async fn visit(
        &self,
        peer: VnetId,
        name: &str,
        serve: ServeId,
    ) -> Result<(StreamHeader, StreamCrypto), String> {
        let paired = self.paired(peer, name).await?;
        let number = paired.next.fetch_add(1, Ordering::Relaxed);
        Ok(paired.key.visit(serve, number))
    }

    /// The serving side's keys for a stream that starts with `header`,
    /// toward `serve`.
    ///
    /// # Errors
    /// Not a pair key this vnet holds, or a stream number seen before.
    pub(crate) async fn serve(
        &self,
        serve: ServeId,
        header: &StreamHeader,
    ) -> Result<StreamCrypto, String> {
        let paired = self.pair_of(header.pair).await?;
        let fresh = paired
            .seen
            .lock()
            .expect("replay window poisoned")
            .admit(header.number);
        if !fresh {
            return Err(format!(
                "stream {} of vnet {} was started before (a replay)",
                header.number,
                Escaped(&paired.name)
            ));
        }
        paired
            .key
            .serve(serve, header)
            .ok_or_else(|| "not this pair's stream".to_string())
    }
}
