//! The miner's settings (flags and environment), checked at start.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use uwl_runtime::{millis, CommonSettings};

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
    #[arg(long = "sync-timeout-ms", env = "SYNC_TIMEOUT_MS", default_value = "2000", value_parser = millis)]
    pub sync_timeout: Duration,
    /// Bound on replicating an accepted batch to peers before acknowledging.
    #[arg(long = "replicate-timeout-ms", env = "REPLICATE_TIMEOUT_MS", default_value = "300", value_parser = millis)]
    pub replicate_timeout: Duration,
    /// After a request to a peer times out, skip that peer this long.
    #[arg(long = "peer-down-ms", env = "PEER_DOWN_MS", default_value = "5000", value_parser = millis)]
    pub peer_down: Duration,
    /// How often the leader checks for pending pairs to mine.
    #[arg(long = "mine-interval-ms", env = "MINE_INTERVAL_MS", default_value = "20", value_parser = millis)]
    pub mine_interval: Duration,
    /// Shortest time from the start of one block of this miner to the start
    /// of its next: under a steady trickle a block gathers what arrived
    /// meanwhile instead of carrying one or two pairs (every block costs a
    /// signature, a durable append on every node, announcements and a
    /// pull, whatever it carries). 0: back to back.
    #[arg(long = "block-interval-ms", env = "BLOCK_INTERVAL_MS", default_value = "10", value_parser = millis)]
    pub block_interval: Duration,
    /// Mine only once the oldest pending pair has waited this long: trades
    /// latency for fuller blocks (0: mine at once).
    #[arg(long = "min-pending-age-ms", env = "MIN_PENDING_AGE_MS", default_value = "0", value_parser = millis)]
    pub min_pending_age: Duration,
    /// Level-triggered reconciliation period.
    #[arg(long = "reconcile-interval-ms", env = "RECONCILE_INTERVAL_MS", default_value = "1000", value_parser = millis)]
    pub reconcile_interval: Duration,
    /// Anti-entropy period: pending pairs are pushed to peers again.
    #[arg(long = "anti-entropy-interval-ms", env = "ANTI_ENTROPY_INTERVAL_MS", default_value = "5000", value_parser = millis)]
    pub anti_entropy_interval: Duration,
    /// Longest wait for a block a submitter may ask for.
    #[arg(long = "max-wait-block-ms", env = "MAX_WAIT_BLOCK_MS", default_value = "5000", value_parser = millis)]
    pub max_wait_block: Duration,
}

impl Settings {
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        let ms = Duration::from_millis;
        anyhow::ensure!(self.mine_interval >= ms(1), "MINE_INTERVAL_MS must be at least 1");
        anyhow::ensure!(self.replicate_timeout >= ms(1), "REPLICATE_TIMEOUT_MS must be at least 1");
        anyhow::ensure!(self.sync_timeout >= ms(1), "SYNC_TIMEOUT_MS must be at least 1");
        anyhow::ensure!(self.reconcile_interval >= ms(10), "RECONCILE_INTERVAL_MS must be at least 10");
        anyhow::ensure!(self.anti_entropy_interval >= ms(100), "ANTI_ENTROPY_INTERVAL_MS must be at least 100");
        Ok(())
    }
}
