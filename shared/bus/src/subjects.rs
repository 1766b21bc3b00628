//! Every NATS subject of the system. A node's services are addressed by
//! node id; NATS permissions (`crate::permissions`, which generates
//! `nats/users.conf`) are derived from these shapes. `*` for a node is
//! every node.

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

/// Operators' commands to `node`'s sync (a copy of its chain store, asked
/// by the node's own miner while it holds its chain turn).
pub fn sync_admin(node: &str) -> String {
    format!("uwl.sync.{node}.admin")
}

/// Operators' commands to `node`'s miner (an online backup of the node).
pub fn miner_admin(node: &str) -> String {
    format!("uwl.miner.{node}.admin")
}

/// A hint published after a replacement: fetch the events now.
pub fn sync_replaced(node: &str) -> String {
    format!("uwl.sync.{node}.replaced")
}

/// Every node, in a subject pattern (a subscription to all nodes' subjects).
pub const ANY_NODE: &str = "*";

/// Tip announcements of `node`'s sync (only that sync may publish there).
pub fn tips(node: &str) -> String {
    format!("uwl.chain.tips.{node}")
}

/// What each block `node`'s sync applies carries (only that sync may
/// publish there): submissions waiting for a block are woken by it.
pub fn landed(node: &str) -> String {
    format!("uwl.chain.landed.{node}")
}

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

/// Result verification for `node`'s ingest, served by that node's verifiers
/// in [`VERIFY_QUEUE`]. Site-local: NATS (2.9) hands a queue group's message
/// to a member behind a route as readily as to a local one, so one subject
/// for the cluster sent half the verifications to the other site, and
/// during a partition into a dead route until it was noticed (~30 s).
pub fn verify(node: &str) -> String {
    format!("uwl.verify.{node}")
}
pub const VERIFY_QUEUE: &str = "verifiers";

/// The cluster view of the metrics service (Prometheus text).
pub const METRICS_CLUSTER: &str = "uwl.metrics.cluster";

/// Counters every ingest instance publishes for the cluster view.
pub const INGEST_REPORTS: &str = "uwl.metrics.ingest";
