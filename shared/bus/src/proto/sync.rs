//! Sync's messages: its read queries, blocks from the node's miner,
//! chain-replaced events, tip announcements.

use crate::{message, queries, subjects, Publication};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uwl_ledger::{Block, ChainReplaced, Hash32, Identity, Landed, ReceiptId, TipInfo};

/// Queries on [`subjects::sync_read`], one variant per request type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SyncQuery {
    Tip(TipQuery),
    Blocks(BlocksQuery),
    Balance(BalanceQuery),
    Receipt(ReceiptQuery),
    Contains(ContainsQuery),
    Stats(SyncStatsQuery),
}

queries!(SyncQuery, subjects::sync_read, {
    Tip(TipQuery) => TipReply,
    Blocks(BlocksQuery) => BlocksReply,
    Balance(BalanceQuery) => BalanceReply,
    Receipt(ReceiptQuery) => ReceiptReply,
    Contains(ContainsQuery) => ContainsReply,
    Stats(SyncStatsQuery) => SyncStats,
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipQuery {}

/// Blocks after the first `locator` hash found in the chain (or from
/// index `from` when the locator is empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocksQuery {
    pub locator: Vec<Hash32>,
    pub from: u64,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceQuery {
    pub client_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptQuery {
    pub receipt_id: ReceiptId,
}

/// Where each identity landed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainsQuery {
    pub ids: Vec<Identity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatsQuery {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipReply {
    pub node_id: String,
    pub tip: TipInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocksReply {
    pub tip: TipInfo,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceReply {
    pub balance: u64,
    pub tip: TipInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptReply {
    pub landed: Option<(Identity, Landed)>,
    pub tip: TipInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainsReply {
    /// One entry per asked identity, in order.
    pub landed: Vec<Option<Landed>>,
    pub tip: TipInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStats {
    pub node_id: String,
    pub tip: Option<TipInfo>,
    pub blocks_by_creator: BTreeMap<String, u64>,
    pub replacements_total: u64,
    pub last_replacement_depth: u64,
    pub orphaned_blocks_total: u64,
    /// Blocks decoded from disk when the store was opened (O(1), not the chain).
    pub blocks_read_at_start: u64,
    /// Times this sync's NATS connection was found stalled and made again.
    #[serde(default)]
    pub bus_stalls_total: u64,
    /// Each peer's last tip announcement this sync heard, and how long ago
    /// (a peer never heard is absent).
    #[serde(default)]
    pub peers: Vec<PeerHeard>,
}

/// A peer's tip as one sync last heard it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHeard {
    pub node_id: String,
    pub tip: TipInfo,
    pub heard_ms_ago: u64,
}

/// A block from the node's own miner, on [`subjects::sync_append`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendRequest {
    pub block: Block,
}

message!(AppendRequest => AppendReply, subjects::sync_append);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AppendReply {
    Appended { tip: TipInfo },
    /// The block's parent is not the tip: build on `tip`.
    NotOnTip { tip: TipInfo },
    /// These identities are already in the chain: drop them.
    Duplicates { ids: Vec<Identity>, tip: TipInfo },
    /// Refused; `pairs` names the pairs at fault, when it is theirs (the
    /// miner sets those aside and mines the rest).
    Invalid {
        reason: String,
        #[serde(default)]
        pairs: Vec<Identity>,
    },
}

/// On [`subjects::sync_events`]: acknowledge events up to
/// `ack_through`, then fetch those after `after`, leaving out the first
/// `skip_blocks` orphaned blocks of the first one (already reconciled from
/// an earlier page of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsRequest {
    pub ack_through: Option<u64>,
    pub after: u64,
    pub limit: u32,
    #[serde(default)]
    pub skip_blocks: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsReply {
    pub events: Vec<(u64, ChainReplaced)>,
    pub tip: TipInfo,
    /// The one event in `events` is too large for one reply and carries
    /// only a page of its orphaned blocks: ask again with `skip_blocks`
    /// advanced past them (the reply is bounded in bytes, not only in count).
    #[serde(default)]
    pub partial: bool,
}

message!(EventsRequest => EventsReply, subjects::sync_events);

/// Published on [`subjects::tips`] of its node by every sync; heard on
/// every node's (`subscribe::<TipAnnouncement>("*")`). One that names
/// another node than its subject's is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipAnnouncement {
    pub node_id: String,
    pub tip: TipInfo,
}

impl Publication for TipAnnouncement {
    fn subject(node: &str) -> String {
        subjects::tips(node)
    }
    fn sender(&self) -> Option<&str> {
        Some(&self.node_id)
    }
}

/// Published on [`subjects::landed`] of its node by sync for each block it
/// applies (its miner's, or a peer's it adopted): which pairs the block
/// carries, compactly, so ingest wakes exactly the submissions waiting for
/// them, with no look-up. `tip`: the chain's tip once the block was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBlock {
    pub node_id: String,
    pub index: u64,
    pub hash: Hash32,
    pub tip: TipInfo,
    /// [`receipt_key`] of each pair's receipt id.
    pub receipts: Vec<u64>,
}

impl NewBlock {
    pub fn of(node_id: &str, block: &Block, tip: TipInfo) -> Self {
        let receipts = block.transactions.iter().map(|p| receipt_key(&p.receipt_id())).collect();
        Self { node_id: node_id.to_owned(), index: block.index, hash: block.hash, tip, receipts }
    }
}

/// A receipt id's first 8 bytes as a number: what [`NewBlock`] carries per
/// pair (a waiter matches its own receipt's key; a collision would need a
/// 64-bit preimage of another client's receipt).
pub fn receipt_key(r: &ReceiptId) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&r.0[..8]);
    u64::from_be_bytes(b)
}

impl Publication for NewBlock {
    fn subject(node: &str) -> String {
        subjects::landed(node)
    }
    fn sender(&self) -> Option<&str> {
        Some(&self.node_id)
    }
}

/// Published on [`subjects::sync_replaced`] after a chain replacement
/// (the event's sequence number): the node's miner fetches events now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Replaced(pub u64);

impl Publication for Replaced {
    fn subject(node: &str) -> String {
        subjects::sync_replaced(node)
    }
}

/// On [`subjects::sync_admin`], from the node's own miner: write a
/// consistent copy of the chain store to `path` (a new file in the node's
/// data directory; SQLite's `VACUUM INTO`, while the store stays open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCopyRequest {
    pub path: String,
}

/// The copy written: its size, and the tip it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCopied {
    pub bytes: u64,
    pub tip: TipInfo,
}

message!(ChainCopyRequest => ChainCopied, subjects::sync_admin);
