//! The miner's state: one owner of the node's mempool (used off the async
//! runtime), its view of the tip, its peers; and its read queries.

use crate::accept::AcceptJob;
use crate::metrics::Metrics;
use crate::Settings;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, watch, Notify};
use uwl_bus::proto::*;
use uwl_bus::{Answer, Bus, BusError, DownMarks, RemoteError, Request, RequestId};
use uwl_ledger::{Clock, Genesis, Identity, Landed, NodeKey, SystemClock, TipInfo};
use uwl_store::Mempool;

/// Most identities in one look-up request to sync.
const CONTAINS_CHUNK: usize = 1_000;

#[derive(Debug)]
pub(crate) struct Miner {
    pub(crate) id: String,
    pub(crate) key: NodeKey,
    pub(crate) genesis: Genesis,
    pub(crate) validator: bool,
    pub(crate) bus: Bus,
    pub(crate) mempool: Mutex<Mempool>,
    pub(crate) peers: Vec<String>,
    pub(crate) down: DownMarks,
    pub(crate) wake: Notify,
    /// Held by each mining attempt (from reading its candidates to taking
    /// what sync answered out of the mempool) and by each reconciliation:
    /// a chain-replaced event is never applied between sync's answer to a
    /// block and the mempool update that answer asks for, which would drop
    /// a pair the event had just found pending and so left alone.
    pub(crate) chain_turn: tokio::sync::Mutex<()>,
    pub(crate) tip: watch::Sender<TipInfo>,
    pub(crate) accept: mpsc::Sender<AcceptJob>,
    pub(crate) metrics: Metrics,
    pub(crate) settings: Settings,
}

impl Miner {
    pub(crate) fn now(&self) -> u64 {
        SystemClock.now_ms()
    }

    pub(crate) async fn with_mempool<T: Send + 'static>(
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

    /// Asks this node's sync (under the sync timeout).
    pub(crate) async fn sync<Q: Request>(&self, q: Q, rid: &RequestId) -> Result<Q::Reply, BusError> {
        self.bus.ask(&self.id, q, self.settings.sync_timeout, rid).await
    }

    /// Where each identity landed in this node's chain, and the tip.
    pub(crate) async fn contains(&self, ids: &[Identity], rid: &RequestId) -> Result<(HashMap<Identity, Landed>, TipInfo), BusError> {
        let mut out = HashMap::new();
        let mut tip = *self.tip.borrow();
        let budget = self.bus.reply_budget();
        let mut rest = ids;
        while !rest.is_empty() {
            let fit = fitting(&rest[..rest.len().min(CONTAINS_CHUNK)], budget).map_err(|e| BusError::Protocol(format!("identities do not encode: {e}")))?;
            let (chunk, tail) = rest.split_at(fit);
            rest = tail;
            let reply = self.sync(ContainsQuery { ids: chunk.to_vec() }, rid).await?;
            tip = reply.tip;
            out.extend(chunk.iter().cloned().zip(reply.landed).filter_map(|(id, l)| l.map(|l| (id, l))));
        }
        self.observe_tip(tip);
        Ok((out, tip))
    }

    pub(crate) fn observe_tip(&self, tip: TipInfo) {
        self.tip.send_if_modified(|t| {
            let changed = *t != tip;
            *t = tip;
            changed
        });
    }

    /// A read query; each variant answered with its own reply type.
    pub(crate) async fn read(self: Arc<Self>, q: MinerQuery) -> Result<Answer, RemoteError> {
        let now = self.now();
        let (requeued, blocks, pairs, stalls) =
            (self.metrics.requeued.get(), self.metrics.blocks_mined.get(), self.metrics.pairs_mined.get(), self.bus.stalls());
        let id = self.id.clone();
        self.with_mempool(move |m| {
            Ok(match q {
                MinerQuery::Client(q) => {
                    let limit = u64::from(q.limit.clamp(1, PAGE_MAX));
                    let mut pending = m.pending_for_client(&q.client_id, q.pending_after.as_ref(), limit + 1)?;
                    let mut orphaned = m.orphaned_for_client(&q.client_id, q.orphaned_after.as_ref(), limit + 1)?;
                    let (more_pending, more_orphaned) = (pending.len() as u64 > limit, orphaned.len() as u64 > limit);
                    pending.truncate(limit as usize);
                    orphaned.truncate(limit as usize);
                    q.answer(&ClientPending { pending, orphaned, more_pending, more_orphaned })
                }
                MinerQuery::Receipt(q) => q.answer(&MinerReceipt {
                    pending: m.by_receipt(&q.receipt_id)?,
                    superseded_by: m.superseded_by(&q.receipt_id)?,
                    orphaned: m.orphaned_by_receipt(&q.receipt_id)?,
                }),
                MinerQuery::Stats(q) => q.answer(&MinerStats {
                    node_id: id,
                    pending: m.len()?,
                    oldest_pending_age_ms: m.oldest_received_ms()?.map(|t| now.saturating_sub(t)),
                    requeued_total: requeued,
                    blocks_mined_total: blocks,
                    pairs_mined_total: pairs,
                    bus_stalls_total: stalls,
                    set_aside: m
                        .set_aside_records(SET_ASIDE_SHOWN)?
                        .into_iter()
                        .map(|(receipt_id, reason)| SetAside { receipt_id, reason })
                        .collect(),
                }),
            })
        })
        .await?
    }
}
