//! The miner's messages: submissions, replication between miners, reads.

use crate::{message, queries, subjects, RemoteError};
use serde::{Deserialize, Serialize};
use uwl_ledger::{Hash32, Landed, OrphanRecord, ReceiptId, Superseded, TipInfo, TxPair};

/// How a pair reached a miner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmitOrigin {
    /// From this node's ingest, this node being the leader.
    Local,
    /// From another node's ingest: we are its leader.
    Forwarded,
    /// From this node's ingest after its leader did not answer: mine it here.
    Fallback,
}

/// On [`subjects::miner_submit`]: the submissions an ingest had in
/// flight for this miner, in one message, answered one result per item,
/// in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitBatch {
    pub items: Vec<SubmitRequest>,
}

message!(SubmitBatch => Vec<Result<SubmitReply, RemoteError>>, subjects::miner_submit);

/// One submission of a [`SubmitBatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitRequest {
    pub pair: TxPair,
    pub origin: SubmitOrigin,
    /// After acknowledging, wait up to this long for a block carrying the pair.
    pub wait_block_ms: u64,
    /// Ingest's verdict: the task had not expired and a verifier found the
    /// result solves it. The miner is the one authority on a pair's status:
    /// it answers a pair it (or its chain) already holds whatever the
    /// verdict, stores only a verified one, and answers
    /// [`SubmitStatus::Refused`] for the rest, storing nothing. Absent from
    /// ingests of earlier releases, which sent verified pairs only.
    #[serde(default = "verified_by_default")]
    pub verified: bool,
}

fn verified_by_default() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmitStatus {
    /// Durable in this miner's mempool.
    Accepted,
    /// The same pair was already pending here.
    AlreadyPending,
    /// The same pair is already in the chain.
    AlreadyInChain,
    /// The identity is pending or in the chain with another result.
    Conflict,
    /// Neither pending nor in the chain, and not verified: not stored.
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    pub index: u64,
    pub hash: Hash32,
    pub confirmations: u64,
}

impl BlockRef {
    /// The block a pair landed in, counted against `tip`.
    pub fn landed(l: &Landed, tip: &TipInfo) -> Self {
        Self { index: l.block_index, hash: l.block_hash, confirmations: l.confirmations(tip) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitReply {
    pub status: SubmitStatus,
    pub receipt_id: ReceiptId,
    /// For a conflict: the receipt that holds the identity.
    pub existing_receipt: Option<ReceiptId>,
    /// Durable in at least one peer's mempool too.
    pub replicated: bool,
    pub in_block: Option<BlockRef>,
    pub served_by: String,
}

/// On [`subjects::miner_replicate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateRequest {
    pub from: String,
    pub pairs: Vec<TxPair>,
    /// Owners' records (orphaned and superseded pairs), so every validator
    /// answers a client the same; stored idempotently.
    #[serde(default)]
    pub orphaned: Vec<OrphanRecord>,
    #[serde(default)]
    pub superseded: Vec<Superseded>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateReply {
    pub added: u32,
}

message!(ReplicateRequest => ReplicateReply, subjects::miner_replicate);

/// Queries on [`subjects::miner_read`], one variant per request type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MinerQuery {
    Client(ClientQuery),
    Receipt(MinerReceiptQuery),
    Stats(MinerStatsQuery),
}

queries!(MinerQuery, subjects::miner_read, {
    Client(ClientQuery) => ClientPending,
    Receipt(MinerReceiptQuery) => MinerReceipt,
    Stats(MinerStatsQuery) => MinerStats,
});

/// A page of each of the client's lists, in receipt-id order, after the
/// given receipt ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientQuery {
    pub client_id: String,
    #[serde(default = "default_page")]
    pub limit: u32,
    #[serde(default)]
    pub pending_after: Option<ReceiptId>,
    #[serde(default)]
    pub orphaned_after: Option<ReceiptId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerReceiptQuery {
    pub receipt_id: ReceiptId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerStatsQuery {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPending {
    pub pending: Vec<TxPair>,
    pub orphaned: Vec<OrphanRecord>,
    /// More pending pairs (orphan records) follow the last one returned.
    #[serde(default)]
    pub more_pending: bool,
    #[serde(default)]
    pub more_orphaned: bool,
}

/// The default page of a client's list, and the largest one.
pub const PAGE_DEFAULT: u32 = 100;
pub const PAGE_MAX: u32 = 1_000;

fn default_page() -> u32 {
    PAGE_DEFAULT
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerReceipt {
    pub pending: Option<TxPair>,
    pub superseded_by: Option<ReceiptId>,
    pub orphaned: Option<OrphanRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerStats {
    pub node_id: String,
    pub pending: u64,
    pub oldest_pending_age_ms: Option<u64>,
    pub requeued_total: u64,
    pub blocks_mined_total: u64,
    pub pairs_mined_total: u64,
    /// Times this miner's NATS connection was found stalled and made again.
    #[serde(default)]
    pub bus_stalls_total: u64,
    /// Pairs set aside (a block carrying them was refused: kept out of
    /// every block, with the reason), newest first, at most
    /// [`SET_ASIDE_SHOWN`].
    #[serde(default)]
    pub set_aside: Vec<SetAside>,
}

/// How many set-aside pairs a stats answer names.
pub const SET_ASIDE_SHOWN: u64 = 10;

/// A pair set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    pub receipt_id: ReceiptId,
    pub reason: String,
}

/// On [`subjects::miner_admin`], from an operator: back the node up into
/// `backups/<label>/` of its data directory: the mempool (and the node's
/// key if asked), then (asked of sync while this miner holds its chain turn, so no block
/// of its own and no reconciliation falls between the two copies) the
/// chain. A restore of the three loses nothing the copies hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRequest {
    /// Letters, digits, `-` and `_` only (a directory name).
    pub label: String,
    /// Write the node's key into the backup too (it then lies in the data
    /// volume, which sync mounts as well; by default the key is backed up
    /// once, offline, by the operator).
    #[serde(default)]
    pub with_key: bool,
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReply {
    /// The backup's directory, as the node's services see it.
    pub dir: String,
    pub chain_bytes: u64,
    pub mempool_bytes: u64,
    /// The tip of the chain copy.
    pub tip: TipInfo,
    /// Pending pairs in the mempool copy.
    pub pending: u64,
    /// Whether the node's key is in the backup.
    #[serde(default)]
    pub key: bool,
}

message!(BackupRequest => BackupReply, subjects::miner_admin);
