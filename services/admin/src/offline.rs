//! The operators' tools on a stopped node's volumes (run in a one-off
//! container with the node's data volume, and for `restore` its key
//! volume, mounted; the node's sync and miner stopped: they hold their
//! stores exclusively).
//!
//! - `restore`: a backup (`uwl-admin backup`) into the node: the chain copy
//!   audited first (refused unless sound), the key checked against the
//!   genesis (refused unless it is the node's), then the chain, the mempool
//!   and the key put in place. Stores already there are moved aside, never
//!   deleted, and only with `--replace`.
//! - `resync`: the node's chain rebuilt from its peers: the chain store is
//!   moved aside, the pairs of the blocks this node created go back to its
//!   mempool (the blocks may exist nowhere else; pairs that are in the
//!   peers' chain are dropped again by the miner's reconciliation), and the
//!   mempool forgets which chain events it applied. Started again, sync
//!   begins at block 0 and pulls the peers' chain.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use uwl_ledger::{Genesis, NodeKey, TxPair};
use uwl_store::files::{CHAIN_FILE, KEY_FILE, MEMPOOL_FILE};
use uwl_store::{ChainStore, Mempool, Origin};

#[derive(clap::Args, Debug, Clone)]
pub struct Restore {
    /// The backup directory (holding chain.sqlite, mempool.sqlite, node.key).
    #[arg(long)]
    pub from: PathBuf,
    /// The node restored (its key must be the genesis's key for it).
    #[arg(long)]
    pub node: String,
    /// The node's data directory (sync's and the miner's volume).
    #[arg(long, default_value = "/data")]
    pub data_dir: PathBuf,
    /// Where the node's miner reads its key (`node.key` in it).
    #[arg(long, default_value = "/key")]
    pub key_dir: PathBuf,
    #[arg(long, default_value = "/config/genesis.json")]
    pub genesis_file: PathBuf,
    /// Move stores and a key already there aside (into `replaced-<time>/`).
    #[arg(long)]
    pub replace: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Resync {
    /// The node's data directory (sync's and the miner's volume).
    #[arg(long, default_value = "/data")]
    pub data_dir: PathBuf,
    /// The node (its own blocks' pairs go back to its mempool).
    #[arg(long)]
    pub node: String,
    #[arg(long, default_value = "/config/genesis.json")]
    pub genesis_file: PathBuf,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn genesis(path: &Path) -> anyhow::Result<Genesis> {
    Genesis::load(path).with_context(|| format!("reading {}", path.display()))
}

/// Moves `name` and its SQLite companions (`-wal`, `-shm`) from `dir` into
/// `aside` (created); returns whether the store was there.
fn move_store(dir: &Path, name: &str, aside: &Path) -> anyhow::Result<bool> {
    let mut moved = false;
    for suffix in ["", "-wal", "-shm"] {
        let from = dir.join(format!("{name}{suffix}"));
        if from.exists() {
            std::fs::create_dir_all(aside)?;
            std::fs::rename(&from, aside.join(format!("{name}{suffix}"))).with_context(|| format!("moving {} aside", from.display()))?;
            moved |= suffix.is_empty();
        }
    }
    Ok(moved)
}

pub fn restore(cfg: &Restore) -> anyhow::Result<String> {
    let genesis = genesis(&cfg.genesis_file)?;
    let validator = genesis.validator(&cfg.node).with_context(|| format!("{} is not a validator of the genesis", cfg.node))?;
    let key = NodeKey::load(&cfg.from.join(KEY_FILE), &cfg.node)?;
    anyhow::ensure!(key.public_key() == validator.public_key, "the backup's key is not the key the genesis lists for {}", cfg.node);
    // the chain copy, audited where it lies (opening it may add its -wal)
    let audit = crate::verify(&crate::Verify { store: cfg.from.join(CHAIN_FILE), genesis_file: cfg.genesis_file.clone() })?;
    anyhow::ensure!(audit.is_sound(), "the backup's chain is not sound:\n{}", crate::report(&audit));
    let pending = Mempool::open(&cfg.from.join(MEMPOOL_FILE)).context("opening the backup's mempool")?.len()?;

    let aside = cfg.data_dir.join(format!("replaced-{}", now_ms()));
    let key_file = cfg.key_dir.join(KEY_FILE);
    let present: Vec<PathBuf> = [cfg.data_dir.join(CHAIN_FILE), cfg.data_dir.join(MEMPOOL_FILE), key_file.clone()].into_iter().filter(|p| p.exists()).collect();
    if !present.is_empty() {
        anyhow::ensure!(cfg.replace, "the node already has {present:?}: stop it and add --replace to move them aside");
        move_store(&cfg.data_dir, CHAIN_FILE, &aside)?;
        move_store(&cfg.data_dir, MEMPOOL_FILE, &aside)?;
        if key_file.exists() {
            std::fs::create_dir_all(&aside)?;
            std::fs::copy(&key_file, aside.join(KEY_FILE))?;
            std::fs::remove_file(&key_file)?;
        }
    }
    std::fs::create_dir_all(&cfg.data_dir)?;
    std::fs::create_dir_all(&cfg.key_dir)?;
    for name in [CHAIN_FILE, MEMPOOL_FILE] {
        std::fs::copy(cfg.from.join(name), cfg.data_dir.join(name)).with_context(|| format!("copying {name}"))?;
    }
    key.save(&key_file)?;
    let chain = audit.chain.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(format!(
        "restored {} from {}: chain of {} blocks (tip {}), {} pending pairs, the node's key{}\n",
        cfg.node,
        cfg.from.display(),
        chain.blocks,
        chain.tip.map_or(0, |t| t.index),
        pending,
        if present.is_empty() { String::new() } else { format!("; what was there is in {}", aside.display()) }
    ))
}

pub fn resync(cfg: &Resync) -> anyhow::Result<String> {
    let genesis = genesis(&cfg.genesis_file)?;
    anyhow::ensure!(genesis.validator(&cfg.node).is_some(), "{} is not a validator of the genesis", cfg.node);
    let chain_file = cfg.data_dir.join(CHAIN_FILE);
    // the pairs of this node's own blocks, if the old store still reads
    let own: Vec<TxPair> = match ChainStore::open(&chain_file, &genesis) {
        Ok(store) => {
            let tip = store.tip().index;
            let mut pairs = Vec::new();
            let mut from = 1;
            while from <= tip {
                let blocks = store.blocks(from, 500)?;
                let Some(last) = blocks.last().map(|b| b.index) else { break };
                pairs.extend(blocks.into_iter().filter(|b| b.creator_node_id == cfg.node).flat_map(|b| b.transactions));
                from = last + 1;
            }
            pairs
        }
        Err(e) => {
            eprintln!("the old chain store does not open ({e}): no pairs re-queued from it");
            Vec::new()
        }
    };
    let aside = cfg.data_dir.join(format!("resync-{}", now_ms()));
    let moved = move_store(&cfg.data_dir, CHAIN_FILE, &aside)?;
    let mut mempool = Mempool::open(&cfg.data_dir.join(MEMPOOL_FILE)).context("opening the node's mempool")?;
    let items: Vec<(&TxPair, Origin)> = own.iter().map(|p| (p, Origin::Requeued)).collect();
    mempool.insert_many(&items, now_ms())?;
    mempool.forget_chain()?;
    Ok(format!(
        "resync of {}: {}; {} pairs of its own blocks back in its mempool ({} pending now). Start its sync and miner: sync pulls the chain from its peers.\n",
        cfg.node,
        if moved { format!("the chain store moved to {}", aside.display()) } else { "no chain store was there".to_owned() },
        own.len(),
        mempool.len()?
    ))
}
