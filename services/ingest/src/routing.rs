//! Where a submission goes: a fresh tip view, the leader it implies, the
//! forward to the leader's miner under a timeout, and the fallback to this
//! node's miner (option C), or 503 (option A, followers).

use crate::error::ApiError;
use crate::State;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use uwl_bus::proto::*;
use uwl_bus::{subjects, BusError, RequestId};
use uwl_ledger::{current_leader, is_better, Clock, SystemClock, TipInfo, TxPair};

/// The block strategies of the spec: one code path, one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// Option C (default): forward to the leader, mine here if it does not answer.
    Hybrid,
    /// Option A: forward only; 503 while no leader answers.
    Leader,
    /// Option B: every node mines what it receives.
    Any,
}

/// The latest tip heard from each node, and when.
#[derive(Debug, Default)]
pub struct TipView {
    tips: Mutex<HashMap<String, (TipInfo, Instant)>>,
    /// Nodes whose miner timed out: skipped until the instant.
    down: Mutex<HashMap<String, Instant>>,
}

impl TipView {
    /// Records a tip; true if it changed.
    pub fn heard(&self, node: &str, tip: TipInfo) -> bool {
        let mut tips = self.tips.lock().unwrap_or_else(PoisonError::into_inner);
        let old = tips.insert(node.to_owned(), (tip, Instant::now()));
        old.map(|(t, _)| t) != Some(tip)
    }

    pub fn last_heard(&self, node: &str) -> Option<(TipInfo, Instant)> {
        self.tips.lock().unwrap_or_else(PoisonError::into_inner).get(node).copied()
    }

    fn best_since(&self, since: Instant) -> Option<TipInfo> {
        let tips = self.tips.lock().unwrap_or_else(PoisonError::into_inner);
        tips.values().filter(|(_, at)| *at >= since).map(|(t, _)| *t).reduce(|a, b| if is_better(&b, &a) { b } else { a })
    }

    pub fn mark_down(&self, node: &str, for_ms: u64) {
        let until = Instant::now() + Duration::from_millis(for_ms);
        self.down.lock().unwrap_or_else(PoisonError::into_inner).insert(node.to_owned(), until);
    }

    pub fn is_down(&self, node: &str) -> bool {
        let down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        down.get(node).is_some_and(|until| Instant::now() < *until)
    }
}

/// How a submission was placed.
#[derive(Debug)]
pub struct Routed {
    pub reply: SubmitReply,
    pub leader: String,
    pub fallback: bool,
}

impl State {
    /// The best tip of the network as far as this node can tell right now:
    /// this node's own tip `own` (read from its sync during this request, so
    /// ingest and miner judge the leader on the same tip), announcements of
    /// the others heard within the freshness bound, and for every node not
    /// heard from within it, one short tip request (seed section 5).
    pub async fn fresh_tip(&self, own: TipInfo, rid: &RequestId) -> Result<TipInfo, ApiError> {
        let me = self.settings.common.node_id.as_str();
        self.tips.heard(me, own);
        let fresh = Duration::from_millis(self.settings.tip_fresh_ms);
        let window_start = Instant::now().checked_sub(fresh).unwrap_or_else(Instant::now);
        let ask: Vec<&String> = self
            .nodes
            .iter()
            .filter(|n| self.tips.last_heard(n).is_none_or(|(_, at)| at < window_start))
            .collect();
        let timeout = Duration::from_millis(self.settings.tip_query_timeout_ms);
        let asks = ask.iter().map(|n| async move {
            let r: Result<TipReply, BusError> = self.bus.request(subjects::sync_read(n), &SyncQuery::Tip, timeout, rid).await;
            (n, r)
        });
        for (n, r) in futures::future::join_all(asks).await {
            if let Ok(r) = r {
                self.tips.heard(n, r.tip);
            }
        }
        self.tips
            .best_since(window_start)
            .ok_or_else(|| ApiError::unavailable("no node's chain answers: cannot choose a leader"))
    }

    async fn ask_miner(&self, node: &str, pair: &TxPair, origin: SubmitOrigin, rid: &RequestId) -> Result<SubmitReply, BusError> {
        let req = SubmitRequest { pair: pair.clone(), origin, wait_block_ms: 0 };
        let miner = self.submits.get(node).ok_or_else(|| BusError::NoResponders(subjects::miner_submit(node)))?;
        miner.call(req, rid).await?.map_err(BusError::Remote)
    }

    /// Places a verified pair per the strategy (SPEC sections 1 and 2).
    /// `own_tip`: this node's tip as its sync gave it during this request.
    pub async fn route(&self, pair: &TxPair, own_tip: TipInfo, rid: &RequestId) -> Result<Routed, ApiError> {
        let me = self.settings.common.node_id.as_str();
        let tip = self.fresh_tip(own_tip, rid).await?;
        let leader = current_leader(&self.genesis, &tip, SystemClock.now_ms()).node_id.clone();
        let local = |origin| async move {
            self.ask_miner(me, pair, origin, rid).await.map_err(|e| ApiError::unavailable(format!("this node's miner: {e}")))
        };
        if self.settings.strategy == Strategy::Any {
            let reply = local(SubmitOrigin::Fallback).await?;
            return Ok(Routed { reply, leader, fallback: false });
        }
        if leader == me {
            let reply = local(SubmitOrigin::Local).await?;
            return Ok(Routed { reply, leader, fallback: false });
        }
        if !self.tips.is_down(&leader) {
            for attempt in 0..=self.settings.forward_retries {
                match self.ask_miner(&leader, pair, SubmitOrigin::Forwarded, rid).await {
                    Ok(reply) => {
                        self.metrics.forwards.with_label_values(&["ok"]).inc();
                        return Ok(Routed { reply, leader, fallback: false });
                    }
                    Err(e) => {
                        self.metrics.forwards.with_label_values(&[e.label()]).inc();
                        match e {
                            BusError::NoResponders(_) => break,
                            BusError::TimedOut { .. } => {
                                warn!(leader, "leader's miner timed out: marked down for {} ms", self.settings.leader_down_ms);
                                self.tips.mark_down(&leader, self.settings.leader_down_ms);
                                break;
                            }
                            BusError::Remote(r) if r.code == "bad_request" => {
                                return Err(ApiError::BadRequest(r.message));
                            }
                            other => {
                                warn!(leader, attempt, error = %other, "forward failed");
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                }
            }
        }
        if self.settings.strategy == Strategy::Leader || !self.validator {
            let retry = self.genesis.params.t_round_ms.div_ceil(1_000).max(1);
            return Err(ApiError::Unavailable { message: format!("the leader {leader} does not answer"), retry_after_s: retry });
        }
        info!(leader, "leader unavailable: mining on this node");
        self.metrics.forwards.with_label_values(&["fallback_local"]).inc();
        let reply = local(SubmitOrigin::Fallback).await?;
        Ok(Routed { reply, leader, fallback: true })
    }

    /// Waits (bounded) until `pair` is in a block of `node`'s chain. A
    /// waiter asks again when that node's tip changes (announcements of
    /// other nodes wake it but cost no look-up); the look-ups are coalesced.
    pub async fn wait_for_block(&self, node: &str, pair: &TxPair, wait: Duration, rid: &RequestId) -> Option<BlockRef> {
        let deadline = tokio::time::Instant::now() + wait;
        let (id, receipt) = (pair.identity(), pair.receipt_id());
        let mut looked_at: Option<TipInfo> = None;
        loop {
            let changed = self.tip_changed.notified();
            let heard = self.tips.last_heard(node).map(|(t, _)| t);
            if looked_at.is_none() || heard != looked_at {
                if let Ok((landed, tip)) = self.landed_in(node, id.clone(), rid).await {
                    match landed {
                        Some(l) if l.receipt_id == receipt => {
                            let confirmations = tip.index.saturating_sub(l.block_index) + 1;
                            return Some(BlockRef { index: l.block_index, hash: l.block_hash, confirmations });
                        }
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
