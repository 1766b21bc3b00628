//! `uwl-ledger`: the ledger's rules as plain functions, with no I/O.
//!
//! Everything a node must agree on with every other node lives here: the
//! transaction pair and its identity, the contracts a reward must be
//! issued under (opened with the genesis's issuer keys), blocks and their canonical hash, the
//! genesis file and node keys, block and fork validation, fork choice,
//! leader rotation, and the reconciliation of pending pairs after a chain
//! replacement. Storage (`uwl-store`) and the services call into these
//! functions; nothing here touches a disk, a clock or a network except
//! through the small traits [`ChainView`], [`ChainRead`] and [`Clock`].
//!
//! With the `test-utils` feature (tests and benchmarks only): `testkit`
//! (networks of keys, pairs, blocks) and `memchain` (an in-memory chain).

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod audit;
mod block;
mod clock;
mod contract;
mod fork;
mod genesis;
mod hash;
#[cfg(feature = "test-utils")]
pub mod memchain;
#[cfg(feature = "test-utils")]
pub mod testkit;
mod reconcile;
mod token;
mod tx;
mod validate;

pub use audit::{audit_chain, ChainAudit};
pub use block::{Block, TipInfo};
pub use clock::{Clock, ManualClock, SystemClock};
pub use contract::{Contract, ContractError, KindBounds, TaskBounds, TaskSpec};
pub use fork::{current_leader, is_better, leader_index, plan_adoption, prefer, round, AdoptError, Plan};
pub use genesis::{Genesis, GenesisError, NetworkParams, NodeKey, PublicKey, Validator, MAX_ISSUERS};
pub use hash::{canonical_json, Hash32, Signature64};
pub use token::{open as open_token, seal as seal_token, TokenError};
pub use reconcile::{reconcile, ChainReplaced, OrphanRecord, OrphanedPair, Reconciliation, Superseded};
pub use tx::{receipt_id, result_hash, Identity, MAX_AMOUNT, PairError, ReceiptId, RewardTx, TxPair, WorkReceiptTx};
pub use validate::{check_block, check_fork, BlockError, ChainRead, ChainSlice, ChainView, ForkError, ForkView, Landed};
