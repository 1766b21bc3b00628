//! Messages on the bus (JSON). Each request type names its reply type.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uwl_ledger::{Block, ChainReplaced, Hash32, Identity, Landed, OrphanRecord, ReceiptId, Superseded, TipInfo, TxPair};

// ---- sync ----

/// Queries on [`crate::subjects::sync_read`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SyncQuery {
    /// -> [`TipReply`]
    Tip,
    /// Blocks after the first `locator` hash found in the chain (or from
    /// index `from` when the locator is empty). -> [`BlocksReply`]
    Blocks { locator: Vec<Hash32>, from: u64, limit: u32 },
    /// -> [`BalanceReply`]
    Balance { client_id: String },
    /// -> [`ReceiptReply`]
    Receipt { receipt_id: ReceiptId },
    /// -> [`ContainsReply`]
    Contains { ids: Vec<Identity> },
    /// -> [`SyncStats`]
    Stats,
}

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
}

/// A block from the node's own miner, on [`crate::subjects::sync_append`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendRequest {
    pub block: Block,
}

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

/// How many of `items`, from the first, fit in `budget` bytes of JSON;
/// at least one (a single item is bounded elsewhere: a block by its cap).
pub fn fitting<T: Serialize>(items: &[T], budget: usize) -> usize {
    let mut bytes = 0;
    items
        .iter()
        .take_while(|i| {
            bytes += serde_json::to_vec(i).map(|v| v.len() + 1).unwrap_or(usize::MAX / 2);
            bytes <= budget
        })
        .count()
        .max(1)
        .min(items.len())
}

/// On [`crate::subjects::sync_events`]: acknowledge events up to
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

/// Published on [`crate::subjects::TIPS`] by every sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipAnnouncement {
    pub node_id: String,
    pub tip: TipInfo,
}

// ---- miner ----

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

/// On [`crate::subjects::miner_submit`]: the submissions an ingest had in
/// flight for this miner, in one message. -> one
/// `Result<SubmitReply, RemoteError>` per item, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitBatch {
    pub items: Vec<SubmitRequest>,
}

/// One submission of a [`SubmitBatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitRequest {
    pub pair: TxPair,
    pub origin: SubmitOrigin,
    /// After acknowledging, wait up to this long for a block carrying the pair.
    pub wait_block_ms: u64,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    pub index: u64,
    pub hash: Hash32,
    pub confirmations: u64,
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

/// On [`crate::subjects::miner_replicate`].
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

/// Queries on [`crate::subjects::miner_read`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MinerQuery {
    /// A page of each of the client's lists, in receipt-id order, after
    /// the given receipt ids. -> [`ClientPending`]
    Client {
        client_id: String,
        #[serde(default = "default_page")]
        limit: u32,
        #[serde(default)]
        pending_after: Option<ReceiptId>,
        #[serde(default)]
        orphaned_after: Option<ReceiptId>,
    },
    /// -> [`MinerReceipt`]
    Receipt { receipt_id: ReceiptId },
    /// The pending pair of each identity, if any. -> `Vec<Option<TxPair>>`, in order.
    Identities { ids: Vec<Identity> },
    /// -> [`MinerStats`]
    Stats,
}

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
}

// ---- verifier ----

/// Published on [`crate::subjects::INGEST_REPORTS`] by every ingest instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    pub instance: String,
    pub node_id: String,
    /// Forwards to the leader since the instance started, by result.
    pub forwards: BTreeMap<String, u64>,
}

/// On [`crate::subjects::verify`]: the verifications an ingest had in
/// flight, in one message. -> one [`VerifyReply`] per item, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyBatch {
    pub items: Vec<VerifyRequest>,
}

/// One verification of a [`VerifyBatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRequest {
    pub contract: uwl_tasks::Contract,
    pub result_data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReply {
    pub valid: bool,
    /// Why the result is malformed, if it is (a 400 rather than a 422).
    pub shape_error: Option<String>,
}
