//! Sync's own metrics (its explicit registry, served on its admin port).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub registry: Registry,
    pub tip_index: IntGauge,
    pub blocks_appended: IntCounterVec,
    pub replacements: IntCounter,
    pub replacement_depth: Histogram,
    pub orphaned_blocks: IntCounterVec,
    pub pulls: IntCounterVec,
    pub startup_blocks_read: IntGauge,
}

impl Metrics {
    pub(crate) fn new(node_id: &str) -> prometheus::Result<Self> {
        let registry = uwl_runtime::registry(node_id);
        let m = Self {
            tip_index: IntGauge::new("sync_tip_index", "Index of this node's chain tip")?,
            blocks_appended: IntCounterVec::new(
                Opts::new("sync_blocks_appended_total", "Blocks added to the chain, by source (miner, peer)"),
                &["source"],
            )?,
            replacements: IntCounter::new("sync_chain_replacements_total", "Chain replacements (forks lost)")?,
            replacement_depth: Histogram::with_opts(
                HistogramOpts::new("sync_replacement_depth", "Blocks orphaned per replacement")
                    .buckets(vec![1.0, 2.0, 3.0, 5.0, 10.0, 50.0]),
            )?,
            orphaned_blocks: IntCounterVec::new(
                Opts::new("sync_orphaned_blocks_total", "Blocks orphaned, by creator"),
                &["creator_node_id"],
            )?,
            pulls: IntCounterVec::new(Opts::new("sync_pulls_total", "Pulls from peers, by result"), &["result"])?,
            startup_blocks_read: IntGauge::new("sync_startup_blocks_read", "Blocks decoded when the store opened")?,
            registry,
        };
        m.registry.register(Box::new(m.tip_index.clone()))?;
        m.registry.register(Box::new(m.blocks_appended.clone()))?;
        m.registry.register(Box::new(m.replacements.clone()))?;
        m.registry.register(Box::new(m.replacement_depth.clone()))?;
        m.registry.register(Box::new(m.orphaned_blocks.clone()))?;
        m.registry.register(Box::new(m.pulls.clone()))?;
        m.registry.register(Box::new(m.startup_blocks_read.clone()))?;
        Ok(m)
    }
}
