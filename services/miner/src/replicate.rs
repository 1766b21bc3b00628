//! Replication between miners: each accepted batch before its answer,
//! owners' records when written, and everything again by anti-entropy.

use crate::state::Miner;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uwl_bus::proto::*;
use uwl_bus::{BusError, RemoteError, RequestId};
use uwl_ledger::{OrphanRecord, Superseded, TxPair};
use uwl_store::{Insert, Origin};

/// Owners' records pushed per anti-entropy round (of each kind).
const RECORDS_PAGE: u64 = 500;

impl Miner {
    /// Sends `pairs` to every peer not marked down, each under the
    /// replication bound, in messages bounded in bytes. True if every
    /// message was stored by at least one peer.
    pub(crate) async fn replicate(&self, pairs: &[TxPair], rid: &RequestId) -> bool {
        if pairs.is_empty() {
            return false;
        }
        self.push_chunks(pairs, |c| self.replication(c, Vec::new(), Vec::new()), rid).await
    }

    /// Sends owners' records to every peer (best effort: anti-entropy
    /// sends every record again in time), in messages bounded in bytes.
    pub(crate) async fn replicate_records(&self, orphaned: &[OrphanRecord], superseded: &[Superseded], rid: &RequestId) {
        self.push_chunks(orphaned, |c| self.replication(Vec::new(), c, Vec::new()), rid).await;
        self.push_chunks(superseded, |c| self.replication(Vec::new(), Vec::new(), c), rid).await;
    }

    /// Pushes `items` in messages of at most the reply budget, each made by
    /// `wrap`. True if every message was stored by at least one peer.
    async fn push_chunks<T: Clone + serde::Serialize>(&self, items: &[T], wrap: impl Fn(Vec<T>) -> ReplicateRequest, rid: &RequestId) -> bool {
        let budget = self.bus.reply_budget();
        let (mut rest, mut ok) = (items, true);
        while !rest.is_empty() {
            let fit = match fitting(rest, budget) {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "records do not encode: not replicated");
                    return false;
                }
            };
            let (chunk, tail) = rest.split_at(fit);
            ok &= self.push(wrap(chunk.to_vec()), rid).await;
            rest = tail;
        }
        ok
    }

    fn replication(&self, pairs: Vec<TxPair>, orphaned: Vec<OrphanRecord>, superseded: Vec<Superseded>) -> ReplicateRequest {
        ReplicateRequest { from: self.id.clone(), pairs, orphaned, superseded }
    }

    /// Sends `req` to every peer not marked down under the replication
    /// bound. True if at least one peer stored it.
    async fn push(&self, req: ReplicateRequest, rid: &RequestId) -> bool {
        let timeout = self.settings.replicate_timeout;
        let sends = self.peers.iter().filter(|p| !self.down.is_down(p)).map(|peer| {
            let req = req.clone();
            async move { (peer, self.bus.ask(peer, req, timeout, rid).await) }
        });
        let mut ok = false;
        for (peer, r) in futures::future::join_all(sends).await {
            let label = match &r {
                Ok(_) => "ok",
                Err(e) => e.label(),
            };
            self.metrics.replications.with_label_values(&[label]).inc();
            match r {
                Ok(_) => ok = true,
                Err(BusError::TimedOut { .. }) => {
                    self.down.mark_down(peer, self.settings.peer_down);
                    warn!(peer, down_ms = self.settings.peer_down.as_millis() as u64, "peer timed out: marked down");
                }
                Err(e) => debug!(peer, %e, "replication failed"),
            }
        }
        ok
    }

    /// Pairs and owners' records from a peer, stored idempotently.
    pub(crate) async fn replicated(self: Arc<Self>, req: ReplicateRequest) -> Result<ReplicateReply, RemoteError> {
        let now = self.now();
        let ReplicateRequest { pairs, orphaned, superseded, .. } = req;
        let carried = pairs.iter().chain(orphaned.iter().map(|o| &o.pair)).chain(superseded.iter().map(|s| &s.pair));
        for pair in carried {
            pair.check_issued(&self.genesis).map_err(|e| RemoteError::bad_request(format!("pair {:?}: {e}", pair.identity())))?;
        }
        let inserts = self
            .with_mempool(move |m| {
                if !orphaned.is_empty() || !superseded.is_empty() {
                    m.insert_records(&orphaned, &superseded, now)?;
                }
                let refs: Vec<(&TxPair, Origin)> = pairs.iter().map(|p| (p, Origin::Replicated)).collect();
                m.insert_many(&refs, now)
            })
            .await?;
        let added = inserts.iter().filter(|i| **i == Insert::Added).count() as u32;
        if added > 0 {
            self.wake.notify_one();
        }
        Ok(ReplicateReply { added })
    }

    /// Anti-entropy: pending pairs are pushed to peers again on a timer,
    /// and the owners' records a page at a time (walking the tables by
    /// receipt id, from the start again at their end). Only pairs pending
    /// here for a whole period go: a younger one was replicated when it
    /// was accepted, or came from a peer, and is most likely mined by now
    /// (pushing the last period's pairs back to the leader that mined them
    /// put them in its mempool again, in a burst every period).
    pub(crate) async fn anti_entropy_loop(self: Arc<Self>, stop: CancellationToken) -> Result<(), BusError> {
        let mut timer = tokio::time::interval(self.settings.anti_entropy_interval);
        let (mut orphaned_after, mut superseded_after) = (None, None);
        loop {
            tokio::select! { _ = stop.cancelled() => break, _ = timer.tick() => {} }
            let (oa, sa) = (orphaned_after, superseded_after);
            let before = self.now().saturating_sub(self.settings.anti_entropy_interval.as_millis() as u64);
            let read = self
                .with_mempool(move |mp| {
                    Ok((mp.pending_before(before, 5_000)?, mp.orphaned_page(oa.as_ref(), RECORDS_PAGE)?, mp.superseded_page(sa.as_ref(), RECORDS_PAGE)?))
                })
                .await;
            let (pending, orphaned, superseded) = match read {
                Ok(r) => r,
                Err(e) => {
                    warn!(%e, "anti-entropy: mempool read failed");
                    continue;
                }
            };
            orphaned_after = orphaned.last().filter(|_| orphaned.len() as u64 == RECORDS_PAGE).map(|o| o.pair.receipt_id());
            superseded_after = superseded.last().filter(|_| superseded.len() as u64 == RECORDS_PAGE).map(|s| s.pair.receipt_id());
            let rid = RequestId::new();
            self.replicate(&pending, &rid).await;
            self.replicate_records(&orphaned, &superseded, &rid).await;
        }
        Ok(())
    }
}
