//! Features a peer supports beyond the base protocol of its version.
//!
//! The vnet lists its features in its hello, the route its own in the
//! welcome; both use only those in both lists. A feature this side does
//! not know is kept as [`Feature::Unknown`] and never used, so a newer
//! peer can announce more without breaking an older one.
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One optional part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// End to end between vnets: the route relays [`crate::message::PeerMsg`]s
    /// between vnets that announced it (see [`crate::e2e`]).
    E2e,
    /// Direct links between vnets: the route takes their cards and probes
    /// and introduces them (see [`crate::direct`]).
    Direct,
    /// A feature this side does not know.
    #[serde(other)]
    Unknown,
}

/// A set of features, as announced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Features(BTreeSet<Feature>);

impl Features {
    /// Everything this build supports, to announce.
    pub fn ours() -> Self {
        Self([Feature::E2e, Feature::Direct].into_iter().collect())
    }

    /// Whether `feature` is in the set (never true for `Unknown`).
    pub fn has(&self, feature: Feature) -> bool {
        feature != Feature::Unknown && self.0.contains(&feature)
    }

    /// What both sides support: ours and theirs, known ones only.
    pub fn common(&self, theirs: &Features) -> Features {
        Features(
            self.0
                .intersection(&theirs.0)
                .copied()
                .filter(|f| *f != Feature::Unknown)
                .collect(),
        )
    }

    /// How many entries the set has (for bounds checks).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_peers_features_are_read_and_ignored() {
        let theirs: Features = serde_json::from_str(r#"["direct","status","e2e"]"#).unwrap();
        assert!(!theirs.has(Feature::Unknown));
        let common = Features::ours().common(&theirs);
        assert!(common.has(Feature::E2e) && common.has(Feature::Direct) && common.len() == 2);
        assert_eq!(
            serde_json::to_string(&Features::ours()).unwrap(),
            r#"["e2e","direct"]"#
        );
        let older: Features = serde_json::from_str("[]").unwrap();
        assert!(Features::ours().common(&older).is_empty());
    }
}
