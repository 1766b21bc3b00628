//! Accepting submissions: group commit (one look-up in sync and one
//! mempool transaction per batch), replication before the answer, and an
//! optional bounded wait for the block.

use crate::state::Miner;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uwl_bus::proto::*;
use uwl_bus::{BusError, RemoteError, RequestId};
use uwl_ledger::{Identity, Landed, TipInfo, TxPair};
use uwl_store::{Insert, Origin};

/// Most pairs made durable in one mempool transaction.
pub(crate) const ACCEPT_BATCH: usize = 2_000;
/// Committed batches being replicated at once.
const REPLICATING_BATCHES: usize = 4;

pub(crate) struct AcceptJob {
    pub(crate) pair: TxPair,
    pub(crate) origin: Origin,
    /// Ingest's verdict: only a verified pair is stored.
    pub(crate) verified: bool,
    pub(crate) done: oneshot::Sender<Result<Accepted, RemoteError>>,
}

/// What the accept loop did with a pair.
pub(crate) enum Accepted {
    /// Already in this node's chain: not stored.
    InChain(Landed, TipInfo),
    /// Stored (or found pending); whether the batch reached a peer.
    Stored(Insert, bool),
    /// Not verified and not held here: nothing stored.
    Refused,
}

impl Miner {
    /// Group commit: asks sync once which queued pairs are already in the
    /// chain, makes the verified others durable in one transaction (and
    /// looks the unverified ones up in the same turn), replicates the batch
    /// once, then answers each submitter. Replication and answers run
    /// beside the next batch's look-up and commit (a few batches at most).
    pub(crate) async fn accept_loop(self: Arc<Self>, mut rx: mpsc::Receiver<AcceptJob>, stop: CancellationToken) -> Result<(), BusError> {
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
                        answer(job, Ok(Accepted::InChain(l, tip)));
                    }
                    jobs = rest;
                    if jobs.is_empty() {
                        continue;
                    }
                }
                Ok(_) => {}
                Err(e) => warn!(%e, "sync did not answer a look-up; storing the batch"),
            }
            // Per job: the origin to store it with, or none (unverified:
            // looked up only).
            let batch: Vec<(TxPair, Option<Origin>)> = jobs.iter().map(|j| (j.pair.clone(), j.verified.then_some(j.origin))).collect();
            let now = self.now();
            let res = self
                .with_mempool(move |m| {
                    let store: Vec<(&TxPair, Origin)> = batch.iter().filter_map(|(p, o)| o.map(|o| (p, o))).collect();
                    let mut stored = if store.is_empty() { Vec::new() } else { m.insert_many(&store, now)? }.into_iter();
                    batch.iter().map(|(p, o)| if o.is_some() { Ok(stored.next()) } else { m.held(p) }).collect::<Result<Vec<_>, _>>()
                })
                .await;
            match res {
                Ok(inserts) => {
                    let held: Vec<TxPair> = jobs
                        .iter()
                        .zip(&inserts)
                        .filter(|(j, i)| j.verified && !matches!(i, Some(Insert::Conflict { .. })))
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
                            let accepted = match insert {
                                Some(insert) => Accepted::Stored(insert, replicated && job.verified),
                                None => Accepted::Refused,
                            };
                            answer(job, Ok(accepted));
                        }
                    });
                }
                Err(e) => {
                    for job in jobs {
                        answer(job, Err(e.clone()));
                    }
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
        Ok(())
    }

    /// A batch of submissions: each goes through [`Self::submit`] at once,
    /// so the accept loop commits them together.
    pub(crate) async fn submit_batch(self: Arc<Self>, batch: SubmitBatch, rid: RequestId) -> Result<Vec<Result<SubmitReply, RemoteError>>, RemoteError> {
        let subs = batch.items.into_iter().map(|req| self.clone().submit(req, rid.clone()));
        Ok(futures::future::join_all(subs).await)
    }

    async fn submit(self: Arc<Self>, req: SubmitRequest, rid: RequestId) -> Result<SubmitReply, RemoteError> {
        let pair = req.pair;
        pair.check_issued(&self.genesis).map_err(RemoteError::bad_request)?;
        let id = pair.identity();
        let receipt_id = pair.receipt_id();
        let origin_label = origin_label(req.origin);
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
            .send(AcceptJob { pair, origin, verified: req.verified, done })
            .await
            .map_err(|_| RemoteError::unavailable("miner is shutting down"))?;
        let (insert, replicated) = match wait.await.map_err(|_| RemoteError::unavailable("miner is shutting down"))?? {
            Accepted::Stored(insert, replicated) => (insert, replicated),
            Accepted::Refused => {
                self.metrics.submissions.with_label_values(&[origin_label, status_label(SubmitStatus::Refused)]).inc();
                return Ok(reply(SubmitStatus::Refused, None, false, None));
            }
            Accepted::InChain(l, tip) => {
                let status = if l.receipt_id == receipt_id { SubmitStatus::AlreadyInChain } else { SubmitStatus::Conflict };
                self.metrics.submissions.with_label_values(&[origin_label, status_label(status)]).inc();
                let existing = (status == SubmitStatus::Conflict).then_some(l.receipt_id);
                return Ok(reply(status, existing, false, Some(BlockRef::landed(&l, &tip))));
            }
        };
        let (status, existing) = match insert {
            Insert::Added => (SubmitStatus::Accepted, None),
            Insert::AlreadyPending => (SubmitStatus::AlreadyPending, None),
            Insert::Conflict { existing } => (SubmitStatus::Conflict, Some(existing)),
        };
        self.metrics.submissions.with_label_values(&[origin_label, status_label(status)]).inc();
        let in_block = if status != SubmitStatus::Conflict && req.wait_block_ms > 0 {
            let wait = Duration::from_millis(req.wait_block_ms).min(self.settings.max_wait_block);
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
                    return Some(BlockRef::landed(l, &tip));
                }
            }
            tokio::select! {
                c = changes.changed() => if c.is_err() { return None },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }
}

/// A submitter gone (its request timed out) no longer waits for the answer.
fn answer(job: AcceptJob, result: Result<Accepted, RemoteError>) {
    if job.done.send(result).is_err() {
        debug!("a submitter stopped waiting before its answer");
    }
}

fn origin_label(o: SubmitOrigin) -> &'static str {
    match o {
        SubmitOrigin::Local => "local",
        SubmitOrigin::Forwarded => "forwarded",
        SubmitOrigin::Fallback => "fallback",
    }
}

fn status_label(s: SubmitStatus) -> &'static str {
    match s {
        SubmitStatus::Accepted => "accepted",
        SubmitStatus::AlreadyPending => "already_pending",
        SubmitStatus::AlreadyInChain => "already_in_chain",
        SubmitStatus::Conflict => "conflict",
        SubmitStatus::Refused => "refused",
    }
}
