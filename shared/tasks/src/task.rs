//! What a worker sees of a contract: its kind, its inputs, its reward.

use crate::matmul::{matrices, Matrix};
use crate::pow::hash_prefix;
use serde::{Deserialize, Serialize};
use uwl_ledger::{Contract, TaskSpec};

/// The kind of work a task asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Matmul,
    Hash,
}

/// A kind name that is neither `matmul` nor `hash`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task kind {0:?} (expected matmul or hash)")]
pub struct UnknownKind(pub String);

impl std::str::FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "matmul" => Ok(Self::Matmul),
            "hash" => Ok(Self::Hash),
            other => Err(UnknownKind(other.to_owned())),
        }
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matmul => "matmul",
            Self::Hash => "hash",
        }
    }
}

impl From<&TaskSpec> for Kind {
    fn from(spec: &TaskSpec) -> Self {
        match spec {
            TaskSpec::Matmul { .. } => Self::Matmul,
            TaskSpec::Hash { .. } => Self::Hash,
        }
    }
}

/// What `GET /get_task` returns: everything needed to compute the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    /// The signed contract: submit it with the result.
    pub contract_id: String,
    pub kind: Kind,
    pub params: TaskParams,
    pub reward: u64,
    pub expires_at: u64,
    pub client_id: String,
}

/// A task's inputs as a worker receives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum TaskParams {
    /// Multiply `a` by `b` (`n x n`); answer `{"c": a x b}`.
    Matmul { n: u32, a: Matrix, b: Matrix },
    /// Find a nonce for `prefix` (hex) with `difficulty_bits` leading zero
    /// bits of `sha256(prefix || nonce as 8 bytes little-endian)`; answer
    /// `{"nonce": n}`.
    Hash {
        #[serde(with = "hex")]
        #[schema(value_type = String)]
        prefix: Vec<u8>,
        difficulty_bits: u32,
    },
}

/// The task's inputs, generated from the contract's seed.
pub fn params(contract: &Contract) -> TaskParams {
    match contract.spec {
        TaskSpec::Matmul { n } => {
            let (a, b) = matrices(contract.seed, n as usize);
            TaskParams::Matmul { n, a, b }
        }
        TaskSpec::Hash { difficulty_bits } => TaskParams::Hash { prefix: hash_prefix(contract.seed), difficulty_bits },
    }
}

/// The task of `contract` (whose id is `contract_id`) as a worker sees it.
pub fn task(contract: &Contract, contract_id: String) -> Task {
    Task {
        contract_id,
        kind: Kind::from(&contract.spec),
        params: params(contract),
        reward: contract.reward,
        expires_at: contract.expires_at,
        client_id: contract.client_id.clone(),
    }
}
