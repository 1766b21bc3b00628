//! Where a submission goes: a fresh tip view, the leader it implies, the
//! forward to the leader's miner under a timeout, and the fallback to this
//! node's miner (option C), or 503 (option A, followers).

use crate::error::ApiError;
use crate::state::Ingest;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use uwl_bus::proto::*;
use uwl_bus::{BusError, ErrorCode, Message, RequestId};
use uwl_ledger::{current_leader, is_better, Clock, SystemClock, TipInfo, TxPair};

/// The block strategies (README: Architecture): one code path, one setting.
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
pub(crate) struct TipView {
    tips: Mutex<HashMap<String, (TipInfo, Instant)>>,
}

impl TipView {
    /// Records a tip; true if it changed.
    pub(crate) fn heard(&self, node: &str, tip: TipInfo) -> bool {
        let mut tips = self.tips.lock().unwrap_or_else(PoisonError::into_inner);
        let old = tips.insert(node.to_owned(), (tip, Instant::now()));
        old.map(|(t, _)| t) != Some(tip)
    }

    pub(crate) fn last_heard(&self, node: &str) -> Option<(TipInfo, Instant)> {
        self.tips.lock().unwrap_or_else(PoisonError::into_inner).get(node).copied()
    }

    fn best_since(&self, since: Instant) -> Option<TipInfo> {
        let tips = self.tips.lock().unwrap_or_else(PoisonError::into_inner);
        tips.values().filter(|(_, at)| *at >= since).map(|(t, _)| *t).reduce(|a, b| if is_better(&b, &a) { b } else { a })
    }

}

/// How a submission was placed.
#[derive(Debug)]
pub(crate) struct Routed {
    pub(crate) reply: SubmitReply,
    pub(crate) leader: String,
    pub(crate) fallback: bool,
}

impl Ingest {
    /// The best tip of the network as far as this node can tell right now:
    /// the tip announcements heard within the freshness bound, and for
    /// every node not heard from within it, one short tip request.
    async fn fresh_tip(&self, rid: &RequestId) -> Result<TipInfo, ApiError> {
        let window_start = Instant::now().checked_sub(self.settings.tip_fresh).unwrap_or_else(Instant::now);
        let ask: Vec<&String> = self
            .nodes
            .iter()
            .filter(|n| self.tips.last_heard(n).is_none_or(|(_, at)| at < window_start))
            .collect();
        let timeout = self.settings.tip_query_timeout;
        let asks = ask.iter().map(|n| async move { (n, self.bus.ask(n, TipQuery {}, timeout, rid).await) });
        for (n, r) in futures::future::join_all(asks).await {
            if let Ok(r) = r {
                self.tips.heard(n, r.tip);
            }
        }
        self.tips
            .best_since(window_start)
            .ok_or_else(|| ApiError::unavailable("no node's chain answers: cannot choose a leader"))
    }

    async fn ask_miner(&self, node: &str, pair: &TxPair, verified: bool, origin: SubmitOrigin, rid: &RequestId) -> Result<SubmitReply, BusError> {
        let req = SubmitRequest { pair: pair.clone(), origin, wait_block_ms: 0, verified };
        let miner = self.submits.get(node).ok_or_else(|| BusError::NoResponders(SubmitBatch::subject(node)))?;
        miner.call(req, rid).await?.map_err(BusError::Remote)
    }

    /// Takes a pair to the miner the strategy names (README:
    /// Architecture), which answers its status and stores it if `verified`.
    pub(crate) async fn route(&self, pair: &TxPair, verified: bool, rid: &RequestId) -> Result<Routed, ApiError> {
        let me = self.settings.common.node_id.as_str();
        let tip = self.fresh_tip(rid).await?;
        let leader = current_leader(&self.genesis, &tip, SystemClock.now_ms()).node_id.clone();
        let local = |origin| async move {
            self.ask_miner(me, pair, verified, origin, rid).await.map_err(|e| ApiError::unavailable(format!("this node's miner: {e}")))
        };
        if self.settings.strategy == Strategy::Any {
            let reply = local(SubmitOrigin::Fallback).await?;
            return Ok(Routed { reply, leader, fallback: false });
        }
        if leader == me {
            let reply = local(SubmitOrigin::Local).await?;
            return Ok(Routed { reply, leader, fallback: false });
        }
        if !self.leaders_down.is_down(&leader) {
            for attempt in 0..=self.settings.forward_retries {
                match self.ask_miner(&leader, pair, verified, SubmitOrigin::Forwarded, rid).await {
                    Ok(reply) => {
                        self.metrics.forwards.with_label_values(&["ok"]).inc();
                        return Ok(Routed { reply, leader, fallback: false });
                    }
                    Err(e) => {
                        self.metrics.forwards.with_label_values(&[e.label()]).inc();
                        match e {
                            BusError::NoResponders(_) => break,
                            BusError::TimedOut { .. } => {
                                warn!(leader, "leader's miner timed out: marked down for {:?}", self.settings.leader_down);
                                self.leaders_down.mark_down(&leader, self.settings.leader_down);
                                break;
                            }
                            BusError::Remote(r) if r.code == ErrorCode::BadRequest => {
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
            // Nothing is mined here, but a pair this node already holds (in
            // its chain or mempool) is still answered: asked as unverified,
            // the miner stores nothing new.
            if self.validator {
                if let Ok(reply) = self.ask_miner(me, pair, false, SubmitOrigin::Local, rid).await {
                    if reply.status != SubmitStatus::Refused {
                        return Ok(Routed { reply, leader, fallback: false });
                    }
                }
            }
            let retry = self.genesis.params.t_round_ms.div_ceil(1_000).max(1);
            return Err(ApiError::Unavailable { message: format!("the leader {leader} does not answer"), retry_after_s: retry });
        }
        info!(leader, "leader unavailable: mining on this node");
        self.metrics.forwards.with_label_values(&["fallback_local"]).inc();
        let reply = local(SubmitOrigin::Fallback).await?;
        Ok(Routed { reply, leader, fallback: true })
    }
}
