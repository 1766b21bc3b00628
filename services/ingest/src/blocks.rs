//! Waiting for the block that carries a pair, woken by tip announcements.

use crate::state::Ingest;
use std::time::Duration;
use uwl_bus::proto::BlockRef;
use uwl_bus::RequestId;
use uwl_ledger::{TipInfo, TxPair};

impl Ingest {
    /// Waits (bounded) until `pair` is in a block of `node`'s chain. A
    /// waiter asks again when that node's tip changes (announcements of
    /// other nodes wake it but cost no look-up); the look-ups are coalesced.
    pub(crate) async fn wait_for_block(&self, node: &str, pair: &TxPair, wait: Duration, rid: &RequestId) -> Option<BlockRef> {
        let deadline = tokio::time::Instant::now() + wait;
        let (id, receipt) = (pair.identity(), pair.receipt_id());
        let mut looked_at: Option<TipInfo> = None;
        loop {
            let changed = self.tip_changed.notified();
            let heard = self.tips.last_heard(node).map(|(t, _)| t);
            if looked_at.is_none() || heard != looked_at {
                if let Ok((landed, tip)) = self.landed_in(node, id.clone(), rid).await {
                    match landed {
                        Some(l) if l.receipt_id == receipt => return Some(BlockRef::landed(&l, &tip)),
                        _ => looked_at = Some(tip),
                    }
                }
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }
}
