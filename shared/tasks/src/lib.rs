//! `uwl-tasks`: the useful work the network pays for.
//!
//! A task is issued as a self-describing, signed `contract_id` (kind, seed,
//! parameters, client, reward, expiry; the record is the ledger's
//! [`Contract`], which every node opens with the genesis's issuer keys).
//! This crate turns a contract into a worker's task and checks results. Two
//! kinds exist:
//!
//! - `matmul`: multiply two `n x n` matrices of entries below 2^16 generated
//!   from the seed by SplitMix64 ([`matrices`]); checked by Freivalds'
//!   algorithm in O(k n^2) ([`verify_matmul`]).
//! - `hash`: find a nonce such that `sha256(prefix || nonce_le8)` has at
//!   least `difficulty_bits` leading zero bits ([`verify_hash`]).

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod matmul;
mod pow;
mod task;

pub use task::{params, task, Kind, Task, TaskParams, UnknownKind};
pub use matmul::{matrices, multiply, verify_matmul, Matrix, SplitMix64, FREIVALDS_ROUNDS};
pub use pow::{hash_prefix, leading_zero_bits, solve_hash, verify_hash};
use uwl_ledger::{Contract, TaskSpec};

use serde_json::Value;

/// A result whose shape matches its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkResult {
    Matmul { c: Matrix },
    Hash { nonce: u64 },
}

/// Why a `result_data` does not fit its task (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("result_data: {0}")]
pub struct ShapeError(pub String);

/// Checks the size and shape of `result_data` against the task, before any
/// verification work.
pub fn parse_result(contract: &Contract, result_data: &Value) -> Result<WorkResult, ShapeError> {
    let err = |m: &str| ShapeError(m.to_owned());
    let obj = result_data.as_object().ok_or_else(|| err("must be an object"))?;
    match contract.spec {
        TaskSpec::Hash { .. } => {
            if obj.len() != 1 {
                return Err(err("must be {\"nonce\": u64}"));
            }
            let nonce = obj.get("nonce").and_then(Value::as_u64).ok_or_else(|| err("nonce must be an unsigned 64-bit integer"))?;
            Ok(WorkResult::Hash { nonce })
        }
        TaskSpec::Matmul { n } => {
            if obj.len() != 1 {
                return Err(err("must be {\"c\": [[u64]]}"));
            }
            let n = n as usize;
            let rows = obj.get("c").and_then(Value::as_array).ok_or_else(|| err("c must be an array of rows"))?;
            if rows.len() != n {
                return Err(ShapeError(format!("c must have {n} rows, has {}", rows.len())));
            }
            let max = matmul::max_entry(n);
            let mut c = Vec::with_capacity(n);
            for (i, row) in rows.iter().enumerate() {
                let row = row.as_array().filter(|r| r.len() == n).ok_or_else(|| ShapeError(format!("row {i} must have {n} entries")))?;
                let parsed = row
                    .iter()
                    .map(|v| v.as_u64().filter(|x| *x <= max))
                    .collect::<Option<Vec<u64>>>()
                    .ok_or_else(|| ShapeError(format!("row {i}: entries must be integers in 0..={max}")))?;
                c.push(parsed);
            }
            Ok(WorkResult::Matmul { c })
        }
    }
}

/// Verifies a well-shaped result against its task (false means HTTP 422).
pub fn verify(contract: &Contract, result: &WorkResult) -> bool {
    match (&contract.spec, result) {
        (TaskSpec::Hash { difficulty_bits }, WorkResult::Hash { nonce }) => {
            verify_hash(&hash_prefix(contract.seed), *difficulty_bits, *nonce)
        }
        (TaskSpec::Matmul { n }, WorkResult::Matmul { c }) => {
            let (a, b) = matrices(contract.seed, *n as usize);
            verify_matmul(&a, &b, c, FREIVALDS_ROUNDS, &mut rand::rngs::OsRng)
        }
        _ => false,
    }
}

/// Computes a task's answer the honest way (the worker, the benchmark,
/// tests), as the `result_data` to submit.
pub fn solve(params: &TaskParams) -> Value {
    match params {
        TaskParams::Hash { prefix, difficulty_bits } => serde_json::json!({ "nonce": solve_hash(prefix, *difficulty_bits) }),
        TaskParams::Matmul { a, b, .. } => serde_json::json!({ "c": multiply(a, b) }),
    }
}
