//! Waiting for the block that carries a pair: the submission registers its
//! receipt before it is placed, and sync's announcement of each block it
//! applies (`NewBlock`, any node's) wakes exactly the submissions whose
//! pairs the block carries. No look-ups: the cost is one map entry per
//! waiting submission and one map probe per pair of each new block.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use uwl_bus::proto::{receipt_key, BlockRef, NewBlock};
use uwl_ledger::ReceiptId;

/// Submissions waiting for their block, by receipt key.
#[derive(Debug, Default)]
pub(crate) struct Confirmations {
    waiting: Mutex<HashMap<u64, Vec<oneshot::Sender<BlockRef>>>>,
}

/// One submission's wait; leaves the registry when dropped.
#[derive(Debug)]
pub(crate) struct Waiting<'a> {
    registry: &'a Confirmations,
    key: u64,
    rx: oneshot::Receiver<BlockRef>,
}

impl Confirmations {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Vec<oneshot::Sender<BlockRef>>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a wait for the block carrying the pair of `receipt`: do it
    /// before the pair is placed, so no block can land unseen in between.
    pub(crate) fn expect(&self, receipt: &ReceiptId) -> Waiting<'_> {
        let (tx, rx) = oneshot::channel();
        let key = receipt_key(receipt);
        self.lock().entry(key).or_default().push(tx);
        Waiting { registry: self, key, rx }
    }

    /// Wakes the submissions whose pairs `b` carries.
    pub(crate) fn landed(&self, b: &NewBlock) {
        let mut waiting = self.lock();
        if waiting.is_empty() {
            return;
        }
        let at = BlockRef { index: b.index, hash: b.hash, confirmations: b.tip.index.saturating_sub(b.index) + 1 };
        for key in &b.receipts {
            for tx in waiting.remove(key).into_iter().flatten() {
                let _ = tx.send(at.clone());
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}

impl Waiting<'_> {
    /// The block, once one carrying the pair is announced within `limit`.
    pub(crate) async fn wait(mut self, limit: Duration) -> Option<BlockRef> {
        tokio::time::timeout(limit, &mut self.rx).await.ok()?.ok()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.rx.close();
        let mut waiting = self.registry.lock();
        if let Some(list) = waiting.get_mut(&self.key) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                waiting.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uwl_ledger::{Hash32, TipInfo};

    fn block(index: u64, tip: u64, receipts: &[&ReceiptId]) -> NewBlock {
        NewBlock {
            node_id: "node-1".into(),
            index,
            hash: Hash32([index as u8; 32]),
            tip: TipInfo { index: tip, timestamp: 0, hash: Hash32([tip as u8; 32]) },
            receipts: receipts.iter().map(|r| receipt_key(r)).collect(),
        }
    }

    #[tokio::test]
    async fn a_block_wakes_exactly_the_waits_for_its_pairs_and_a_wait_leaves_no_trace() {
        let reg = Confirmations::default();
        let (mine, twin, other) = (Hash32([1; 32]), Hash32([1; 32]), Hash32([2; 32]));
        let (a, b, c) = (reg.expect(&mine), reg.expect(&twin), reg.expect(&other));
        assert_eq!(reg.len(), 3);
        reg.landed(&block(7, 9, &[&Hash32([3; 32]), &mine]));
        let got = a.wait(Duration::from_millis(50)).await.expect("woken");
        assert_eq!((got.index, got.hash, got.confirmations), (7, Hash32([7; 32]), 3));
        assert!(b.wait(Duration::from_millis(50)).await.is_some(), "two submissions of one pair both woken");
        assert_eq!(c.wait(Duration::from_millis(50)).await, None, "a pair the block does not carry waits on, until its limit");
        assert_eq!(reg.len(), 0, "every wait left the registry");
        let gone = reg.expect(&other);
        drop(gone);
        assert_eq!(reg.len(), 0, "an abandoned wait (request dropped) too");
    }
}
