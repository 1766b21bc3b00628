//! Pulling from peers: a locator so only blocks after the fork point
//! travel, fork choice on what arrives, the replacement and its hint.

use crate::node::Node;
use std::sync::Arc;
use tracing::{debug, info, warn};
use uwl_bus::proto::*;
use uwl_bus::{BusError, RemoteError, RequestId};
use uwl_ledger::{plan_adoption, AdoptError, Block, BlockError, ForkError, Genesis, Plan, TipInfo};
use uwl_store::{ChainStore, Replaced as Replacement, StoreError};

/// Most blocks a pull accumulates before it judges them.
const MAX_PULL_BLOCKS: usize = 20_000;

#[derive(Debug)]
enum Step {
    /// Applied; the tip after; what each applied block carries.
    Adopted(Box<Replacement>, TipInfo, Vec<NewBlock>),
    Known,
    NotBetter,
    Rejected(AdoptError),
}

/// Judges `batch` (a peer's blocks after our common point) against `store`
/// and adopts it when it wins. Errors are the store's own failures only.
fn judge(s: &mut ChainStore, batch: &[Block], genesis: &Genesis, now: u64, me: &str) -> uwl_store::Result<Step> {
    let slice = s.slice_for(batch)?;
    Ok(match plan_adoption(&slice, batch, genesis, now) {
        Ok(Plan::Adopt { fork_point, blocks, deferred }) => {
            if let Some(d) = deferred {
                debug!(%d, "part of the candidate deferred");
            }
            match s.apply(fork_point.index, &blocks, now) {
                Ok(r) => {
                    let tip = s.tip().tip_info();
                    let new = blocks.iter().map(|b| NewBlock::of(me, b, tip)).collect();
                    Step::Adopted(Box::new(r), tip, new)
                }
                // valid block by block, but it would push a balance past what
                // a store holds: invalid on every node, like any other rule
                Err(StoreError::BalanceOverflow { index, client_id }) => {
                    Step::Rejected(AdoptError::Invalid(ForkError { index, error: BlockError::BalanceOverflow(client_id) }))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Plan::Known) => Step::Known,
        Ok(Plan::NotBetter { .. }) => Step::NotBetter,
        Err(e) => Step::Rejected(e),
    })
}

impl Node {
    /// Locator: our tip, then exponentially older blocks, then block 0.
    pub(crate) async fn locator(self: &Arc<Self>) -> Result<Vec<uwl_ledger::Hash32>, RemoteError> {
        self.with_store(|s| {
            let tip = s.tip().index;
            let mut idx = Vec::new();
            let mut step = 1;
            let mut i = tip;
            while i > 0 {
                idx.push(i);
                i = i.saturating_sub(step);
                if idx.len() > 8 {
                    step *= 2;
                }
            }
            idx.push(0);
            s.hashes_at(&idx)
        })
        .await?
        .map_err(RemoteError::internal)
    }

    /// Pulls `peer`'s blocks after our common point and adopts them if they win.
    pub(crate) async fn pull(self: &Arc<Self>, peer: &str) -> Result<&'static str, BusError> {
        let rid = RequestId::new();
        let timeout = self.settings.peer_timeout;
        let mut locator = self.locator().await.map_err(BusError::Remote)?;
        let mut incoming: Vec<Block> = Vec::new();
        let mut result = "known";
        loop {
            let q = BlocksQuery { locator: locator.clone(), from: 1, limit: 500 };
            let reply = self.bus.ask(peer, q, timeout, &rid).await?;
            let Some(last) = reply.blocks.last().cloned() else { break };
            let more = last.index < reply.tip.index;
            incoming.extend(reply.blocks);
            let batch = incoming.clone();
            let (genesis, now, me) = (self.genesis.clone(), self.now(), self.id.clone());
            let step = self
                .with_store(move |s| judge(s, &batch, &genesis, now, &me))
                .await
                .map_err(BusError::Remote)?
                .map_err(|e| BusError::Remote(RemoteError::internal(e)))?;
            match step {
                Step::Adopted(replaced, tip, new) => {
                    result = self.adopted(peer, *replaced, tip, incoming.len()).await;
                    self.announce_blocks(&new).await;
                    incoming.clear();
                }
                Step::Known => incoming.clear(),
                Step::NotBetter => result = "not_better",
                Step::Rejected(AdoptError::Deferred(e)) => {
                    debug!(peer, %e, "candidate deferred");
                    return Ok("deferred");
                }
                Step::Rejected(e) => {
                    warn!(peer, %e, "candidate rejected");
                    return Ok("rejected");
                }
            }
            if !more || incoming.len() > MAX_PULL_BLOCKS {
                break;
            }
            locator = vec![last.hash];
        }
        Ok(result)
    }

    async fn adopted(self: &Arc<Self>, peer: &str, replaced: Replacement, tip: TipInfo, received: usize) -> &'static str {
        self.set_tip(tip);
        self.metrics.blocks_appended.with_label_values(&["peer"]).inc_by(received as u64);
        if replaced.orphaned.is_empty() {
            return "extended";
        }
        let depth = replaced.orphaned.len();
        self.metrics.replacements.inc();
        self.metrics.replacement_depth.observe(depth as f64);
        for b in &replaced.orphaned {
            self.metrics.orphaned_blocks.with_label_values(&[&b.creator_node_id]).inc();
        }
        if let Some((seq, ev)) = &replaced.event {
            info!(
                peer,
                fork_point = ev.fork_point.index,
                depth,
                old_tip = ev.old_tip.index,
                new_tip = ev.new_tip.index,
                event = seq,
                "chain replaced"
            );
            if let Err(e) = self.bus.publish(&self.id, &Replaced(*seq)).await {
                warn!(%e, "replacement hint not published (the miner polls the outbox)");
            }
        }
        "replaced"
    }

}

#[cfg(test)]
mod tests {
    use super::*;
    use uwl_ledger::testkit;

    /// A peer's chain whose blocks are each valid (real contracts, a
    /// validator's signature) but whose sum overflows a balance is rejected
    /// as invalid, not left as a store failure retried on every pull.
    #[test]
    fn a_candidate_that_overflows_a_balance_is_rejected() {
        let net = testkit::Net::new(2);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = ChainStore::open(&dir.path().join("chain.sqlite"), &net.genesis).expect("store");
        let max = uwl_ledger::MAX_AMOUNT;
        let h = uwl_ledger::result_hash(&serde_json::json!({"nonce": 1}));
        let pay = |tag: &str| uwl_ledger::TxPair::new("whale", &testkit::contract_id("whale", tag, max), max, h);
        let key = &net.keys[0];
        let b1 = Block::mine(&store.tip().tip_info(), testkit::T0 + 1, key, vec![pay("a")]);
        let b2 = Block::mine(&b1.tip_info(), testkit::T0 + 2, key, vec![pay("b")]);
        let now = testkit::T0 + 3;
        let step = judge(&mut store, std::slice::from_ref(&b1), &net.genesis, now, "node-2").expect("judged");
        assert!(matches!(step, Step::Adopted(..)), "one whale payment fits: {step:?}");
        let step = judge(&mut store, &[b2], &net.genesis, now, "node-2").expect("judged");
        let overflow = AdoptError::Invalid(ForkError { index: 2, error: BlockError::BalanceOverflow("whale".into()) });
        assert!(matches!(&step, Step::Rejected(e) if *e == overflow), "{step:?}");
        assert_eq!(store.tip().index, 1, "nothing of the overflowing block applied");
    }
}
