//! Blocks: canonical hash over everything but the signature, signed by the
//! creator's node key.

use crate::genesis::{Genesis, NodeKey};
use crate::hash::{canonical_json, Hash32, Signature64};
use crate::tx::TxPair;
use serde::{Deserialize, Serialize};

/// Creator name of block 0, which carries no signature.
pub(crate) const GENESIS_CREATOR: &str = "genesis";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub index: u64,
    pub prev_hash: Hash32,
    /// Integer milliseconds since the Unix epoch; at least the parent's.
    pub timestamp: u64,
    pub creator_node_id: String,
    pub transactions: Vec<TxPair>,
    /// Canonical hash of every field above.
    pub hash: Hash32,
    /// The creator's ed25519 signature over `hash`; absent only on block 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature64>,
}

/// What fork choice and leader selection need of a chain's tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipInfo {
    pub index: u64,
    pub timestamp: u64,
    pub hash: Hash32,
}

impl TipInfo {
    /// How far apart `tips` (one per node) are: in blocks (highest minus
    /// lowest index) and in chains (distinct hashes; 1 when all agree, 2
    /// for two chains of equal height). None for no tips.
    pub fn spread(tips: &[TipInfo]) -> Option<(u64, usize)> {
        let (max, min) = (tips.iter().map(|t| t.index).max()?, tips.iter().map(|t| t.index).min()?);
        let hashes: std::collections::HashSet<&Hash32> = tips.iter().map(|t| &t.hash).collect();
        Some((max - min, hashes.len()))
    }
}

#[derive(Serialize)]
struct Hashed<'a> {
    index: u64,
    prev_hash: &'a Hash32,
    timestamp: u64,
    creator_node_id: &'a str,
    transactions: &'a [TxPair],
}

impl Block {
    /// The canonical hash of everything but `hash` and `signature`.
    pub fn compute_hash(&self) -> Hash32 {
        let body = canonical_json(&Hashed {
            index: self.index,
            prev_hash: &self.prev_hash,
            timestamp: self.timestamp,
            creator_node_id: &self.creator_node_id,
            transactions: &self.transactions,
        });
        Hash32::digest(&[b"uwl/block/v1", &body])
    }

    /// Block 0, derived deterministically from the genesis file.
    pub fn genesis(g: &Genesis) -> Self {
        let mut b = Self {
            index: 0,
            prev_hash: g.digest(),
            timestamp: g.timestamp,
            creator_node_id: GENESIS_CREATOR.to_owned(),
            transactions: Vec::new(),
            hash: Hash32::default(),
            signature: None,
        };
        b.hash = b.compute_hash();
        b
    }

    /// A signed child of `parent`. The timestamp is raised to the parent's if
    /// the local clock is behind it.
    pub fn mine(parent: &TipInfo, now_ms: u64, key: &NodeKey, transactions: Vec<TxPair>) -> Self {
        let mut b = Self {
            index: parent.index + 1,
            prev_hash: parent.hash,
            timestamp: now_ms.max(parent.timestamp),
            creator_node_id: key.node_id.clone(),
            transactions,
            hash: Hash32::default(),
            signature: None,
        };
        b.hash = b.compute_hash();
        b.signature = Some(key.sign(&b.hash.0));
        b
    }

    pub fn tip_info(&self) -> TipInfo {
        TipInfo { index: self.index, timestamp: self.timestamp, hash: self.hash }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip(index: u64, h: u8) -> TipInfo {
        TipInfo { index, timestamp: 0, hash: Hash32([h; 32]) }
    }

    #[test]
    fn tips_spread_by_hash_not_only_by_height() {
        assert_eq!(TipInfo::spread(&[]), None);
        assert_eq!(TipInfo::spread(&[tip(5, 1), tip(5, 1)]), Some((0, 1)), "same chain");
        assert_eq!(TipInfo::spread(&[tip(5, 1), tip(5, 2)]), Some((0, 2)), "two chains of equal height");
        assert_eq!(TipInfo::spread(&[tip(7, 1), tip(5, 2), tip(7, 1)]), Some((2, 2)));
    }
}
