//! `uwl-store`: a node's durable state, embedded in SQLite.
//!
//! Two stores, each owned by exactly one process of a node: the
//! [`ChainStore`] (owned by sync) holds the blocks, an index of identities
//! and receipts, balances maintained incrementally, orphaned blocks kept for
//! audit and an outbox of chain-replaced events; the [`Mempool`] (owned by
//! the miner) holds pending pairs and the per-client records of orphaned and
//! superseded pairs.
//!
//! Both run in WAL mode with `synchronous=FULL`, so a commit that returned
//! is on disk. Each is held by its one owner process
//! (exclusive locking); operators read consistent copies the owner writes
//! (`uwl-admin backup`) with `sqlite3`. Every change of a chain is one
//! transaction: a crash leaves the old chain or the new one, never a mix.
//! Opening a store reads its tip, never the whole chain.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod audit;
mod chain;
mod db;
pub mod files;
mod mempool;
mod records;
mod schema;

pub use audit::StoreAudit;
pub use chain::{ChainStats, ChainStore, Replaced, CHAIN_SCHEMA_VERSION};
pub use mempool::{Insert, Mempool, Origin, MEMPOOL_SCHEMA_VERSION};

use uwl_ledger::{Hash32, Identity};

/// Errors of both stores.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data does not decode: {0}")]
    Corrupt(String),
    #[error("data does not encode for the store: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("store schema version {found} is not the supported {supported}")]
    SchemaVersion { found: i64, supported: i64 },
    #[error("store belongs to another network: block 0 is {stored}, genesis gives {expected}")]
    GenesisMismatch { stored: Hash32, expected: Hash32 },
    #[error("block {index} does not link to block {parent} of the chain")]
    BadLink { index: u64, parent: u64 },
    #[error("fork point {fork_point} is above the tip {tip}")]
    ForkPointAboveTip { fork_point: u64, tip: u64 },
    #[error("{} identities are already in the chain", .0.len())]
    DuplicateIdentities(Vec<Identity>),
    #[error("amount or balance {0} does not fit the store's 63-bit integers")]
    Overflow(u64),
    #[error("block {index}: the balance of {client_id:?} would overflow")]
    BalanceOverflow { index: u64, client_id: String },
    #[error("copying the store to {path}: {reason}")]
    Copy { path: String, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
