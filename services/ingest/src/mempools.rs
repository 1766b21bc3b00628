//! Pending state for reads: a validator's own miner holds it (validators
//! replicate pending pairs to each other); a follower has no miner and
//! merges what every validator's miner answers.

use crate::error::ApiError;
use crate::state::Ingest;
use std::collections::BTreeMap;
use uwl_bus::proto::{ClientPending, ClientQuery, MinerReceipt, MinerReceiptQuery};
use uwl_bus::{Request, RequestId};
use uwl_ledger::ReceiptId;

impl Ingest {
    /// The miners whose mempools this node's reads see.
    fn mempools(&self) -> Vec<&str> {
        if self.validator {
            vec![self.me()]
        } else {
            self.genesis.validators.iter().map(|v| v.node_id.as_str()).collect()
        }
    }

    /// Asks every miner of [`Self::mempools`] at once (under the read
    /// timeout); the answers of those that answered, or 503 if none did.
    async fn ask_mempools<Q: Request + Clone>(&self, q: Q, rid: &RequestId) -> Result<Vec<Q::Reply>, ApiError> {
        let nodes = self.mempools();
        let asks = nodes.iter().map(|n| self.bus.ask(n, q.clone(), self.settings.read_timeout, rid));
        let (mut answers, mut failures) = (Vec::new(), Vec::new());
        for (n, r) in nodes.iter().zip(futures::future::join_all(asks).await) {
            match r {
                Ok(a) => answers.push(a),
                Err(e) => failures.push(format!("{n}: {e}")),
            }
        }
        if answers.is_empty() {
            return Err(ApiError::unavailable(format!("no validator's mempool answers ({})", failures.join("; "))));
        }
        Ok(answers)
    }

    /// A page of the client's pending pairs and orphan records, in
    /// receipt-id order after the query's cursors, each once.
    pub(crate) async fn client_pending(&self, q: ClientQuery, rid: &RequestId) -> Result<ClientPending, ApiError> {
        let limit = q.limit as usize;
        let answers = self.ask_mempools(q, rid).await?;
        let (mut pending, mut orphaned) = (BTreeMap::new(), BTreeMap::new());
        let (mut more_pending, mut more_orphaned) = (false, false);
        for a in answers {
            more_pending |= a.more_pending;
            more_orphaned |= a.more_orphaned;
            pending.extend(a.pending.into_iter().map(|p| (p.receipt_id(), p)));
            orphaned.extend(a.orphaned.into_iter().map(|o| (o.pair.receipt_id(), o)));
        }
        let (pending, more) = first(pending, limit);
        let (orphaned, more_o) = first(orphaned, limit);
        Ok(ClientPending { pending, orphaned, more_pending: more_pending || more, more_orphaned: more_orphaned || more_o })
    }

    /// What the mempools hold for one receipt (the first answer naming each part).
    pub(crate) async fn receipt_pending(&self, receipt_id: ReceiptId, rid: &RequestId) -> Result<MinerReceipt, ApiError> {
        let answers = self.ask_mempools(MinerReceiptQuery { receipt_id }, rid).await?;
        Ok(answers.into_iter().fold(MinerReceipt { pending: None, superseded_by: None, orphaned: None }, |acc, a| MinerReceipt {
            pending: acc.pending.or(a.pending),
            superseded_by: acc.superseded_by.or(a.superseded_by),
            orphaned: acc.orphaned.or(a.orphaned),
        }))
    }
}

/// The first `limit` values in key order, and whether more were left out.
fn first<V>(all: BTreeMap<ReceiptId, V>, limit: usize) -> (Vec<V>, bool) {
    let more = all.len() > limit;
    (all.into_values().take(limit).collect(), more)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uwl_ledger::Hash32;

    #[test]
    fn a_merged_page_keeps_key_order_and_says_when_more_follow() {
        let all: BTreeMap<ReceiptId, u8> = [(Hash32([3; 32]), 3), (Hash32([1; 32]), 1), (Hash32([2; 32]), 2)].into_iter().collect();
        assert_eq!(first(all.clone(), 2), (vec![1, 2], true));
        assert_eq!(first(all, 3), (vec![1, 2, 3], false));
    }
}
