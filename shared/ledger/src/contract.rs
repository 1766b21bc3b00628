//! Contracts: the signed record a `contract_id` carries (what a task is, for
//! which client, for what reward), and the rules every node holds a reward
//! to: its contract opens under an issuer key the genesis lists, names the
//! pair's client, carries the pair's amount and stays within the genesis's
//! task bounds. None of this depends on time: expiry is checked once, at
//! submission, never when a block is validated.

use crate::genesis::{Genesis, NodeKey, PublicKey};
use crate::hash::Hash32;
use crate::token::{self, TokenError};
use crate::tx::{PairError, TxPair, MAX_AMOUNT};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

/// Token prefix of contract ids (versioned).
const CONTRACT_PREFIX: &str = "ct1";

/// A task kind with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskSpec {
    Matmul { n: u32 },
    Hash { difficulty_bits: u32 },
}

/// The signed record a `contract_id` carries. Only an issuer can produce
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
    #[error("contract_id: {0}")]
    Token(#[from] TokenError),
}

/// A kind's bounds: its parameter (matmul: `n`; hash: `difficulty_bits`)
/// in `min..=max`, its reward in `1..=max_reward`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindBounds {
    pub min: u32,
    pub max: u32,
    pub max_reward: u64,
}

impl KindBounds {
    fn admits(&self, param: u32, reward: u64) -> bool {
        (self.min..=self.max).contains(&param) && (1..=self.max_reward).contains(&reward)
    }
}

/// What any contract may ask and pay, per kind (part of the genesis, so
/// every node holds every reward to the same bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskBounds {
    pub matmul: KindBounds,
    pub hash: KindBounds,
}

impl Default for TaskBounds {
    fn default() -> Self {
        Self {
            matmul: KindBounds { min: 2, max: 256, max_reward: 1_000 },
            hash: KindBounds { min: 4, max: 64, max_reward: 1_000 },
        }
    }
}

impl TaskBounds {
    /// Whether a contract of `spec` paying `reward` is within these bounds.
    pub fn admits(&self, spec: &TaskSpec, reward: u64) -> bool {
        match *spec {
            TaskSpec::Matmul { n } => self.matmul.admits(n, reward),
            TaskSpec::Hash { difficulty_bits } => self.hash.admits(difficulty_bits, reward),
        }
    }

    /// Bounds that are themselves sound: non-empty ranges, rewards a store can hold.
    pub(crate) fn check(&self) -> Result<(), String> {
        for (name, b, ceiling) in [("matmul", &self.matmul, 4_096), ("hash", &self.hash, 256)] {
            if b.min == 0 || b.min > b.max || b.max > ceiling {
                return Err(format!("{name}: the parameter range must be within 1..={ceiling} and not empty"));
            }
            if b.max_reward == 0 || b.max_reward > MAX_AMOUNT {
                return Err(format!("{name}: max_reward must be in 1..={MAX_AMOUNT}"));
            }
        }
        Ok(())
    }
}

impl Contract {
    /// The contract id: this record, signed by `issuer`. The process that
    /// signed it opens it later without verifying the signature again.
    pub fn seal(&self, issuer: &NodeKey) -> String {
        let id = token::seal(issuer, CONTRACT_PREFIX, self);
        remember(&id, issuer.public_key(), self.clone());
        id
    }

    /// Checks the signature under one of `issuers` and decodes the record.
    /// Each process verifies a contract's signature once: later calls are
    /// answered from a bounded memo of (signer, record) by contract id,
    /// valid while its signer is among `issuers`.
    pub fn open(issuers: &[PublicKey], contract_id: &str) -> Result<Self, ContractError> {
        if let Some((signer, c)) = memo().get(&memo_key(contract_id)) {
            if issuers.contains(signer) {
                return Ok(c.clone());
            }
        }
        let (contract, signer): (Self, PublicKey) = token::open(issuers, CONTRACT_PREFIX, contract_id)?;
        remember(contract_id, signer, contract.clone());
        Ok(contract)
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at
    }
}

/// Contracts opened by this process: at most this many are remembered
/// (about 200 bytes each); the memo starts afresh when full.
const MEMO_CAP: usize = 65_536;

static OPENED: LazyLock<Mutex<HashMap<Hash32, (PublicKey, Contract)>>> = LazyLock::new(Mutex::default);

fn memo() -> MutexGuard<'static, HashMap<Hash32, (PublicKey, Contract)>> {
    OPENED.lock().unwrap_or_else(PoisonError::into_inner)
}

fn memo_key(contract_id: &str) -> Hash32 {
    Hash32::digest(&[b"uwl/contract-memo/v1", contract_id.as_bytes()])
}

/// A contract whose signature by `signer` is known good (verified, or made here).
fn remember(contract_id: &str, signer: PublicKey, contract: Contract) {
    let mut memo = memo();
    if memo.len() >= MEMO_CAP {
        memo.clear();
    }
    memo.insert(memo_key(contract_id), (signer, contract));
}

impl TxPair {
    /// The ledger's whole check of one pair, on every node, with no clock:
    /// well formed ([`TxPair::check`]), and its contract issued by the
    /// network to this client for exactly this amount, within the genesis's
    /// task bounds.
    pub fn check_issued(&self, genesis: &Genesis) -> Result<Contract, PairError> {
        self.check()?;
        let contract = Contract::open(&genesis.issuers, &self.reward_tx.contract_id).map_err(|_| PairError::NotIssued)?;
        if contract.client_id != self.reward_tx.client_id {
            return Err(PairError::NotTheContractsClient);
        }
        if contract.reward != self.reward_tx.amount {
            return Err(PairError::NotTheContractsReward { contract: contract.reward, pair: self.reward_tx.amount });
        }
        if !genesis.params.tasks.admits(&contract.spec, contract.reward) {
            return Err(PairError::OutOfBounds);
        }
        Ok(contract)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, issued, Net};
    use crate::tx::result_hash;

    fn contract(spec: TaskSpec) -> Contract {
        Contract { spec, seed: 7, client_id: "alice".into(), reward: 5, expires_at: 2_000 }
    }

    #[test]
    fn a_contract_sealed_here_is_remembered_under_its_signer() {
        let k = testkit::issuer();
        let c = Contract { seed: 99_001, ..contract(TaskSpec::Hash { difficulty_bits: 8 }) };
        let id = c.seal(&k);
        assert_eq!(memo().get(&memo_key(&id)).cloned(), Some((k.public_key(), c.clone())), "opening it needs no verification");
        assert_eq!(Contract::open(&testkit::issuers(), &id), Ok(c));
    }

    #[test]
    fn contracts_open_under_any_listed_issuer_and_no_other() {
        let (k, next) = (testkit::issuer(), testkit::successor());
        let listed = testkit::issuers();
        for spec in [TaskSpec::Matmul { n: 8 }, TaskSpec::Hash { difficulty_bits: 8 }] {
            let c = contract(spec);
            // issued with the key in use or its successor: both open
            assert_eq!(Contract::open(&listed, &c.seal(&k)), Ok(c.clone()));
            assert_eq!(Contract::open(&listed, &c.seal(&next)), Ok(c.clone()));
            // an unlisted key does not open it, cached or not
            let outsider = NodeKey::from_secret("outsider", [43; 32]);
            let id = c.seal(&k);
            assert_eq!(Contract::open(&[outsider.public_key()], &id), Err(ContractError::Token(TokenError::BadSignature)));
            assert!(Contract::open(&[outsider.public_key()], &c.seal(&outsider)).is_ok());
            assert!(Contract::open(&listed, &c.seal(&outsider)).is_err(), "a contract of an unlisted key, opened before under that key");
            // a changed payload does not verify
            let parts: Vec<&str> = id.split('.').collect();
            let forged = contract(TaskSpec::Hash { difficulty_bits: 0 });
            let forged_payload = id.replace(parts[1], token::seal(&outsider, "ct1", &forged).split('.').nth(1).unwrap_or(""));
            assert!(Contract::open(&listed, &forged_payload).is_err());
            assert!(Contract::open(&listed, "garbage").is_err());
            assert!(Contract::open(&listed, "ct1.###.###").is_err());
        }
        assert!(contract(TaskSpec::Hash { difficulty_bits: 1 }).is_expired(2_000));
        assert!(!contract(TaskSpec::Hash { difficulty_bits: 1 }).is_expired(1_999));
    }

    /// Every way a pair can differ from what the network issued is refused.
    #[test]
    fn a_pair_is_valid_only_for_its_contracts_client_amount_and_bounds() {
        let net = Net::new(1);
        let g = &net.genesis;
        let h = result_hash(&serde_json::json!({"nonce": 1}));
        assert!(issued("alice", "t", 10, 1).check_issued(g).is_ok());
        // a made-up contract id
        let made_up = TxPair::new("alice", "c-1", 10, h);
        assert_eq!(made_up.check_issued(g), Err(PairError::NotIssued));
        // another client's contract
        let theirs = testkit::contract_id("bob", "t", 10);
        assert_eq!(TxPair::new("alice", &theirs, 10, h).check_issued(g), Err(PairError::NotTheContractsClient));
        // another amount
        let id = testkit::contract_id("alice", "t", 10);
        assert_eq!(TxPair::new("alice", &id, 11, h).check_issued(g), Err(PairError::NotTheContractsReward { contract: 10, pair: 11 }));
        // issued, but outside the genesis's bounds
        let mut tight = g.clone();
        tight.params.tasks.hash.max_reward = 9;
        assert_eq!(issued("alice", "t", 10, 1).check_issued(&tight), Err(PairError::OutOfBounds));
        tight.params.tasks.hash = KindBounds { min: 5, max: 64, max_reward: 100 };
        assert_eq!(issued("alice", "t", 10, 1).check_issued(&tight), Err(PairError::OutOfBounds), "difficulty 4 is below 5");
        // a genesis that does not list the issuer
        let mut other = g.clone();
        other.issuers = vec![NodeKey::from_secret("x", [44; 32]).public_key()];
        assert_eq!(issued("alice", "t", 10, 1).check_issued(&other), Err(PairError::NotIssued), "a remembered contract of an unlisted signer");
    }

    #[test]
    fn bounds_admit_their_ranges_only() {
        let b = TaskBounds::default();
        assert!(b.admits(&TaskSpec::Hash { difficulty_bits: 16 }, 5));
        assert!(!b.admits(&TaskSpec::Hash { difficulty_bits: 65 }, 5));
        assert!(!b.admits(&TaskSpec::Hash { difficulty_bits: 16 }, 0));
        assert!(!b.admits(&TaskSpec::Matmul { n: 1 }, 5));
        assert!(!b.admits(&TaskSpec::Matmul { n: 32 }, 1_001));
        assert!(b.check().is_ok());
        let mut bad = b;
        bad.matmul.max_reward = MAX_AMOUNT + 1;
        assert!(bad.check().is_err());
    }
}
