//! Settings every node service takes.

use std::net::SocketAddr;

/// Settings every node service takes.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonSettings {
    /// This node's id: a validator's `node_id` in the genesis file, or a follower's name.
    #[arg(long, env = "NODE_ID")]
    pub node_id: String,
    /// This site's NATS server (a node's services talk to their own site only).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Admin HTTP address serving this service's /metrics and /health.
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9100")]
    pub admin_addr: SocketAddr,
}


/// Parses a duration given in milliseconds (the `*_MS` settings), so a
/// setting is a `Duration` from the start and never converted at use.
pub fn millis(value: &str) -> Result<std::time::Duration, String> {
    value.trim().parse::<u64>().map(std::time::Duration::from_millis).map_err(|e| format!("{value:?} is not a whole number of milliseconds: {e}"))
}
