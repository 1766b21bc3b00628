//! `uwl-admin`: the deployment's first step (SPEC section 2, "Genesis").
//! It generates every validator's key into that node's data directory, the
//! network's issuer key, and then the genesis file listing the validators'
//! public keys. Keys and genesis live in the deployment's volumes, never in
//! the repository. Idempotent: an existing genesis is kept.

use anyhow::Context;
use std::path::{Path, PathBuf};
use uwl_ledger::{Genesis, NetworkParams, NodeKey};

#[derive(clap::Parser, Debug, Clone)]
#[command(name = "uwl-admin", about = "Generates validator keys, the issuer key and the genesis file")]
pub struct Init {
    /// Validators, e.g. node-1,node-2.
    #[arg(long, env = "VALIDATORS", value_delimiter = ',', required = true)]
    pub validators: Vec<String>,
    /// Where each validator's key goes: `<DATA_ROOT>/<node>/node.key`.
    #[arg(long, env = "DATA_ROOT", default_value = "/data")]
    pub data_root: PathBuf,
    /// Directory of genesis.json and issuer.key (shared by every service).
    #[arg(long, env = "CONFIG_DIR", default_value = "/config")]
    pub config_dir: PathBuf,
    #[arg(long, env = "CHAIN_ID", default_value = "uwl")]
    pub chain_id: String,
    #[arg(long, env = "T_ROUND_MS", default_value_t = 2_000)]
    pub t_round_ms: u64,
    #[arg(long, env = "MAX_FUTURE_MS", default_value_t = 5_000)]
    pub max_future_ms: u64,
    #[arg(long, env = "MAX_PAIRS_PER_BLOCK", default_value_t = 1_000)]
    pub max_pairs_per_block: u32,
}

/// Writes what is missing; returns the genesis in force.
pub fn init(cfg: &Init) -> anyhow::Result<Genesis> {
    let genesis_file = cfg.config_dir.join("genesis.json");
    std::fs::create_dir_all(&cfg.config_dir).with_context(|| format!("creating {}", cfg.config_dir.display()))?;
    NodeKey::load_or_generate(&cfg.config_dir.join("issuer.key"), "issuer")?;
    if genesis_file.exists() {
        return Ok(Genesis::load(&genesis_file)?);
    }
    let mut validators = Vec::new();
    for node in &cfg.validators {
        let dir = cfg.data_root.join(node);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        validators.push(NodeKey::load_or_generate(&key_path(&dir), node)?.validator());
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let params = NetworkParams {
        t_round_ms: cfg.t_round_ms,
        max_future_ms: cfg.max_future_ms,
        max_pairs_per_block: cfg.max_pairs_per_block,
    };
    let genesis = Genesis::new(&cfg.chain_id, now, validators, params)?;
    // Written last and atomically: its presence means the deployment is initialised.
    let tmp = cfg.config_dir.join("genesis.json.tmp");
    genesis.save(&tmp)?;
    std::fs::rename(&tmp, &genesis_file)?;
    Ok(genesis)
}

pub fn key_path(node_dir: &Path) -> PathBuf {
    node_dir.join("node.key")
}
