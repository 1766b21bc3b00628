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
