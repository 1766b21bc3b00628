//! Every NATS subject of the system. A node's services are addressed by
//! node id; NATS permissions (see `nats/`) are written against these shapes.

/// Sync's read-only queries (tip, blocks, balances, receipts, identities, stats).
pub fn sync_read(node: &str) -> String {
    format!("uwl.sync.{node}.read")
}

/// Blocks from the node's own miner.
pub fn sync_append(node: &str) -> String {
    format!("uwl.sync.{node}.append")
}

/// Chain-replaced events from sync's outbox, fetched and acknowledged by the node's miner.
pub fn sync_events(node: &str) -> String {
    format!("uwl.sync.{node}.events")
}

/// A hint published after a replacement: fetch the events now.
pub fn sync_replaced(node: &str) -> String {
    format!("uwl.sync.{node}.replaced")
}

/// Tip announcements of every node's sync.
pub const TIPS: &str = "uwl.chain.tips";

/// Pairs offered to a miner (the leader is reached on its own node's subject).
pub fn miner_submit(node: &str) -> String {
    format!("uwl.miner.{node}.submit")
}

/// Pending pairs replicated from peer miners.
pub fn miner_replicate(node: &str) -> String {
    format!("uwl.miner.{node}.replicate")
}

/// Miner read-only queries (pending, receipt status, stats).
pub fn miner_read(node: &str) -> String {
    format!("uwl.miner.{node}.read")
}

/// Result verification, served by every verifier in [`VERIFY_QUEUE`].
pub const VERIFY: &str = "uwl.verify";
pub const VERIFY_QUEUE: &str = "verifiers";

/// The cluster view of the metrics service (Prometheus text).
pub const METRICS_CLUSTER: &str = "uwl.metrics.cluster";

/// Counters every ingest instance publishes for the cluster view.
pub const INGEST_REPORTS: &str = "uwl.metrics.ingest";
