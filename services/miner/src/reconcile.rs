//! Reconciliation after chain replacements: from sync's outbox of
//! chain-replaced events (in pages bounded in bytes) and level-triggered
//! against the tip, idempotently; owners' records go to every validator.

use crate::state::Miner;
use std::collections::HashSet;
use std::sync::Arc;
use tracing::{debug, info};
use uwl_bus::proto::*;
use uwl_bus::{RemoteError, RequestId};
use uwl_ledger::{reconcile, Block, Identity, OrphanRecord, TxPair};

/// Which pending pairs a reconciliation looks up.
pub(crate) enum Pending {
    /// The whole mempool.
    All,
    /// These (read from the mempool by the caller, under the chain turn).
    These(Vec<TxPair>),
}

impl Miner {
    /// Applies chain-replaced events from sync's outbox; with `level`, then
    /// reconciles against the tip if it moved since the last reconciliation
    /// (every pending pair is looked up: on the timer only, not per block;
    /// mining filters pairs already in the chain in any case).
    pub(crate) async fn reconcile_once(self: &Arc<Self>, level: bool) -> Result<(), RemoteError> {
        let _turn = self.chain_turn.lock().await;
        let rid = RequestId::new();
        // Orphaned blocks of the next event already reconciled from its
        // earlier pages (a large event comes in pages bounded in bytes; a
        // restart begins it again: reconciliation is idempotent).
        let mut skip_blocks = 0u32;
        loop {
            let last = self.with_mempool(|m| m.last_event_seq()).await?;
            let req = EventsRequest { ack_through: (last > 0).then_some(last), after: last, limit: 16, skip_blocks };
            let reply = self.sync(req, &rid).await.map_err(RemoteError::unavailable)?;
            self.observe_tip(reply.tip);
            if reply.partial {
                let Some((seq, ev)) = reply.events.first() else { break };
                self.reconcile_with(&ev.orphaned, Pending::All, None, &rid).await?;
                skip_blocks += ev.orphaned.len() as u32;
                debug!(event = seq, blocks = skip_blocks, "a page of a chain-replaced event reconciled");
                continue;
            }
            if reply.events.is_empty() {
                break;
            }
            for (seq, ev) in reply.events {
                if skip_blocks > 0 {
                    info!(event = seq, blocks = skip_blocks as usize + ev.orphaned.len(), "a chain-replaced event larger than one message reconciled in pages");
                }
                self.reconcile_with(&ev.orphaned, Pending::All, Some(seq), &rid).await?;
                skip_blocks = 0;
            }
        }
        if !level {
            return Ok(());
        }
        let reconciled = self.with_mempool(|m| m.reconciled_tip()).await?;
        if reconciled != Some(*self.tip.borrow()) {
            self.reconcile_with(&[], Pending::All, None, &rid).await?;
        }
        let (len, oldest) = self.with_mempool(|m| Ok((m.len()?, m.oldest_received_ms()?))).await?;
        self.metrics.pending.set(len as i64);
        let age = oldest.map(|t| self.now().saturating_sub(t) / 1_000).unwrap_or(0);
        self.metrics.oldest_pending_age_seconds.set(age as i64);
        Ok(())
    }

    /// Reconciles `orphaned` blocks and the `pending` pairs named against
    /// sync's chain and applies the result. Only a reconciliation of the
    /// whole mempool is remembered as made against the tip.
    pub(crate) async fn reconcile_with(
        self: &Arc<Self>,
        orphaned: &[Block],
        pending: Pending,
        seq: Option<u64>,
        rid: &RequestId,
    ) -> Result<(), RemoteError> {
        let (pending, whole) = match pending {
            Pending::All => (self.with_mempool(|m| m.pending(u64::MAX >> 1)).await?, true),
            Pending::These(pairs) => (pairs, false),
        };
        let mut ids: Vec<Identity> = pending.iter().map(TxPair::identity).collect();
        let mut seen: HashSet<Identity> = ids.iter().cloned().collect();
        for p in orphaned.iter().flat_map(|b| &b.transactions) {
            if seen.insert(p.identity()) {
                ids.push(p.identity());
            }
        }
        let (landed, tip) = self.contains(&ids, rid).await.map_err(RemoteError::unavailable)?;
        let r = reconcile(&landed, orphaned, &pending);
        let requeued = r.requeue.len();
        let (now, record) = (self.now(), r.clone());
        self.with_mempool(move |m| m.apply_reconciliation(&record, whole.then_some(&tip), seq, now)).await?;
        // Every validator keeps the owners' records, so a client reads the
        // same whichever node serves it.
        let records: Vec<OrphanRecord> = r
            .orphaned
            .iter()
            .map(|o| OrphanRecord { pair: o.pair.clone(), block_index: o.block_index, block_hash: o.block_hash, orphaned_ms: now })
            .collect();
        self.replicate_records(&records, &r.superseded, rid).await;
        self.metrics.requeued.inc_by(requeued as u64);
        let ours = orphaned.iter().filter(|b| b.creator_node_id == self.id).count();
        if ours > 0 {
            info!(node = %self.id, blocks = ours, event = seq, "our block orphaned, re-queuing {requeued} tx");
        } else if requeued > 0 {
            info!(node = %self.id, event = seq, "orphaned blocks of peers: re-queuing {requeued} tx");
        }
        if requeued > 0 {
            self.wake.notify_one();
        }
        if !r.superseded.is_empty() {
            info!(count = r.superseded.len(), "pairs superseded by another result for their identity");
        }
        Ok(())
    }
}
