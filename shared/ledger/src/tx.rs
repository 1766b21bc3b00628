//! The transaction pair (`reward_tx` + `work_receipt_tx`) and its identity.

use crate::hash::{canonical_json, Hash32};
use serde::{Deserialize, Serialize};

/// Names one submission the same way on every node:
/// `sha256("uwl/receipt/v1" || canonical([client_id, contract_id, result_hash]))`.
pub type ReceiptId = Hash32;

/// At most one pair per identity can ever be in a valid chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identity {
    pub client_id: String,
    pub contract_id: String,
}

/// The largest amount a pair may carry and a balance may reach: what the
/// stores hold (SQLite's signed 64-bit integers). A larger amount does not
/// decode, so no process can be handed a pair it could not store.
pub const MAX_AMOUNT: u64 = i64::MAX as u64;

/// Mints `amount` to `client_id` for `contract_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardTx {
    pub client_id: String,
    pub contract_id: String,
    #[serde(deserialize_with = "bounded_amount")]
    pub amount: u64,
}

fn bounded_amount<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v > MAX_AMOUNT {
        return Err(serde::de::Error::custom(format!("amount {v} is above the largest amount, {MAX_AMOUNT}")));
    }
    Ok(v)
}

/// Records that `client_id` delivered a verified result for `contract_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkReceiptTx {
    pub client_id: String,
    pub contract_id: String,
    pub result_hash: Hash32,
    pub receipt_id: ReceiptId,
}

/// The atomic unit of the ledger: both halves land in one block or neither
/// does. Decoding a pair with a missing half fails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxPair {
    pub reward_tx: RewardTx,
    pub work_receipt_tx: WorkReceiptTx,
}

/// Why a pair is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    #[error("reward_tx and work_receipt_tx name different clients or contracts")]
    MismatchedIds,
    #[error("receipt_id is not derived from (client_id, contract_id, result_hash)")]
    WrongReceiptId,
    #[error("reward amount is zero")]
    ZeroAmount,
    #[error("client_id or contract_id is empty")]
    EmptyId,
    #[error("reward amount is above {MAX_AMOUNT}")]
    AmountTooLarge,
    #[error("contract_id does not open under an issuer key of the genesis")]
    NotIssued,
    #[error("the contract was issued to another client")]
    NotTheContractsClient,
    #[error("amount {pair} is not the contract's reward {contract}")]
    NotTheContractsReward { contract: u64, pair: u64 },
    #[error("the contract's task or reward is outside the genesis's task bounds")]
    OutOfBounds,
}

/// sha256 of the canonical encoding of a submission's `result_data`.
pub fn result_hash(result_data: &serde_json::Value) -> Hash32 {
    Hash32::digest(&[&canonical_json(result_data)])
}

/// The receipt id of `(client_id, contract_id, result_hash)`.
pub fn receipt_id(client_id: &str, contract_id: &str, result_hash: &Hash32) -> ReceiptId {
    let body = canonical_json(&(client_id, contract_id, result_hash));
    Hash32::digest(&[b"uwl/receipt/v1", &body])
}

impl TxPair {
    /// Builds a well-formed pair.
    pub fn new(client_id: &str, contract_id: &str, amount: u64, result_hash: Hash32) -> Self {
        Self {
            reward_tx: RewardTx {
                client_id: client_id.to_owned(),
                contract_id: contract_id.to_owned(),
                amount,
            },
            work_receipt_tx: WorkReceiptTx {
                client_id: client_id.to_owned(),
                contract_id: contract_id.to_owned(),
                result_hash,
                receipt_id: receipt_id(client_id, contract_id, &result_hash),
            },
        }
    }

    pub fn identity(&self) -> Identity {
        Identity {
            client_id: self.reward_tx.client_id.clone(),
            contract_id: self.reward_tx.contract_id.clone(),
        }
    }

    pub fn receipt_id(&self) -> ReceiptId {
        self.work_receipt_tx.receipt_id
    }

    pub fn client_id(&self) -> &str {
        &self.reward_tx.client_id
    }

    pub fn amount(&self) -> u64 {
        self.reward_tx.amount
    }

    /// Both halves name the same identity and the receipt id is the derived
    /// one (the checks that need no genesis; see [`TxPair::check_issued`]).
    pub fn check(&self) -> Result<(), PairError> {
        let (r, w) = (&self.reward_tx, &self.work_receipt_tx);
        if r.client_id.is_empty() || r.contract_id.is_empty() {
            return Err(PairError::EmptyId);
        }
        if r.client_id != w.client_id || r.contract_id != w.contract_id {
            return Err(PairError::MismatchedIds);
        }
        if w.receipt_id != receipt_id(&w.client_id, &w.contract_id, &w.result_hash) {
            return Err(PairError::WrongReceiptId);
        }
        if r.amount == 0 {
            return Err(PairError::ZeroAmount);
        }
        if r.amount > MAX_AMOUNT {
            return Err(PairError::AmountTooLarge);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> TxPair {
        TxPair::new("alice", "c-1", 10, result_hash(&serde_json::json!({"nonce": 7})))
    }

    #[test]
    fn well_formed_pair_passes() {
        assert_eq!(pair().check(), Ok(()));
    }

    #[test]
    fn mismatched_halves_are_rejected() {
        let mut p = pair();
        p.work_receipt_tx.contract_id = "c-2".into();
        assert_eq!(p.check(), Err(PairError::MismatchedIds));
        let mut p = pair();
        p.reward_tx.client_id = "bob".into();
        assert_eq!(p.check(), Err(PairError::MismatchedIds));
    }

    #[test]
    fn forged_receipt_id_and_zero_amount_are_rejected() {
        let mut p = pair();
        p.work_receipt_tx.result_hash = Hash32::digest(&[b"other"]);
        assert_eq!(p.check(), Err(PairError::WrongReceiptId));
        let mut p = pair();
        p.reward_tx.amount = 0;
        assert_eq!(p.check(), Err(PairError::ZeroAmount));
        let p = TxPair::new("", "c", 1, Hash32::default());
        assert_eq!(p.check(), Err(PairError::EmptyId));
    }

    #[test]
    fn an_amount_the_stores_cannot_hold_does_not_decode_and_fails_the_check() {
        let mut v = serde_json::to_value(pair()).unwrap();
        v["reward_tx"]["amount"] = serde_json::json!(MAX_AMOUNT);
        assert!(serde_json::from_value::<TxPair>(v.clone()).is_ok());
        v["reward_tx"]["amount"] = serde_json::json!(MAX_AMOUNT + 1);
        let err = serde_json::from_value::<TxPair>(v).unwrap_err();
        assert!(err.to_string().contains("above the largest amount"), "{err}");
        let mut p = pair();
        p.reward_tx.amount = MAX_AMOUNT + 1;
        assert_eq!(p.check(), Err(PairError::AmountTooLarge));
    }

    #[test]
    fn a_pair_missing_a_half_does_not_decode() {
        let mut v = serde_json::to_value(pair()).unwrap();
        v.as_object_mut().unwrap().remove("work_receipt_tx");
        assert!(serde_json::from_value::<TxPair>(v).is_err());
    }

    #[test]
    fn receipt_id_depends_on_every_part() {
        let h = Hash32::digest(&[b"r"]);
        let base = receipt_id("a", "c", &h);
        assert_ne!(base, receipt_id("b", "c", &h));
        assert_ne!(base, receipt_id("a", "d", &h));
        assert_ne!(base, receipt_id("a", "c", &Hash32::digest(&[b"s"])));
        // no ambiguity from concatenation
        assert_ne!(receipt_id("ab", "c", &h), receipt_id("a", "bc", &h));
    }

    #[test]
    fn result_hash_is_canonical() {
        let a: serde_json::Value = serde_json::from_str(r#"{"c": [[1,2]], "z": 1}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "z":1, "c":[[1, 2]] }"#).unwrap();
        assert_eq!(result_hash(&a), result_hash(&b));
    }
}
