//! Mining: when this node leads (or for its fallback pairs), a block of
//! pending pairs on the tip, signed and handed to sync; pairs sync refuses
//! are dropped (already in the chain) or set aside (invalid).

use crate::reconcile::Pending;
use crate::state::Miner;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uwl_bus::proto::*;
use uwl_bus::{BusError, RemoteError, RequestId};
use uwl_ledger::{current_leader, Block, Identity, TipInfo, TxPair};

/// What a mining attempt did.
enum Attempt {
    /// Nothing to mine.
    Nothing,
    /// A block was stored: the next one waits for its turn
    /// ([`crate::Settings::block_interval`]).
    Stored,
    /// The tip moved or pairs were dropped: try again at once.
    Again,
}

impl Miner {
    /// One mining attempt: if this node should mine, build a block of its
    /// pending pairs on sync's tip as last seen (its announcements and
    /// replies; a stale one is answered `NotOnTip` with the tip) and hand
    /// it over.
    /// `checked` is the tip the pending pairs were last checked against:
    /// the one our own last block made, or one whose pairs were looked up.
    async fn mine_once(self: &Arc<Self>, checked: &mut Option<TipInfo>) -> Result<Attempt, RemoteError> {
        let _turn = self.chain_turn.lock().await;
        let rid = RequestId::new();
        let cap = u64::from(self.genesis.params.max_pairs_per_block);
        let tip = *self.tip.borrow();
        let now = self.now();
        let leader = current_leader(&self.genesis, &tip, now).node_id == self.id;
        let min_age = self.settings.min_pending_age.as_millis() as u64;
        let candidates = self
            .with_mempool(move |m| {
                let young = min_age > 0 && m.oldest_received_ms()?.is_some_and(|t| now.saturating_sub(t) < min_age);
                match (young, leader) {
                    (true, _) => Ok(Vec::new()),
                    (false, true) => m.pending(cap),
                    (false, false) => m.fallback(cap),
                }
            })
            .await
            .inspect_err(|_| self.metrics.block_failures.with_label_values(&["build"]).inc())?;
        if candidates.is_empty() {
            return Ok(Attempt::Nothing);
        }
        if *checked != Some(tip) {
            // A block we did not make (a peer's, or one from before a
            // restart) may carry pairs still pending here, the peer's pairs
            // replicated to us: they leave the mempool first, so no block
            // is refused for them (with two validators the next leader
            // changes at about every other block).
            self.reconcile_with(&[], Pending::These(candidates), None, &rid).await?;
            *checked = Some(tip);
            return Ok(Attempt::Again);
        }
        // Pairs already in the chain (a peer's block) are named by sync's
        // `Duplicates` answer: dropped, and the next attempt goes at once.
        let n = candidates.len();
        let block = Block::mine(&tip, now, &self.key, candidates);
        let mined: Vec<Identity> = block.transactions.iter().map(TxPair::identity).collect();
        let reply = self
            .sync(AppendRequest { block: block.clone() }, &rid)
            .await
            .map_err(|e| {
                self.metrics.block_failures.with_label_values(&["append"]).inc();
                RemoteError::unavailable(format!("handing block {} to sync: {e}", block.index))
            })?;
        match reply {
            AppendReply::Appended { tip } => {
                self.observe_tip(tip);
                *checked = Some(tip);
                self.with_mempool(move |m| m.remove(&mined))
                    .await
                    .inspect_err(|_| self.metrics.block_failures.with_label_values(&["mempool_update"]).inc())?;
                self.metrics.blocks_mined.inc();
                self.metrics.pairs_mined.inc_by(n as u64);
                self.metrics.block_pairs.observe(n as f64);
                debug!(index = block.index, pairs = n, leader, "block mined");
                Ok(Attempt::Stored)
            }
            AppendReply::NotOnTip { tip } => {
                self.observe_tip(tip);
                Ok(Attempt::Again)
            }
            AppendReply::Duplicates { ids, .. } => {
                info!(count = ids.len(), "sync named pairs already in the chain: dropping them");
                self.with_mempool(move |m| m.remove(&ids)).await?;
                Ok(Attempt::Again)
            }
            AppendReply::Invalid { reason, pairs } if !pairs.is_empty() => {
                // One bad pair never stops block production: it is set
                // aside (kept, with the reason, out of every block) and the
                // next attempt mines the rest at once.
                self.metrics.block_failures.with_label_values(&["invalid_pairs"]).inc();
                self.metrics.set_aside.inc_by(pairs.len() as u64);
                warn!(count = pairs.len(), %reason, "sync refused our block for these pairs: setting them aside");
                let (now, why) = (self.now(), reason.clone());
                self.with_mempool(move |m| m.set_aside(&pairs, &why, now)).await?;
                Ok(Attempt::Again)
            }
            AppendReply::Invalid { reason, .. } => {
                self.metrics.block_failures.with_label_values(&["invalid"]).inc();
                Err(RemoteError::internal(format!("sync refused our block {}: {reason}", block.index)))
            }
        }
    }

    pub(crate) async fn mine_loop(self: Arc<Self>, stop: CancellationToken) -> Result<(), BusError> {
        if !self.validator {
            info!("not a validator of the genesis set: this node never mines");
            stop.cancelled().await;
            return Ok(());
        }
        let (interval, pace) = (self.settings.mine_interval, self.settings.block_interval);
        let mut checked = None;
        loop {
            let started = tokio::time::Instant::now();
            // Finish the block in flight before looking at `stop` again.
            let attempt = self.mine_once(&mut checked).await.unwrap_or_else(|e| {
                warn!(%e, "mining attempt failed");
                Attempt::Nothing
            });
            if stop.is_cancelled() {
                break;
            }
            match attempt {
                Attempt::Again => continue,
                // The next block gathers what arrives until its turn.
                Attempt::Stored => {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep_until(started + pace) => continue,
                    }
                }
                Attempt::Nothing => {}
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
        Ok(())
    }
}
