//! `uwl-admin`: the deployment's first step (SPEC section 2, "Genesis").
//! It generates every validator's key into that node's data directory, the
//! network's issuer key, and then the genesis file listing the validators'
//! public keys. Keys and genesis live in the deployment's volumes, never in
//! the repository. Idempotent: an existing genesis is kept.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

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
    /// Directory of genesis.json (read by every service).
    #[arg(long, env = "CONFIG_DIR", default_value = "/config")]
    pub config_dir: PathBuf,
    /// Directory of issuer.key, the network's issuer secret (mounted by
    /// ingest only; default: CONFIG_DIR).
    #[arg(long, env = "ISSUER_DIR")]
    pub issuer_dir: Option<PathBuf>,
    /// Where each validator's key goes instead of its data directory:
    /// `<KEY_ROOT>/<node>/node.key` (a volume only that node's miner mounts).
    #[arg(long, env = "KEY_ROOT")]
    pub key_root: Option<PathBuf>,
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
    let issuer_dir = cfg.issuer_dir.as_ref().unwrap_or(&cfg.config_dir);
    std::fs::create_dir_all(issuer_dir).with_context(|| format!("creating {}", issuer_dir.display()))?;
    let issuer_key = issuer_dir.join("issuer.key");
    move_secret(&cfg.config_dir.join("issuer.key"), &issuer_key)?;
    NodeKey::load_or_generate(&issuer_key, "issuer")?;
    // Keys of an earlier deployment move to their own volumes (the same
    // keys: the genesis lists them), out of the volumes others mount.
    for node in &cfg.validators {
        if let Some(root) = &cfg.key_root {
            std::fs::create_dir_all(root.join(node)).with_context(|| format!("creating {}", root.join(node).display()))?;
            move_secret(&key_path(&cfg.data_root.join(node)), &key_path(&root.join(node)))?;
        }
    }
    if genesis_file.exists() {
        return Ok(Genesis::load(&genesis_file)?);
    }
    let mut validators = Vec::new();
    for node in &cfg.validators {
        let dir = cfg.key_root.as_ref().unwrap_or(&cfg.data_root).join(node);
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

/// Moves a secret file from `from` to `to` (mode 0600 kept) when `to` does
/// not exist yet and `from` does; nothing otherwise.
fn move_secret(from: &Path, to: &Path) -> anyhow::Result<()> {
    if from == to || to.exists() || !from.exists() {
        return Ok(());
    }
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::remove_file(from).with_context(|| format!("removing {}", from.display()))?;
    Ok(())
}

pub fn key_path(node_dir: &Path) -> PathBuf {
    node_dir.join("node.key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(root: &Path, split: bool) -> Init {
        Init {
            validators: vec!["node-1".into(), "node-2".into()],
            data_root: root.join("data"),
            config_dir: root.join("config"),
            issuer_dir: split.then(|| root.join("issuer")),
            key_root: split.then(|| root.join("keys")),
            chain_id: "t".into(),
            t_round_ms: 2_000,
            max_future_ms: 5_000,
            max_pairs_per_block: 100,
        }
    }

    /// A deployment made before secrets had their own volumes keeps its
    /// keys (the genesis lists them): they move out of the shared volumes.
    #[test]
    fn keys_of_an_earlier_layout_move_to_their_own_volumes() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let before = init(&cfg(root.path(), false))?;
        let issuer = NodeKey::load_or_generate(&root.path().join("config/issuer.key"), "issuer")?.public_key();
        let after = init(&cfg(root.path(), true))?;
        assert_eq!(before, after, "the same genesis");
        assert!(!root.path().join("config/issuer.key").exists() && !root.path().join("data/node-1/node.key").exists());
        assert_eq!(NodeKey::load_or_generate(&root.path().join("issuer/issuer.key"), "issuer")?.public_key(), issuer);
        for v in &after.validators {
            let key = NodeKey::load_or_generate(&key_path(&root.path().join("keys").join(&v.node_id)), &v.node_id)?;
            assert_eq!(key.public_key(), v.public_key, "{}'s key kept", v.node_id);
        }
        Ok(())
    }
}
