//! Ingest's settings (flags and environment), checked at start.

use crate::Strategy;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use uwl_ledger::{TaskBounds, TaskSpec};
use uwl_runtime::{millis, CommonSettings};

#[derive(Parser, Debug, Clone)]
#[command(name = "uwl-ingest", about = "HTTP API of a node: auth, tasks, submissions, reads")]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonSettings,
    /// HTTP API address.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    #[arg(long, env = "GENESIS_FILE", default_value = "/config/genesis.json")]
    pub genesis_file: PathBuf,
    /// The issuer key this instance signs API keys and tasks with (secret,
    /// generated at deployment; the genesis must list its public half).
    /// Rotation: point every ingest at a listed successor's file.
    #[arg(long, env = "ISSUER_KEY_FILE", default_value = "/issuer/issuer-1.key")]
    pub issuer_key_file: PathBuf,
    /// Block strategy: hybrid (option C), leader (option A) or any (option B).
    #[arg(long, env = "STRATEGY", value_enum, default_value = "hybrid")]
    pub strategy: Strategy,
    /// Timeout of a forward to the leader's miner: covers its durable accept
    /// (fsync) and replication bound (300 ms by default), not the block.
    #[arg(long = "forward-timeout-ms", env = "FORWARD_TIMEOUT_MS", default_value = "1000", value_parser = millis)]
    pub forward_timeout: Duration,
    /// Retries of a forward answered with a server error before falling back.
    #[arg(long, env = "FORWARD_RETRIES", default_value_t = 1)]
    pub forward_retries: u32,
    /// After a forward times out, skip that leader this long.
    #[arg(long = "leader-down-ms", env = "LEADER_DOWN_MS", default_value = "5000", value_parser = millis)]
    pub leader_down: Duration,
    /// After acknowledging, wait this long for the block before answering.
    #[arg(long = "wait-block-ms", env = "WAIT_BLOCK_MS", default_value = "1000", value_parser = millis)]
    pub wait_block: Duration,
    /// The longest receipt long-poll (`GET /receipt/{id}?wait_ms=`). The
    /// deployment sets it once (deploy/cluster.env) for ingest and nginx,
    /// whose read timeout on the receipt route is derived from it.
    #[arg(long = "max-receipt-wait-ms", env = "MAX_RECEIPT_WAIT_MS", default_value = "30000", value_parser = millis)]
    pub max_receipt_wait: Duration,
    /// A node's tip is fresh if announced within this bound.
    #[arg(long = "tip-fresh-ms", env = "TIP_FRESH_MS", default_value = "3000", value_parser = millis)]
    pub tip_fresh: Duration,
    /// Timeout of the tip request sent to a node that is not fresh.
    #[arg(long = "tip-query-timeout-ms", env = "TIP_QUERY_TIMEOUT_MS", default_value = "300", value_parser = millis)]
    pub tip_query_timeout: Duration,
    /// Timeout of a verification request.
    #[arg(long = "verify-timeout-ms", env = "VERIFY_TIMEOUT_MS", default_value = "2000", value_parser = millis)]
    pub verify_timeout: Duration,
    /// Timeout of reads from this node's sync and miner.
    #[arg(long = "read-timeout-ms", env = "READ_TIMEOUT_MS", default_value = "1000", value_parser = millis)]
    pub read_timeout: Duration,
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// How long an API key is valid after it was issued (renew before: POST /renew_key).
    #[arg(long = "key-ttl-ms", env = "KEY_TTL_MS", default_value = "2592000000", value_parser = millis)]
    pub key_ttl: Duration,
    /// Requests a second each authenticated client may make (per instance;
    /// more are answered 429 with Retry-After).
    #[arg(long, env = "CLIENT_RATE_PER_S", default_value_t = 200)]
    pub client_rate_per_s: u32,
    /// Requests a client may make at once above its rate.
    #[arg(long, env = "CLIENT_BURST", default_value_t = 400)]
    pub client_burst: u32,
    /// Requests handled at once; more are answered 503.
    #[arg(long, env = "MAX_CONCURRENT", default_value_t = 1_024)]
    pub max_concurrent: usize,
    #[arg(long = "task-ttl-ms", env = "TASK_TTL_MS", default_value = "600000", value_parser = millis)]
    pub task_ttl: Duration,
    #[arg(long, env = "MATMUL_N", default_value_t = 32)]
    pub matmul_n: u32,
    #[arg(long, env = "HASH_DIFFICULTY_BITS", default_value_t = 16)]
    pub hash_difficulty_bits: u32,
    #[arg(long, env = "REWARD_MATMUL", default_value_t = 10)]
    pub reward_matmul: u64,
    #[arg(long, env = "REWARD_HASH", default_value_t = 5)]
    pub reward_hash: u64,
    /// Nodes besides the validators whose tips count (followers).
    #[arg(long, env = "NODES", value_delimiter = ',')]
    pub nodes: Vec<String>,
}

impl Settings {
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.forward_timeout >= Duration::from_millis(10), "FORWARD_TIMEOUT_MS must be at least 10");
        anyhow::ensure!(self.forward_retries <= 5, "FORWARD_RETRIES must be at most 5");
        anyhow::ensure!(self.max_body_bytes >= 1024, "MAX_BODY_BYTES must be at least 1024");
        anyhow::ensure!(self.max_concurrent >= 1, "MAX_CONCURRENT must be at least 1");
        anyhow::ensure!(self.max_receipt_wait <= Duration::from_secs(300), "MAX_RECEIPT_WAIT_MS must be at most 300000");
        anyhow::ensure!(self.key_ttl >= Duration::from_secs(1), "KEY_TTL_MS must be at least 1000");
        anyhow::ensure!(self.client_rate_per_s >= 1 && self.client_burst >= 1, "CLIENT_RATE_PER_S and CLIENT_BURST must be at least 1");
        Ok(())
    }

    /// The tasks this instance hands out are within the genesis's bounds
    /// (every node would refuse the rewards of others).
    pub(crate) fn check_tasks(&self, bounds: &TaskBounds) -> anyhow::Result<()> {
        let ours = [
            ("MATMUL_N and REWARD_MATMUL", TaskSpec::Matmul { n: self.matmul_n }, self.reward_matmul, &bounds.matmul),
            ("HASH_DIFFICULTY_BITS and REWARD_HASH", TaskSpec::Hash { difficulty_bits: self.hash_difficulty_bits }, self.reward_hash, &bounds.hash),
        ];
        for (names, spec, reward, b) in ours {
            anyhow::ensure!(
                bounds.admits(&spec, reward),
                "{names} must be within the genesis's bounds: parameter {}..={}, reward 1..={}",
                b.min,
                b.max,
                b.max_reward
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        let base = ["uwl-ingest", "--node-id", "node-1"];
        Settings::try_parse_from(base.iter().chain(args)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tasks_outside_the_genesis_bounds_are_refused_at_start() {
        let bounds = TaskBounds::default();
        assert!(settings(&[]).check_tasks(&bounds).is_ok(), "the defaults are within the default genesis");
        for args in [&["--matmul-n", "1000"][..], &["--hash-difficulty-bits", "2"], &["--reward-hash", "5000"]] {
            let e = settings(args).check_tasks(&bounds).expect_err("refused");
            assert!(e.to_string().contains("within the genesis's bounds"), "{args:?}: {e}");
        }
    }
}
