//! The miner's own metrics (its explicit registry, served on its admin port).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub registry: Registry,
    pub pending: IntGauge,
    pub oldest_pending_age_seconds: IntGauge,
    pub requeued: IntCounter,
    pub blocks_mined: IntCounter,
    pub pairs_mined: IntCounter,
    pub block_pairs: Histogram,
    pub submissions: IntCounterVec,
    pub replications: IntCounterVec,
    pub accept_batch: Histogram,
    pub block_failures: IntCounterVec,
    pub set_aside: IntCounter,
}

impl Metrics {
    pub(crate) fn new(node_id: &str) -> prometheus::Result<Self> {
        let registry = uwl_runtime::registry(node_id);
        let sizes = vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];
        let m = Self {
            pending: IntGauge::new("miner_pending_pairs", "Pairs pending in this node's mempool")?,
            oldest_pending_age_seconds: IntGauge::new(
                "miner_oldest_pending_age_seconds",
                "Age of the oldest pending pair (0 when none)",
            )?,
            requeued: IntCounter::new("miner_requeued_total", "Pairs re-queued from orphaned blocks")?,
            blocks_mined: IntCounter::new("miner_blocks_mined_total", "Blocks this miner created and sync stored")?,
            pairs_mined: IntCounter::new("miner_pairs_mined_total", "Pairs in blocks this miner created")?,
            block_pairs: Histogram::with_opts(
                HistogramOpts::new("miner_block_pairs", "Pairs per mined block").buckets(sizes.clone()),
            )?,
            submissions: IntCounterVec::new(
                Opts::new("miner_submissions_total", "Submissions by origin and status"),
                &["origin", "status"],
            )?,
            replications: IntCounterVec::new(
                Opts::new("miner_replications_total", "Replication requests to peers by result"),
                &["result"],
            )?,
            accept_batch: Histogram::with_opts(
                HistogramOpts::new("miner_accept_batch_pairs", "Pairs made durable per mempool transaction")
                    .buckets(sizes),
            )?,
            block_failures: IntCounterVec::new(
                Opts::new("miner_block_failures_total", "Blocks this miner could not build or have stored, by stage: build (reading the mempool), append (sync did not answer), invalid_pairs (pairs set aside), invalid, mempool_update (after the block was stored)"),
                &["stage"],
            )?,
            set_aside: IntCounter::new("miner_pairs_set_aside_total", "Pending pairs set aside because a block carrying them was invalid")?,
            registry,
        };
        m.registry.register(Box::new(m.pending.clone()))?;
        m.registry.register(Box::new(m.oldest_pending_age_seconds.clone()))?;
        m.registry.register(Box::new(m.requeued.clone()))?;
        m.registry.register(Box::new(m.blocks_mined.clone()))?;
        m.registry.register(Box::new(m.pairs_mined.clone()))?;
        m.registry.register(Box::new(m.block_pairs.clone()))?;
        m.registry.register(Box::new(m.submissions.clone()))?;
        m.registry.register(Box::new(m.replications.clone()))?;
        m.registry.register(Box::new(m.accept_batch.clone()))?;
        m.registry.register(Box::new(m.block_failures.clone()))?;
        m.registry.register(Box::new(m.set_aside.clone()))?;
        Ok(m)
    }
}
