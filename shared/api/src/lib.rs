//! `uwl-api`: the public HTTP API's bodies, in one place. Ingest answers
//! with these types; the worker, the benchmark and the tests read them
//! back with the same types, so a renamed field breaks the build, not a
//! client. Every answer is JSON; errors are [`ErrorBody`].

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use serde_json::Value;
use uwl_ledger::{Block, Hash32, ReceiptId, TipInfo};

pub use uwl_tasks::{Kind, Task, TaskParams};

/// What an API key carries (`ak1.<payload>.<signature>`, signed by an
/// issuer key the genesis lists): checking one needs no look-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub client_id: String,
    /// Milliseconds since the Unix epoch; the key expires `KEY_TTL_MS` after.
    pub issued_at: u64,
}

impl ApiKey {
    const PREFIX: &'static str = "ak1";

    /// The key's token, signed by `issuer`.
    pub fn seal(&self, issuer: &uwl_ledger::NodeKey) -> String {
        uwl_ledger::seal_token(issuer, Self::PREFIX, self)
    }

    /// Checks a token's signature under one of `issuers` and decodes it.
    pub fn open(issuers: &[uwl_ledger::PublicKey], token: &str) -> Result<Self, uwl_ledger::TokenError> {
        uwl_ledger::open_token(issuers, Self::PREFIX, token).map(|(key, _signer)| key)
    }
}

/// `POST /register` and `POST /renew_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyIssued {
    pub client_id: String,
    pub api_key: String,
    /// Milliseconds since the Unix epoch, as every time in the API.
    pub issued_at: u64,
    pub expires_at: u64,
}

/// `POST /submit_work`'s body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubmitWork {
    pub client_id: String,
    pub contract_id: String,
    /// The answer, shaped as the task's kind requires (checked: 400 if not).
    #[schema(value_type = Object)]
    pub result_data: Value,
}

/// What became of a submission that was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubmitStatus {
    Accepted,
    /// The same result for this task was taken before (pending or in a block).
    AlreadyProcessed,
}

/// The block a reward is in, when it is (the `block_*` fields of an answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InBlock {
    pub block_index: u64,
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub block_hash: Hash32,
    pub confirmations: u64,
}

/// `POST /submit_work`'s answer (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubmitAnswer {
    pub status: SubmitStatus,
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub receipt_id: ReceiptId,
    pub message: String,
    /// The node whose miner holds the pair.
    pub served_by: String,
    /// The leader this node chose ("" when the pair was already known).
    pub leader: String,
    /// Mined on this node because the leader did not answer.
    pub fallback: bool,
    /// Durable on at least one other validator too.
    pub replicated: bool,
    pub in_block: bool,
    /// The block, when `in_block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub block_hash: Option<Hash32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u64>,
}

impl SubmitAnswer {
    /// The block it is in, if it is.
    pub fn block(&self) -> Option<InBlock> {
        in_block(self.block_index, self.block_hash, self.confirmations)
    }
}

fn in_block(block_index: Option<u64>, block_hash: Option<Hash32>, confirmations: Option<u64>) -> Option<InBlock> {
    Some(InBlock { block_index: block_index?, block_hash: block_hash?, confirmations: confirmations? })
}

/// A pending reward in `GET /get_balance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PendingReward {
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub receipt_id: ReceiptId,
    pub contract_id: String,
    pub amount: u64,
    pub message: String,
}

/// What became of a reward whose block left the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrphanStatus {
    /// In a block of the current chain again.
    InBlock,
    /// Another result for the same task is in the chain instead.
    Superseded,
    /// Pending again, until a block carries it.
    OrphanedRequeued,
}

/// A reward from an orphaned block (`GET /get_balance`, `GET /orphaned_tx`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrphanedReward {
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub receipt_id: ReceiptId,
    pub contract_id: String,
    pub amount: u64,
    pub orphaned_from_block: u64,
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub orphaned_block_hash: Hash32,
    pub orphaned_at: u64,
    pub status: OrphanStatus,
    pub block_index: Option<u64>,
}

/// `GET /get_balance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Balance {
    pub client_id: String,
    pub balance: u64,
    pub pending_reward: Vec<PendingReward>,
    pub orphaned: Vec<OrphanedReward>,
    /// Pass as `pending_cursor` for the next page (absent on the last one).
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub next_pending_cursor: Option<ReceiptId>,
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub next_orphaned_cursor: Option<ReceiptId>,
    pub chain_tip_index: u64,
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub chain_tip_hash: Hash32,
    /// When this node last heard its own chain's tip.
    pub last_sync_time: Option<u64>,
    pub node_id: String,
}

/// `GET /orphaned_tx`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrphanedList {
    pub client_id: String,
    pub orphaned: Vec<OrphanedReward>,
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub next_cursor: Option<ReceiptId>,
    pub node_id: String,
}

/// Where a receipt stands (`GET /receipt/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Pending,
    InBlock,
    OrphanedRequeued,
    Superseded,
    Unknown,
}

impl Receipt {
    /// The block it is in, if it is.
    pub fn block(&self) -> Option<InBlock> {
        in_block(self.block_index, self.block_hash, self.confirmations)
    }
}

impl ReceiptStatus {
    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InBlock => "in_block",
            Self::OrphanedRequeued => "orphaned_requeued",
            Self::Superseded => "superseded",
            Self::Unknown => "unknown",
        }
    }
}

/// `GET /receipt/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Receipt {
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub receipt_id: ReceiptId,
    pub status: ReceiptStatus,
    pub node_id: String,
    /// The block it was orphaned from, if it ever was.
    pub orphaned_from_block: Option<u64>,
    /// The block, when `in_block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub block_hash: Option<Hash32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub superseded_by: Option<ReceiptId>,
}

/// `GET /chain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainPage {
    /// Blocks as the ledger signs them (index, hashes, timestamp, creator,
    /// transactions, signature).
    #[schema(value_type = Vec<Object>)]
    pub blocks: Vec<Block>,
    /// The chain's tip: index, hash, timestamp.
    #[schema(value_type = Object)]
    pub tip: TipInfo,
    pub node_id: String,
}

/// `GET /health` (200 when ready, 503 when not, same body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeHealth {
    /// `ok` or `unavailable`.
    pub status: String,
    pub node_id: String,
    pub nats: bool,
    pub sync: bool,
    pub miner: bool,
    pub strategy: String,
    pub tip_index: Option<u64>,
}

/// `GET /livez`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Live {
    pub status: String,
}

/// The stable code of an error answer, from ingest or from nginx's own
/// error pages (`nginx/nginx.conf.template` uses the same words; a test
/// keeps them equal). The README's list is generated from the OpenAPI
/// document's copy of this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: no key, a malformed or expired one, or one this network did not issue.
    Unauthorized,
    /// 400: a malformed request or a value out of its documented range.
    BadRequest,
    /// 413: the body is larger than the deployment's limit.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 403: the key's client is not the request's client.
    Forbidden,
    /// 404: no such endpoint.
    NotFound,
    /// 405: the endpoint does not take that method.
    MethodNotAllowed,
    /// 409: another result for this task was already accepted (`receipt_id`).
    Conflict,
    /// 410: the task expired before its result arrived.
    Expired,
    /// 422: the result does not solve the task.
    InvalidResult,
    /// 429: too many requests (retry after `Retry-After`).
    RateLimited,
    /// 503: the node cannot take the request now (retry after `Retry-After`).
    Unavailable,
    /// 500: an internal error.
    Internal,
    /// 502 (nginx): no ingest instance answered.
    BadGateway,
    /// 504 (nginx): the ingest instance did not answer in time.
    GatewayTimeout,
    /// 408 (nginx): the request was not received in time.
    RequestTimeout,
    /// 414 (nginx): the request URI is too long.
    UriTooLong,
}

/// Every error answer: `error` is a stable code, `message` human text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub message: String,
    /// For a conflict (409): the receipt that holds the task's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub receipt_id: Option<ReceiptId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_status_words_are_the_wire_words() {
        for s in [ReceiptStatus::Pending, ReceiptStatus::InBlock, ReceiptStatus::OrphanedRequeued, ReceiptStatus::Superseded, ReceiptStatus::Unknown] {
            assert_eq!(serde_json::to_value(s).expect("encodes"), Value::String(s.as_str().to_owned()));
        }
    }

    #[test]
    fn a_submit_answer_carries_block_fields_only_when_in_a_block() {
        let hash = Hash32::from_hex(&"ab".repeat(32)).ok();
        assert!(hash.is_some());
        let mut a = SubmitAnswer {
            status: SubmitStatus::Accepted,
            receipt_id: hash.unwrap_or_default(),
            message: "m".into(),
            served_by: "node-1".into(),
            leader: "node-1".into(),
            fallback: false,
            replicated: true,
            in_block: false,
            block_index: None,
            block_hash: None,
            confirmations: None,
        };
        let v = serde_json::to_value(&a).expect("encodes");
        assert_eq!(v["in_block"], Value::Bool(false));
        assert!(v.get("block_index").is_none(), "{v}");
        a.in_block = true;
        (a.block_index, a.block_hash, a.confirmations) = (Some(3), Some(a.receipt_id), Some(2));
        assert_eq!(a.block(), Some(InBlock { block_index: 3, block_hash: a.receipt_id, confirmations: 2 }));
        let v = serde_json::to_value(&a).expect("encodes");
        assert_eq!(v["block_index"], 3);
        assert_eq!(v["confirmations"], 2);
        assert_eq!(serde_json::from_value::<SubmitAnswer>(v).ok(), Some(a), "decodes as it was sent");
    }
}
