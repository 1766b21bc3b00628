//! Contracts: what a task is, signed by the network's issuer key.

use crate::matmul::{matrices, Matrix};
use crate::pow::hash_prefix;
use crate::token::{self, TokenError};
use serde::{Deserialize, Serialize};
use uwl_ledger::{NodeKey, PublicKey};

/// Token prefix of contract ids (versioned).
const CONTRACT_PREFIX: &str = "ct1";

/// The kind of work a task asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Matmul,
    Hash,
}

impl std::str::FromStr for Kind {
    type Err = ContractError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "matmul" => Ok(Self::Matmul),
            "hash" => Ok(Self::Hash),
            other => Err(ContractError::UnknownKind(other.to_owned())),
        }
    }
}

/// A kind with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskSpec {
    Matmul { n: u32 },
    Hash { difficulty_bits: u32 },
}

/// The signed record a `contract_id` carries. Only the issuer can produce
/// one, so it is decoded leniently (serde cannot combine `flatten` with
/// `deny_unknown_fields`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    #[serde(flatten)]
    pub spec: TaskSpec,
    pub seed: u64,
    pub client_id: String,
    pub reward: u64,
    /// Integer milliseconds since the Unix epoch.
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("unknown task kind {0:?} (expected matmul or hash)")]
    UnknownKind(String),
    #[error("contract_id: {0}")]
    Token(#[from] TokenError),
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

impl Contract {
    pub fn kind(&self) -> Kind {
        match self.spec {
            TaskSpec::Matmul { .. } => Kind::Matmul,
            TaskSpec::Hash { .. } => Kind::Hash,
        }
    }

    /// The contract id: this record, signed by the issuer.
    pub fn seal(&self, issuer: &NodeKey) -> String {
        token::seal(issuer, CONTRACT_PREFIX, self)
    }

    /// Checks the issuer's signature and decodes the record.
    pub fn open(issuer: &PublicKey, contract_id: &str) -> Result<Self, ContractError> {
        Ok(token::open(issuer, CONTRACT_PREFIX, contract_id)?)
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at
    }

    /// The task's inputs, generated from its seed.
    pub fn params(&self) -> TaskParams {
        match self.spec {
            TaskSpec::Matmul { n } => {
                let (a, b) = matrices(self.seed, n as usize);
                TaskParams::Matmul { n, a, b }
            }
            TaskSpec::Hash { difficulty_bits } => TaskParams::Hash { prefix: hash_prefix(self.seed), difficulty_bits },
        }
    }

    /// The task as a worker sees it.
    pub fn task(&self, contract_id: String) -> Task {
        Task {
            contract_id,
            kind: self.kind(),
            params: self.params(),
            reward: self.reward,
            expires_at: self.expires_at,
            client_id: self.client_id.clone(),
        }
    }
}
