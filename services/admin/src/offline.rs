//! The operators' tools on a stopped node's volumes (run in a one-off
//! container with the node's data volume, and for `restore` its key
//! volume, mounted; the node's sync and miner stopped: they hold their
//! stores exclusively).
//!
//! - `restore`: a backup (`uwl-admin backup`) into the node: the chain copy
//!   audited first (refused unless sound), the key (the backup's, else the
//!   node's own) checked against the genesis, then the chain, the mempool
//!   and the key put in place. Stores already there are moved aside, never
//!   deleted, and only with `--replace`; a store that does not open
//!   exclusively (its owner runs) stops it.
//! - `resync`: the node's chain rebuilt from its peers: the pairs of the
//!   blocks this node created and of the blocks orphaned by replacements
//!   its miner has not applied yet go back to its mempool (they may exist
//!   nowhere else; pairs the peers' chain holds are dropped again by the
//!   miner's reconciliation), the mempool forgets which chain events it
//!   applied (one transaction), then the chain store is moved aside.
//!   Started again, sync begins at block 0 and pulls the peers' chain.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use uwl_ledger::{Genesis, NodeKey, TxPair};
use uwl_store::files::{CHAIN_FILE, KEY_FILE, MEMPOOL_FILE};
use uwl_store::{ChainStore, Mempool};

#[derive(clap::Args, Debug, Clone)]
pub struct Restore {
    /// The backup directory (chain.sqlite, mempool.sqlite, and node.key
    /// unless the node's key volume still holds it).
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
    /// Rebuild even when the old chain store does not open (damaged): its
    /// own blocks' pairs are then not re-queued.
    #[arg(long)]
    pub force: bool,
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

/// Fails unless the store at `path`, if there is one, opens exclusively:
/// its owner (sync or the miner) is stopped.
fn stopped(path: &Path, genesis: &Genesis, owner: &str) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let opened = if path.ends_with(CHAIN_FILE) { ChainStore::open(path, genesis).map(drop) } else { Mempool::open(path).map(drop) };
    opened.with_context(|| format!("{} does not open: stop the node's {owner} first (it holds its store exclusively)", path.display()))
}

pub fn restore(cfg: &Restore) -> anyhow::Result<String> {
    let genesis = genesis(&cfg.genesis_file)?;
    let validator = genesis.validator(&cfg.node).with_context(|| format!("{} is not a validator of the genesis", cfg.node))?;
    for name in [CHAIN_FILE, MEMPOOL_FILE] {
        anyhow::ensure!(cfg.from.join(name).is_file(), "{} has no {name}: not a backup", cfg.from.display());
    }
    // the key: the backup's (written with --with-key, or put there from the
    // operator's own copy), else the one the node still has
    let key_file = cfg.key_dir.join(KEY_FILE);
    let (key, key_from) = match [cfg.from.join(KEY_FILE), key_file.clone()].into_iter().find(|p| p.is_file()) {
        Some(p) => (NodeKey::load(&p, &cfg.node)?, p),
        None => anyhow::bail!("no key for {}: put the node's key (node.key, backed up once, offline) into {}", cfg.node, cfg.from.display()),
    };
    anyhow::ensure!(key.public_key() == validator.public_key, "{} is not the key the genesis lists for {}", key_from.display(), cfg.node);
    // the chain copy, audited where it lies (opening it may add its -wal)
    let audit = crate::verify(&crate::Verify { store: cfg.from.join(CHAIN_FILE), genesis_file: cfg.genesis_file.clone() })?;
    anyhow::ensure!(audit.is_sound(), "the backup's chain is not sound:\n{}", crate::report(&audit));
    let pending = Mempool::open(&cfg.from.join(MEMPOOL_FILE)).context("opening the backup's mempool")?.len()?;

    let (chain_file, mempool_file) = (cfg.data_dir.join(CHAIN_FILE), cfg.data_dir.join(MEMPOOL_FILE));
    stopped(&chain_file, &genesis, "sync")?;
    stopped(&mempool_file, &genesis, "miner")?;
    let other_key = key_file.is_file() && key_from != key_file && NodeKey::load(&key_file, &cfg.node)?.public_key() != key.public_key();
    let present: Vec<&PathBuf> = [&chain_file, &mempool_file].into_iter().filter(|p| p.exists()).collect();
    let aside = cfg.data_dir.join(format!("replaced-{}", now_ms()));
    if !present.is_empty() || other_key {
        anyhow::ensure!(cfg.replace, "the node already has {present:?}{}: add --replace to move them aside", if other_key { " and another key" } else { "" });
        move_store(&cfg.data_dir, CHAIN_FILE, &aside)?;
        move_store(&cfg.data_dir, MEMPOOL_FILE, &aside)?;
        if other_key {
            std::fs::create_dir_all(&aside)?;
            std::fs::rename(&key_file, aside.join(KEY_FILE)).with_context(|| format!("moving {} aside", key_file.display()))?;
        }
    }
    std::fs::create_dir_all(&cfg.data_dir)?;
    std::fs::create_dir_all(&cfg.key_dir)?;
    for name in [CHAIN_FILE, MEMPOOL_FILE] {
        let to = cfg.data_dir.join(name);
        std::fs::copy(cfg.from.join(name), &to).with_context(|| format!("copying {name}"))?;
        std::fs::File::open(&to).and_then(|f| f.sync_all())?;
    }
    if !key_file.is_file() {
        key.save(&key_file)?;
    }
    let chain = audit.chain.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(format!(
        "restored {} from {}: chain of {} blocks (tip {}), {} pending pairs, the node's key in {}{}\n",
        cfg.node,
        cfg.from.display(),
        chain.blocks,
        chain.tip.map_or(0, |t| t.index),
        pending,
        key_file.display(),
        if present.is_empty() && !other_key { String::new() } else { format!("; what was there is in {}", aside.display()) }
    ))
}

/// What a node about to lose its chain store must keep: the pairs of the
/// blocks it created (they may exist nowhere else) and of the blocks
/// orphaned by chain-replaced events its miner has not applied yet.
fn recoverable(store: &ChainStore, node: &str, applied_through: u64) -> anyhow::Result<Vec<TxPair>> {
    let mut pairs = Vec::new();
    let tip = store.tip().index;
    let mut from = 1;
    while from <= tip {
        let blocks = store.blocks(from, 500)?;
        let Some(last) = blocks.last().map(|b| b.index) else { break };
        pairs.extend(blocks.into_iter().filter(|b| b.creator_node_id == node).flat_map(|b| b.transactions));
        from = last + 1;
    }
    for (_, event) in store.events_after(applied_through, u64::MAX >> 1)? {
        pairs.extend(event.orphaned.into_iter().flat_map(|b| b.transactions));
    }
    let mut seen = std::collections::HashSet::new();
    pairs.retain(|p| seen.insert(p.identity()));
    Ok(pairs)
}

pub fn resync(cfg: &Resync) -> anyhow::Result<String> {
    let genesis = genesis(&cfg.genesis_file)?;
    anyhow::ensure!(genesis.validator(&cfg.node).is_some(), "{} is not a validator of the genesis", cfg.node);
    let (chain_file, mempool_file) = (cfg.data_dir.join(CHAIN_FILE), cfg.data_dir.join(MEMPOOL_FILE));
    // Both owners stopped: each store opens exclusively here or not at all.
    let mut mempool = if mempool_file.exists() {
        Some(Mempool::open(&mempool_file).context("the mempool does not open: stop the node's miner first")?)
    } else {
        None
    };
    let applied = mempool.as_ref().map(Mempool::last_event_seq).transpose()?.unwrap_or(0);
    let pairs = if chain_file.exists() {
        match ChainStore::open(&chain_file, &genesis) {
            Ok(store) => recoverable(&store, &cfg.node, applied)?,
            Err(e) if cfg.force => {
                eprintln!("the chain store does not open ({e}): rebuilt without re-queuing its blocks' pairs (--force)");
                Vec::new()
            }
            Err(e) => anyhow::bail!(
                "the chain store does not open ({e}). If the node's sync runs, stop it; if the store is damaged, --force \
                 rebuilds it without re-queuing its own blocks' pairs (those its peers hold come back from them)"
            ),
        }
    } else {
        Vec::new()
    };
    // First the mempool (one transaction), then the move: stopped half way,
    // the node restarts on its old chain and reconciles again, harmlessly.
    let added = match mempool.as_mut() {
        Some(m) => m.requeue_and_forget_chain(&pairs, now_ms())?,
        None => 0,
    };
    let pending = mempool.as_ref().map(Mempool::len).transpose()?.unwrap_or(0);
    drop(mempool);
    let aside = cfg.data_dir.join(format!("resync-{}", now_ms()));
    let moved = move_store(&cfg.data_dir, CHAIN_FILE, &aside)?;
    Ok(format!(
        "resync of {}: {}; {} pairs of its own blocks and of unapplied replacements kept, {added} of them back in its mempool ({pending} pending now). \
         Start its sync and miner: sync pulls the chain from its peers.\n",
        cfg.node,
        if moved { format!("the chain store moved to {}", aside.display()) } else { "no chain store was there".to_owned() },
        pairs.len(),
    ))
}
