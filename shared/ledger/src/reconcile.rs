//! Reconciliation of pending pairs after a chain replacement (README: The ledger's rules).

use crate::block::Block;
use crate::hash::Hash32;
use crate::tx::{Identity, ReceiptId, TxPair};
use crate::validate::ChainView;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A pair that was in an orphaned block (kept for its owner, seed 4b).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanedPair {
    pub pair: TxPair,
    pub block_index: u64,
    pub block_hash: Hash32,
}

/// A node's durable record of a pair that was in one of its orphaned
/// blocks, shown to the pair's owner (seed 4b).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanRecord {
    pub pair: TxPair,
    pub block_index: u64,
    pub block_hash: Hash32,
    pub orphaned_ms: u64,
}

/// A pair whose identity is (or will be) rewarded with a different result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Superseded {
    pub pair: TxPair,
    pub by: ReceiptId,
}

/// What a replacement means for a node's pending set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Every pair of every orphaned block, for the owners' records.
    pub orphaned: Vec<OrphanedPair>,
    /// Orphaned pairs not in the winning chain: back to pending (seed 4a).
    pub requeue: Vec<TxPair>,
    /// Pending identities now in the winning chain: drop from pending.
    pub remove: Vec<Identity>,
    /// Pairs that lost to a different result for the same identity.
    pub superseded: Vec<Superseded>,
}

/// Classifies the pairs of `orphaned_blocks` and of `pending` against the
/// winning chain. Cost: one look-up per orphaned or pending pair, so it grows
/// with fork depth and pending size, never with chain length. Applying the
/// result and reconciling again with the same inputs changes nothing.
pub fn reconcile(winning: &(impl ChainView + ?Sized), orphaned_blocks: &[Block], pending: &[TxPair]) -> Reconciliation {
    let mut out = Reconciliation::default();
    let pending_by_id: HashMap<Identity, ReceiptId> = pending.iter().map(|p| (p.identity(), p.receipt_id())).collect();
    for pair in pending {
        if let Some(l) = winning.landed(&pair.identity()) {
            out.remove.push(pair.identity());
            if l.receipt_id != pair.receipt_id() {
                out.superseded.push(Superseded { pair: pair.clone(), by: l.receipt_id });
            }
        }
    }
    for block in orphaned_blocks {
        for pair in &block.transactions {
            out.orphaned.push(OrphanedPair { pair: pair.clone(), block_index: block.index, block_hash: block.hash });
            let id = pair.identity();
            let rival = match winning.landed(&id) {
                Some(l) => Some(l.receipt_id),
                None => pending_by_id.get(&id).copied(),
            };
            match rival {
                None => out.requeue.push(pair.clone()),
                Some(r) if r != pair.receipt_id() => {
                    out.superseded.push(Superseded { pair: pair.clone(), by: r });
                }
                Some(_) => {}
            }
        }
    }
    out
}

/// Emitted by sync after it replaced its chain (from an outbox written in the
/// same transaction as the replacement, so the process dying right after the
/// commit cannot lose it). The miner reconciles its pending from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReplaced {
    pub old_tip: crate::TipInfo,
    pub new_tip: crate::TipInfo,
    pub fork_point: crate::TipInfo,
    pub orphaned: Vec<Block>,
}
