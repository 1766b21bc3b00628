//! Block and fork validation. Duplicates are judged against the chain the
//! blocks would be part of, given as a [`ChainView`]; time is a parameter.

use crate::block::{Block, TipInfo};
use crate::genesis::Genesis;
use crate::tx::{Identity, PairError, ReceiptId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where an identity landed in a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Landed {
    pub block_index: u64,
    pub block_hash: crate::Hash32,
    pub receipt_id: ReceiptId,
}

impl Landed {
    /// Blocks from its block to `tip`, both counted (1: it is the tip).
    pub fn confirmations(&self, tip: &crate::TipInfo) -> u64 {
        tip.index.saturating_sub(self.block_index) + 1
    }
}

/// Identity look-ups in one chain.
pub trait ChainView {
    fn landed(&self, id: &Identity) -> Option<Landed>;
}

/// What fork handling needs of the local chain besides identities.
pub trait ChainRead: ChainView {
    fn tip(&self) -> TipInfo;
    /// The block at `index` in this chain, if the chain is that long.
    fn tip_at(&self, index: u64) -> Option<TipInfo>;
}

impl ChainView for HashMap<Identity, Landed> {
    fn landed(&self, id: &Identity) -> Option<Landed> {
        self.get(id).copied()
    }
}

/// A prefetched slice of a stored chain: the tip, the blocks around an
/// incoming range, and the landing of the identities that range carries.
/// Stores build it with a few indexed queries so the rules stay pure.
#[derive(Debug, Clone)]
pub struct ChainSlice {
    pub tip: TipInfo,
    pub blocks: BTreeMap<u64, TipInfo>,
    pub landed: HashMap<Identity, Landed>,
}

impl ChainView for ChainSlice {
    fn landed(&self, id: &Identity) -> Option<Landed> {
        self.landed.get(id).copied()
    }
}

impl ChainRead for ChainSlice {
    fn tip(&self) -> TipInfo {
        self.tip
    }
    fn tip_at(&self, index: u64) -> Option<TipInfo> {
        self.blocks.get(&index).copied()
    }
}

/// The chain made of `prefix` up to `fork_point` plus `new` blocks: the
/// candidate a fork would produce. Blocks of `prefix` above the fork point
/// (the ones the fork orphans) are invisible through it.
#[derive(Debug)]
pub struct ForkView<'a, V: ?Sized> {
    prefix: &'a V,
    fork_point: u64,
    new: HashMap<Identity, Landed>,
}

impl<'a, V: ChainView + ?Sized> ForkView<'a, V> {
    pub fn new(prefix: &'a V, fork_point: u64, new_blocks: &[Block]) -> Self {
        let new = new_blocks
            .iter()
            .flat_map(|b| {
                b.transactions
                    .iter()
                    .map(move |p| (p.identity(), Landed { block_index: b.index, block_hash: b.hash, receipt_id: p.receipt_id() }))
            })
            .collect();
        Self { prefix, fork_point, new }
    }
}

impl<V: ChainView + ?Sized> ChainView for ForkView<'_, V> {
    fn landed(&self, id: &Identity) -> Option<Landed> {
        self.new
            .get(id)
            .copied()
            .or_else(|| self.prefix.landed(id).filter(|l| l.block_index <= self.fork_point))
    }
}

/// Why a block is not accepted. [`BlockError::Deferred`] is not a verdict on
/// the block: it must be retried later and never remembered as invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block {index} is {ahead_ms} ms ahead of the local clock (limit {limit_ms} ms): deferred")]
    Deferred { index: u64, ahead_ms: u64, limit_ms: u64 },
    #[error("index {got} does not follow the parent's index {parent}")]
    BadIndex { parent: u64, got: u64 },
    #[error("prev_hash does not match the parent's hash")]
    BadPrevHash,
    #[error("timestamp {got} is before the parent's {parent}")]
    TimestampBeforeParent { parent: u64, got: u64 },
    #[error("hash does not match the block's contents")]
    BadHash,
    #[error("creator {0:?} is not a validator of the genesis set")]
    UnknownCreator(String),
    #[error("block is not signed")]
    MissingSignature,
    #[error("signature does not verify with {0:?}'s key")]
    BadSignature(String),
    #[error("{count} pairs exceed the cap of {cap}")]
    TooManyPairs { count: usize, cap: u32 },
    #[error("block has no pairs")]
    Empty,
    #[error("pair {position}: {error}")]
    InvalidPair { position: usize, error: PairError },
    #[error("identity ({}, {}) is already in the chain", .0.client_id, .0.contract_id)]
    DuplicateIdentity(Identity),
    /// Found with the chain's balances (a store or the whole-chain audit),
    /// not by [`check_block`] alone: no balance may pass 2^63-1.
    #[error("the balance of {0:?} would pass 2^63-1")]
    BalanceOverflow(String),
}

impl BlockError {
    pub fn is_deferred(&self) -> bool {
        matches!(self, Self::Deferred { .. })
    }
}

/// A block of a fork failed; `index` names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block {index}: {error}")]
pub struct ForkError {
    pub index: u64,
    pub error: BlockError,
}

/// Checks one block against its parent: everything but duplicates across
/// blocks. Permanent faults are reported before the future-timestamp
/// deferral, so a deferred block is one that will be valid in time.
pub fn check_block(block: &Block, parent: &TipInfo, genesis: &Genesis, now_ms: u64) -> Result<(), BlockError> {
    if block.hash != block.compute_hash() {
        return Err(BlockError::BadHash);
    }
    let validator = genesis
        .validator(&block.creator_node_id)
        .ok_or_else(|| BlockError::UnknownCreator(block.creator_node_id.clone()))?;
    let sig = block.signature.as_ref().ok_or(BlockError::MissingSignature)?;
    if !validator.public_key.verify(&block.hash.0, sig) {
        return Err(BlockError::BadSignature(block.creator_node_id.clone()));
    }
    if block.index != parent.index + 1 {
        return Err(BlockError::BadIndex { parent: parent.index, got: block.index });
    }
    if block.prev_hash != parent.hash {
        return Err(BlockError::BadPrevHash);
    }
    if block.timestamp < parent.timestamp {
        return Err(BlockError::TimestampBeforeParent { parent: parent.timestamp, got: block.timestamp });
    }
    let cap = genesis.params.max_pairs_per_block;
    if block.transactions.len() > cap as usize {
        return Err(BlockError::TooManyPairs { count: block.transactions.len(), cap });
    }
    if block.transactions.is_empty() {
        return Err(BlockError::Empty);
    }
    let mut seen = HashSet::with_capacity(block.transactions.len());
    for (position, pair) in block.transactions.iter().enumerate() {
        pair.check_issued(genesis).map_err(|error| BlockError::InvalidPair { position, error })?;
        if !seen.insert(pair.identity()) {
            return Err(BlockError::DuplicateIdentity(pair.identity()));
        }
    }
    let limit_ms = genesis.params.max_future_ms;
    if block.timestamp > now_ms.saturating_add(limit_ms) {
        return Err(BlockError::Deferred { index: block.index, ahead_ms: block.timestamp - now_ms, limit_ms });
    }
    Ok(())
}

/// Checks `blocks` as the continuation of a chain at `fork_point`.
/// Duplicates are judged against the candidate chain itself: `prefix` up to
/// the fork point (its later blocks would be orphaned) plus the new blocks.
pub fn check_fork<V: ChainView + ?Sized>(
    prefix: &V,
    fork_point: &TipInfo,
    blocks: &[Block],
    genesis: &Genesis,
    now_ms: u64,
) -> Result<(), ForkError> {
    let mut seen: HashSet<Identity> = HashSet::new();
    let mut parent = *fork_point;
    for block in blocks {
        let fail = |error| ForkError { index: block.index, error };
        check_block(block, &parent, genesis, now_ms).map_err(fail)?;
        for pair in &block.transactions {
            let id = pair.identity();
            let in_prefix = prefix.landed(&id).is_some_and(|l| l.block_index <= fork_point.index);
            if in_prefix || seen.contains(&id) {
                return Err(fail(BlockError::DuplicateIdentity(id)));
            }
            seen.insert(id);
        }
        parent = block.tip_info();
    }
    Ok(())
}
