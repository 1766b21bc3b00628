//! `uwl-miner`: owns a node's mempool.
//!
//! It accepts pairs on its node-addressed submit subject (the subject the
//! leader is reached on) and acknowledges them once they are durable here
//! (group commit: one fsync per batch) and replicated to a reachable peer
//! within a bound; it keeps replicating pending pairs to peers
//! (anti-entropy); when this node is the leader it mines every pending pair
//! on a short timer (its fallback pairs always), signs the block and hands it
//! to its sync; and it reconciles pending after chain replacements, from
//! sync's outbox of chain-replaced events and level-triggered against the
//! tip, idempotently.

mod metrics;

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use metrics::Metrics;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uwl_bus::proto::*;
use uwl_bus::{serve, subjects, Bus, BusError, RemoteError, RequestId};
use uwl_ledger::{current_leader, reconcile, Block, Clock, Genesis, Identity, Landed, NodeKey, OrphanRecord, Superseded, SystemClock, TipInfo, TxPair};
use uwl_store::{Insert, Mempool, Origin};
use uwl_telemetry::{CommonSettings, Health};

/// Most identities in one look-up request to sync.
const CONTAINS_CHUNK: usize = 1_000;
/// Most pairs made durable in one mempool transaction.
const ACCEPT_BATCH: usize = 2_000;
/// Committed batches being replicated at once.
const REPLICATING_BATCHES: usize = 4;

#[derive(Parser, Debug, Clone)]
#[command(name = "uwl-miner", about = "Owns a node's mempool: accepts, replicates, mines, reconciles")]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonSettings,
    #[arg(long, env = "DATA_DIR", default_value = "/data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "GENESIS_FILE", default_value = "/config/genesis.json")]
    pub genesis_file: PathBuf,
    /// This node's signing key (default: DATA_DIR/node.key, generated if absent).
    #[arg(long, env = "KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Peer miners to replicate to (default: every validator but this node).
    #[arg(long, env = "PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Timeout of requests to this node's sync.
    #[arg(long, env = "SYNC_TIMEOUT_MS", default_value_t = 2_000)]
    pub sync_timeout_ms: u64,
    /// Bound on replicating an accepted batch to peers before acknowledging.
    #[arg(long, env = "REPLICATE_TIMEOUT_MS", default_value_t = 300)]
    pub replicate_timeout_ms: u64,
    /// After a request to a peer times out, skip that peer this long.
    #[arg(long, env = "PEER_DOWN_MS", default_value_t = 5_000)]
    pub peer_down_ms: u64,
    /// How often the leader checks for pending pairs to mine.
    #[arg(long, env = "MINE_INTERVAL_MS", default_value_t = 20)]
    pub mine_interval_ms: u64,
    /// Mine only once the oldest pending pair has waited this long: trades
    /// latency for fuller blocks (0: mine at once).
    #[arg(long, env = "MIN_PENDING_AGE_MS", default_value_t = 0)]
    pub min_pending_age_ms: u64,
    /// Level-triggered reconciliation period.
    #[arg(long, env = "RECONCILE_INTERVAL_MS", default_value_t = 1_000)]
    pub reconcile_interval_ms: u64,
    /// Anti-entropy period: pending pairs are pushed to peers again.
    #[arg(long, env = "ANTI_ENTROPY_INTERVAL_MS", default_value_t = 5_000)]
    pub anti_entropy_interval_ms: u64,
    /// Longest wait for a block a submitter may ask for.
    #[arg(long, env = "MAX_WAIT_BLOCK_MS", default_value_t = 5_000)]
    pub max_wait_block_ms: u64,
}

impl Settings {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.common.node_id.is_empty(), "NODE_ID must not be empty");
        anyhow::ensure!(self.mine_interval_ms >= 1, "MINE_INTERVAL_MS must be at least 1");
        anyhow::ensure!(self.replicate_timeout_ms >= 1, "REPLICATE_TIMEOUT_MS must be at least 1");
        anyhow::ensure!(self.sync_timeout_ms >= 1, "SYNC_TIMEOUT_MS must be at least 1");
        anyhow::ensure!(self.reconcile_interval_ms >= 10, "RECONCILE_INTERVAL_MS must be at least 10");
        anyhow::ensure!(self.anti_entropy_interval_ms >= 100, "ANTI_ENTROPY_INTERVAL_MS must be at least 100");
        Ok(())
    }
}

struct AcceptJob {
    pair: TxPair,
    origin: Origin,
    done: oneshot::Sender<Result<Accepted, RemoteError>>,
}

/// What the accept loop did with a pair.
enum Accepted {
    /// Already in this node's chain: not stored.
    InChain(Landed, TipInfo),
    /// Stored (or found pending); whether the batch reached a peer.
    Stored(Insert, bool),
}

struct Miner {
    id: String,
    key: NodeKey,
    genesis: Genesis,
    validator: bool,
    bus: Bus,
    mempool: Mutex<Mempool>,
    peers: Vec<String>,
    down_until: Mutex<HashMap<String, Instant>>,
    wake: Notify,
    tip: watch::Sender<TipInfo>,
    accept: mpsc::Sender<AcceptJob>,
    metrics: Metrics,
    settings: Settings,
}

impl Miner {
    fn now(&self) -> u64 {
        SystemClock.now_ms()
    }

    fn sync_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.sync_timeout_ms)
    }

    async fn with_mempool<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Mempool) -> uwl_store::Result<T> + Send + 'static,
    ) -> Result<T, RemoteError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut m = me.mempool.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut m)
        })
        .await
        .map_err(RemoteError::internal)?
        .map_err(RemoteError::internal)
    }

    async fn sync<R: serde::de::DeserializeOwned>(&self, q: &SyncQuery, rid: &RequestId) -> Result<R, BusError> {
        self.bus.request(subjects::sync_read(&self.id), q, self.sync_timeout(), rid).await
    }

    /// Where each identity landed in this node's chain, and the tip.
    async fn contains(&self, ids: &[Identity], rid: &RequestId) -> Result<(HashMap<Identity, Landed>, TipInfo), BusError> {
        let mut out = HashMap::new();
        let mut tip = *self.tip.borrow();
        let budget = self.bus.reply_budget();
        let mut rest = ids;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(uwl_bus::proto::fitting(&rest[..rest.len().min(CONTAINS_CHUNK)], budget));
            rest = tail;
            let reply: ContainsReply = self.sync(&SyncQuery::Contains { ids: chunk.to_vec() }, rid).await?;
            tip = reply.tip;
            out.extend(chunk.iter().cloned().zip(reply.landed).filter_map(|(id, l)| l.map(|l| (id, l))));
        }
        self.observe_tip(tip);
        Ok((out, tip))
    }

    fn observe_tip(&self, tip: TipInfo) {
        self.tip.send_if_modified(|t| {
            let changed = *t != tip;
            *t = tip;
            changed
        });
    }

    fn peer_up(&self, peer: &str) -> bool {
        let down = self.down_until.lock().unwrap_or_else(PoisonError::into_inner);
        down.get(peer).is_none_or(|until| Instant::now() >= *until)
    }

    fn mark_down(&self, peer: &str) {
        let until = Instant::now() + Duration::from_millis(self.settings.peer_down_ms);
        self.down_until.lock().unwrap_or_else(PoisonError::into_inner).insert(peer.to_owned(), until);
        warn!(peer, down_ms = self.settings.peer_down_ms, "peer timed out: marked down");
    }

    /// Sends `pairs` to every peer not marked down, each under the
    /// replication bound, in messages bounded in bytes. True if every
    /// message was stored by at least one peer.
    async fn replicate(&self, pairs: &[TxPair], rid: &RequestId) -> bool {
        if pairs.is_empty() {
            return false;
        }
        let budget = self.bus.reply_budget();
        let mut rest = pairs;
        let mut ok = true;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(uwl_bus::proto::fitting(rest, budget));
            ok &= self.push(&self.replication(chunk.to_vec(), Vec::new(), Vec::new()), rid).await;
            rest = tail;
        }
        ok
    }

    /// Sends owners' records to every peer (best effort: anti-entropy
    /// sends every record again in time), in messages bounded in bytes.
    async fn replicate_records(&self, orphaned: &[OrphanRecord], superseded: &[Superseded], rid: &RequestId) {
        let budget = self.bus.reply_budget();
        let mut rest = orphaned;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(uwl_bus::proto::fitting(rest, budget));
            self.push(&self.replication(Vec::new(), chunk.to_vec(), Vec::new()), rid).await;
            rest = tail;
        }
        let mut rest = superseded;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(uwl_bus::proto::fitting(rest, budget));
            self.push(&self.replication(Vec::new(), Vec::new(), chunk.to_vec()), rid).await;
            rest = tail;
        }
    }

    fn replication(&self, pairs: Vec<TxPair>, orphaned: Vec<OrphanRecord>, superseded: Vec<Superseded>) -> ReplicateRequest {
        ReplicateRequest { from: self.id.clone(), pairs, orphaned, superseded }
    }

    /// Sends `req` to every peer not marked down under the replication
    /// bound. True if at least one peer stored it.
    async fn push(&self, req: &ReplicateRequest, rid: &RequestId) -> bool {
        let timeout = Duration::from_millis(self.settings.replicate_timeout_ms);
        let sends = self.peers.iter().filter(|p| self.peer_up(p)).map(|peer| {
            async move {
                let r: Result<ReplicateReply, BusError> =
                    self.bus.request(subjects::miner_replicate(peer), req, timeout, rid).await;
                (peer, r)
            }
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
                Err(BusError::TimedOut { .. }) => self.mark_down(peer),
                Err(e) => debug!(peer, %e, "replication failed"),
            }
        }
        ok
    }

    /// Group commit: asks sync once which queued pairs are already in the
    /// chain, makes the others durable in one transaction, replicates the
    /// batch once, then answers each submitter. Replication and answers run
    /// beside the next batch's look-up and commit (a few batches at most).
    async fn accept_loop(self: Arc<Self>, mut rx: mpsc::Receiver<AcceptJob>, stop: CancellationToken) -> Result<(), BusError> {
        let replicating = Arc::new(tokio::sync::Semaphore::new(REPLICATING_BATCHES));
        let mut in_flight = JoinSet::new();
        loop {
            while in_flight.try_join_next().is_some() {}
            let first = tokio::select! {
                _ = stop.cancelled() => break,
                j = rx.recv() => match j { Some(j) => j, None => break },
            };
            let mut jobs = vec![first];
            while jobs.len() < ACCEPT_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            self.metrics.accept_batch.observe(jobs.len() as f64);
            // Already in the chain? (If sync cannot say, store: mining skips duplicates.)
            let ids: Vec<Identity> = jobs.iter().map(|j| j.pair.identity()).collect();
            match self.contains(&ids, &RequestId::new()).await {
                Ok((landed, tip)) if !landed.is_empty() => {
                    let (done, rest): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|j| landed.contains_key(&j.pair.identity()));
                    for job in done {
                        let l = landed[&job.pair.identity()];
                        let _ = job.done.send(Ok(Accepted::InChain(l, tip)));
                    }
                    jobs = rest;
                    if jobs.is_empty() {
                        continue;
                    }
                }
                Ok(_) => {}
                Err(e) => warn!(%e, "sync did not answer a look-up; storing the batch"),
            }
            let batch: Vec<(TxPair, Origin)> = jobs.iter().map(|j| (j.pair.clone(), j.origin)).collect();
            let now = self.now();
            let res = self
                .with_mempool(move |m| {
                    let refs: Vec<(&TxPair, Origin)> = batch.iter().map(|(p, o)| (p, *o)).collect();
                    m.insert_many(&refs, now)
                })
                .await;
            match res {
                Ok(inserts) => {
                    let held: Vec<TxPair> = jobs
                        .iter()
                        .zip(&inserts)
                        .filter(|(_, i)| !matches!(i, Insert::Conflict { .. }))
                        .map(|(j, _)| j.pair.clone())
                        .collect();
                    if !held.is_empty() {
                        self.wake.notify_one();
                    }
                    let Ok(permit) = replicating.clone().acquire_owned().await else { break };
                    let me = self.clone();
                    in_flight.spawn(async move {
                        let _permit = permit;
                        let replicated = me.replicate(&held, &RequestId::new()).await;
                        for (job, insert) in jobs.into_iter().zip(inserts) {
                            let _ = job.done.send(Ok(Accepted::Stored(insert, replicated)));
                        }
                    });
                }
                Err(e) => {
                    for job in jobs {
                        let _ = job.done.send(Err(e.clone()));
                    }
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
        Ok(())
    }

    /// A batch of submissions: each goes through [`Self::submit`] at once,
    /// so the accept loop commits them together.
    async fn submit_batch(self: Arc<Self>, batch: SubmitBatch, rid: RequestId) -> Result<Vec<Result<SubmitReply, RemoteError>>, RemoteError> {
        let subs = batch.items.into_iter().map(|req| self.clone().submit(req, rid.clone()));
        Ok(futures::future::join_all(subs).await)
    }

    async fn submit(self: Arc<Self>, req: SubmitRequest, rid: RequestId) -> Result<SubmitReply, RemoteError> {
        let pair = req.pair;
        pair.check().map_err(RemoteError::bad_request)?;
        let id = pair.identity();
        let receipt_id = pair.receipt_id();
        let origin_label = match req.origin {
            SubmitOrigin::Local => "local",
            SubmitOrigin::Forwarded => "forwarded",
            SubmitOrigin::Fallback => "fallback",
        };
        let reply = |status, existing_receipt, replicated, in_block| SubmitReply {
            status,
            receipt_id,
            existing_receipt,
            replicated,
            in_block,
            served_by: self.id.clone(),
        };
        let origin = match req.origin {
            SubmitOrigin::Local => Origin::Local,
            SubmitOrigin::Forwarded => Origin::Forwarded,
            SubmitOrigin::Fallback => Origin::Fallback,
        };
        let (done, wait) = oneshot::channel();
        self.accept
            .send(AcceptJob { pair, origin, done })
            .await
            .map_err(|_| RemoteError::unavailable("miner is shutting down"))?;
        let (insert, replicated) = match wait.await.map_err(|_| RemoteError::unavailable("miner is shutting down"))?? {
            Accepted::Stored(insert, replicated) => (insert, replicated),
            Accepted::InChain(l, tip) => {
                let status = if l.receipt_id == receipt_id { SubmitStatus::AlreadyInChain } else { SubmitStatus::Conflict };
                self.metrics.submissions.with_label_values(&[origin_label, status_label(status)]).inc();
                let existing = (status == SubmitStatus::Conflict).then_some(l.receipt_id);
                return Ok(reply(status, existing, false, Some(block_ref(&l, &tip))));
            }
        };
        let (status, existing) = match insert {
            Insert::Added => (SubmitStatus::Accepted, None),
            Insert::AlreadyPending => (SubmitStatus::AlreadyPending, None),
            Insert::Conflict { existing } => (SubmitStatus::Conflict, Some(existing)),
        };
        self.metrics.submissions.with_label_values(&[origin_label, status_label(status)]).inc();
        let in_block = if status != SubmitStatus::Conflict && req.wait_block_ms > 0 {
            let wait = Duration::from_millis(req.wait_block_ms.min(self.settings.max_wait_block_ms));
            self.wait_for_block(&id, wait, &rid).await
        } else {
            None
        };
        Ok(reply(status, existing, replicated, in_block))
    }

    /// Waits (bounded) until `id` is in a block of this node's chain, whoever mined it.
    async fn wait_for_block(&self, id: &Identity, wait: Duration, rid: &RequestId) -> Option<BlockRef> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut changes = self.tip.subscribe();
        loop {
            changes.mark_unchanged();
            if let Ok((landed, tip)) = self.contains(std::slice::from_ref(id), rid).await {
                if let Some(l) = landed.get(id) {
                    return Some(block_ref(l, &tip));
                }
            }
            tokio::select! {
                c = changes.changed() => if c.is_err() { return None },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    async fn replicated(self: Arc<Self>, req: ReplicateRequest) -> Result<ReplicateReply, RemoteError> {
        let now = self.now();
        let ReplicateRequest { pairs, orphaned, superseded, .. } = req;
        let carried = pairs.iter().chain(orphaned.iter().map(|o| &o.pair)).chain(superseded.iter().map(|s| &s.pair));
        if let Some(bad) = carried.into_iter().find(|p| p.check().is_err()) {
            return Err(RemoteError::bad_request(format!("malformed pair {:?}", bad.identity())));
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

    async fn read(self: Arc<Self>, q: MinerQuery) -> Result<Value, RemoteError> {
        let now = self.now();
        let (requeued, blocks, pairs, stalls) =
            (self.metrics.requeued.get(), self.metrics.blocks_mined.get(), self.metrics.pairs_mined.get(), self.bus.stalls());
        let id = self.id.clone();
        self.with_mempool(move |m| {
            Ok(match q {
                MinerQuery::Client { client_id, limit, pending_after, orphaned_after } => {
                    let limit = u64::from(limit.clamp(1, PAGE_MAX));
                    let mut pending = m.pending_for_client(&client_id, pending_after.as_ref(), limit + 1)?;
                    let mut orphaned = m.orphaned_for_client(&client_id, orphaned_after.as_ref(), limit + 1)?;
                    let (more_pending, more_orphaned) = (pending.len() as u64 > limit, orphaned.len() as u64 > limit);
                    pending.truncate(limit as usize);
                    orphaned.truncate(limit as usize);
                    json(&ClientPending { pending, orphaned, more_pending, more_orphaned })
                }
                MinerQuery::Receipt { receipt_id } => json(&MinerReceipt {
                    pending: m.by_receipt(&receipt_id)?,
                    superseded_by: m.superseded_by(&receipt_id)?,
                    orphaned: m.orphaned_by_receipt(&receipt_id)?,
                }),
                MinerQuery::Identities { ids } => json(&ids.iter().map(|id| m.get(id)).collect::<uwl_store::Result<Vec<_>>>()?),
                MinerQuery::Stats => json(&MinerStats {
                    node_id: id,
                    pending: m.len()?,
                    oldest_pending_age_ms: m.oldest_received_ms()?.map(|t| now.saturating_sub(t)),
                    requeued_total: requeued,
                    blocks_mined_total: blocks,
                    pairs_mined_total: pairs,
                    bus_stalls_total: stalls,
                }),
            })
        })
        .await
    }

    /// One mining attempt: if this node should mine, build a block of its
    /// pending pairs on sync's tip as last seen (its announcements and
    /// replies; a stale one is answered `NotOnTip` with the tip) and hand
    /// it over. Returns whether to try again at once (a block was stored,
    /// or the tip moved).
    async fn mine_once(self: &Arc<Self>) -> Result<bool, RemoteError> {
        let rid = RequestId::new();
        let cap = u64::from(self.genesis.params.max_pairs_per_block);
        let tip = *self.tip.borrow();
        let now = self.now();
        let leader = current_leader(&self.genesis, &tip, now).node_id == self.id;
        let min_age = self.settings.min_pending_age_ms;
        let candidates = self
            .with_mempool(move |m| {
                let young = m.oldest_received_ms()?.is_some_and(|t| now.saturating_sub(t) < min_age);
                match (young, leader) {
                    (true, _) => Ok(Vec::new()),
                    (false, true) => m.pending(cap),
                    (false, false) => m.fallback(cap),
                }
            })
            .await?;
        if candidates.is_empty() {
            return Ok(false);
        }
        // Pairs already in the chain (a peer's block) are named by sync's
        // `Duplicates` answer: dropped, and the next attempt goes at once.
        let n = candidates.len();
        let block = Block::mine(&tip, now, &self.key, candidates);
        let mined: Vec<Identity> = block.transactions.iter().map(TxPair::identity).collect();
        let reply: AppendReply = self
            .bus
            .request(subjects::sync_append(&self.id), &AppendRequest { block: block.clone() }, self.sync_timeout(), &rid)
            .await
            .map_err(|e| {
                self.metrics.block_failures.with_label_values(&["append"]).inc();
                RemoteError::unavailable(format!("handing block {} to sync: {e}", block.index))
            })?;
        match reply {
            AppendReply::Appended { tip } => {
                self.observe_tip(tip);
                self.with_mempool(move |m| m.remove(&mined)).await?;
                self.metrics.blocks_mined.inc();
                self.metrics.pairs_mined.inc_by(n as u64);
                self.metrics.block_pairs.observe(n as f64);
                debug!(index = block.index, pairs = n, leader, "block mined");
                Ok(true)
            }
            AppendReply::NotOnTip { tip } => {
                self.observe_tip(tip);
                Ok(true)
            }
            AppendReply::Duplicates { ids, .. } => {
                info!(count = ids.len(), "sync named pairs already in the chain: dropping them");
                self.with_mempool(move |m| m.remove(&ids)).await?;
                Ok(true)
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
                Ok(true)
            }
            AppendReply::Invalid { reason, .. } => {
                self.metrics.block_failures.with_label_values(&["invalid"]).inc();
                Err(RemoteError::internal(format!("sync refused our block {}: {reason}", block.index)))
            }
        }
    }

    async fn mine_loop(self: Arc<Self>, stop: CancellationToken) -> Result<(), BusError> {
        if !self.validator {
            info!("not a validator of the genesis set: this node never mines");
            stop.cancelled().await;
            return Ok(());
        }
        let interval = Duration::from_millis(self.settings.mine_interval_ms);
        loop {
            // Finish the block in flight before looking at `stop` again.
            let again = match self.mine_once().await {
                Ok(again) => again,
                Err(e) => {
                    warn!(%e, "mining attempt failed");
                    false
                }
            };
            if again {
                if stop.is_cancelled() {
                    break;
                }
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
        Ok(())
    }

    /// Applies chain-replaced events from sync's outbox; with `level`, then
    /// reconciles against the tip if it moved since the last reconciliation
    /// (every pending pair is looked up: on the timer only, not per block;
    /// mining filters pairs already in the chain in any case).
    async fn reconcile_once(self: &Arc<Self>, level: bool) -> Result<(), RemoteError> {
        let rid = RequestId::new();
        // Orphaned blocks of the next event already reconciled from its
        // earlier pages (a large event comes in pages bounded in bytes; a
        // restart begins it again: reconciliation is idempotent).
        let mut skip_blocks = 0u32;
        loop {
            let last = self.with_mempool(|m| m.last_event_seq()).await?;
            let req = EventsRequest { ack_through: (last > 0).then_some(last), after: last, limit: 16, skip_blocks };
            let reply: EventsReply = self
                .bus
                .request(subjects::sync_events(&self.id), &req, self.sync_timeout(), &rid)
                .await
                .map_err(RemoteError::unavailable)?;
            self.observe_tip(reply.tip);
            if reply.partial {
                let Some((seq, ev)) = reply.events.first() else { break };
                self.reconcile_with(&ev.orphaned, None, &rid).await?;
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
                self.reconcile_with(&ev.orphaned, Some(seq), &rid).await?;
                skip_blocks = 0;
            }
        }
        if !level {
            return Ok(());
        }
        let reconciled = self.with_mempool(|m| m.reconciled_tip()).await?;
        if reconciled != Some(*self.tip.borrow()) {
            self.reconcile_with(&[], None, &rid).await?;
        }
        let (len, oldest) = self.with_mempool(|m| Ok((m.len()?, m.oldest_received_ms()?))).await?;
        self.metrics.pending.set(len as i64);
        let age = oldest.map(|t| self.now().saturating_sub(t) / 1_000).unwrap_or(0);
        self.metrics.oldest_pending_age_seconds.set(age as i64);
        Ok(())
    }

    async fn reconcile_with(self: &Arc<Self>, orphaned: &[Block], seq: Option<u64>, rid: &RequestId) -> Result<(), RemoteError> {
        let pending = self.with_mempool(|m| m.pending(u64::MAX >> 1)).await?;
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
        self.with_mempool(move |m| m.apply_reconciliation(&record, &tip, seq, now)).await?;
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

impl Miner {
    /// Anti-entropy: pending pairs are pushed to peers again on a timer,
    /// and the owners' records a page at a time (walking the tables by
    /// receipt id, from the start again at their end).
    async fn anti_entropy_loop(self: Arc<Self>, stop: CancellationToken) -> Result<(), BusError> {
        let mut timer = tokio::time::interval(Duration::from_millis(self.settings.anti_entropy_interval_ms));
        let (mut orphaned_after, mut superseded_after) = (None, None);
        loop {
            tokio::select! { _ = stop.cancelled() => break, _ = timer.tick() => {} }
            let (oa, sa) = (orphaned_after, superseded_after);
            let read = self
                .with_mempool(move |mp| Ok((mp.pending(5_000)?, mp.orphaned_page(oa.as_ref(), RECORDS_PAGE)?, mp.superseded_page(sa.as_ref(), RECORDS_PAGE)?)))
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

/// Owners' records pushed per anti-entropy round (of each kind).
const RECORDS_PAGE: u64 = 500;

fn status_label(s: SubmitStatus) -> &'static str {
    match s {
        SubmitStatus::Accepted => "accepted",
        SubmitStatus::AlreadyPending => "already_pending",
        SubmitStatus::AlreadyInChain => "already_in_chain",
        SubmitStatus::Conflict => "conflict",
    }
}

fn block_ref(l: &Landed, tip: &TipInfo) -> BlockRef {
    BlockRef { index: l.block_index, hash: l.block_hash, confirmations: tip.index.saturating_sub(l.block_index) + 1 }
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Starts the miner and runs it until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    settings.validate()?;
    let genesis = Genesis::load(&settings.genesis_file)?;
    let id = settings.common.node_id.clone();
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let key_file = settings.key_file.clone().unwrap_or_else(|| settings.data_dir.join("node.key"));
    let key = NodeKey::load_or_generate(&key_file, &id)?;
    let validator = match genesis.validator(&id) {
        Some(v) if v.public_key != key.public_key() => {
            anyhow::bail!("{} does not hold the key the genesis file lists for {id}", key_file.display())
        }
        Some(_) => true,
        None => false,
    };
    let path = settings.data_dir.join("mempool.sqlite");
    let mempool = Mempool::open(&path).with_context(|| format!("opening {}", path.display()))?;
    info!(node = %id, validator, pending = mempool.len()?, "mempool open");
    let peers = if settings.peers.is_empty() {
        genesis.validators.iter().map(|v| v.node_id.clone()).filter(|n| *n != id).collect()
    } else {
        settings.peers.clone()
    };
    let bus = Bus::connect(&settings.common.nats_url, &format!("uwl-miner/{id}")).await?;
    let metrics = Metrics::new(&id)?;
    let (accept_tx, accept_rx) = mpsc::channel(4 * ACCEPT_BATCH);
    let genesis_tip = Block::genesis(&genesis).tip_info();
    let (tip_tx, _) = watch::channel(genesis_tip);
    let miner = Arc::new(Miner {
        id: id.clone(),
        key,
        genesis,
        validator,
        bus: bus.clone(),
        mempool: Mutex::new(mempool),
        peers,
        down_until: Mutex::new(HashMap::new()),
        wake: Notify::new(),
        tip: tip_tx,
        accept: accept_tx,
        metrics: metrics.clone(),
        settings: settings.clone(),
    });

    let health_bus = bus.clone();
    let health = Arc::new(move || {
        let connected = health_bus.is_connected();
        Health { ready: connected, detail: serde_json::json!({"service": "miner", "nats": connected}) }
    });
    let admin = uwl_telemetry::serve_admin(settings.common.admin_addr, metrics.registry.clone(), health, shutdown.clone()).await?;
    info!(%admin, "admin server listening");

    // Requests stop first on shutdown; mining and reconciliation stop after
    // the requests in flight were answered and the block in flight stored.
    let requests = shutdown.clone();
    let workers = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let m = miner.clone();
    tasks.spawn(serve(bus.clone(), subjects::miner_submit(&id), None, 4 * ACCEPT_BATCH, requests.clone(), move |q, rid| {
        m.clone().submit_batch(q, rid)
    }));
    let m = miner.clone();
    tasks.spawn(serve(bus.clone(), subjects::miner_replicate(&id), None, 16, requests.clone(), move |q, _| {
        m.clone().replicated(q)
    }));
    let m = miner.clone();
    tasks.spawn(serve(bus.clone(), subjects::miner_read(&id), None, 64, requests.clone(), move |q, _| m.clone().read(q)));
    let mut background = JoinSet::new();
    background.spawn(miner.clone().accept_loop(accept_rx, workers.clone()));
    background.spawn(miner.clone().mine_loop(workers.clone()));
    // Own sync's tip announcements keep the tip view (and block waits) current.
    let (m, stop) = (miner.clone(), workers.clone());
    let mut tips = bus.subscribe(subjects::TIPS.to_owned()).await?;
    background.spawn(async move {
        loop {
            let msg = tokio::select! { _ = stop.cancelled() => break, m = tips.next() => match m { Some(m) => m, None => break } };
            if let Ok(ann) = serde_json::from_slice::<TipAnnouncement>(&msg.payload) {
                if ann.node_id == m.id {
                    m.observe_tip(ann.tip);
                }
            }
        }
        Ok(())
    });
    let (m, stop) = (miner.clone(), workers.clone());
    let mut hints = bus.subscribe(subjects::sync_replaced(&id)).await?;
    background.spawn(async move {
        let mut timer = tokio::time::interval(Duration::from_millis(m.settings.reconcile_interval_ms));
        let mut tip_changes = m.tip.subscribe();
        loop {
            let level = tokio::select! {
                _ = stop.cancelled() => break,
                _ = timer.tick() => true,
                _ = hints.next() => false,
                _ = tip_changes.changed() => false,
            };
            if let Err(e) = m.reconcile_once(level).await {
                debug!(%e, "reconciliation deferred");
            }
        }
        Ok(())
    });
    background.spawn(miner.clone().anti_entropy_loop(workers.clone()));

    shutdown.cancelled().await;
    while let Some(res) = tasks.join_next().await {
        if let Ok(Err(e)) = res {
            warn!(%e, "request loop ended with an error");
        }
    }
    workers.cancel();
    while background.join_next().await.is_some() {}
    bus.drain().await;
    info!("miner stopped");
    Ok(())
}
