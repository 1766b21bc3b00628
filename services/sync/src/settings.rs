//! Sync's settings (flags and environment), checked at start.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use uwl_runtime::{millis, CommonSettings};

#[derive(Parser, Debug, Clone)]
#[command(name = "uwl-sync", about = "Owns a node's chain: serves it, accepts blocks, pulls from peers, replaces on forks")]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonSettings,
    /// Directory of this node's stores.
    #[arg(long, env = "DATA_DIR", default_value = "/data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "GENESIS_FILE", default_value = "/config/genesis.json")]
    pub genesis_file: PathBuf,
    /// Nodes to pull from (default: every validator but this node).
    #[arg(long, env = "PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Pull from every peer this often even without announcements (seed: 5-10 s).
    #[arg(long = "pull-interval-ms", env = "PULL_INTERVAL_MS", default_value = "5000", value_parser = millis)]
    pub pull_interval: Duration,
    /// Announce the tip this often even when it did not change (freshness).
    #[arg(long = "announce-interval-ms", env = "ANNOUNCE_INTERVAL_MS", default_value = "1000", value_parser = millis)]
    pub announce_interval: Duration,
    /// Timeout of one request to a peer's sync.
    #[arg(long = "peer-timeout-ms", env = "PEER_TIMEOUT_MS", default_value = "2000", value_parser = millis)]
    pub peer_timeout: Duration,
}

impl Settings {
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.pull_interval >= Duration::from_millis(100), "PULL_INTERVAL_MS must be at least 100");
        anyhow::ensure!(self.announce_interval >= Duration::from_millis(50), "ANNOUNCE_INTERVAL_MS must be at least 50");
        anyhow::ensure!(self.peer_timeout >= Duration::from_millis(10), "PEER_TIMEOUT_MS must be at least 10");
        Ok(())
    }
}
