//! `uwl-admin verify`: a node's chain store checked offline, from block 0:
//! hashes, signatures, links, the contract checks of every pair, each
//! identity once, and the store's balances and identity index recomputed
//! from the blocks. The store is opened exclusively, as sync opens it: run
//! it on a backup copy, or with the node's sync stopped.

use anyhow::Context;
use std::path::PathBuf;
use uwl_ledger::Genesis;
use uwl_store::{ChainStore, StoreAudit};

#[derive(clap::Args, Debug, Clone)]
pub struct Verify {
    /// The chain store (`chain.sqlite` of a sync's data volume, or a copy).
    #[arg(long)]
    pub store: PathBuf,
    /// The genesis the store belongs to.
    #[arg(long, default_value = "/config/genesis.json")]
    pub genesis_file: PathBuf,
}

/// Audits the store; an error only when it cannot be read at all.
pub fn verify(cfg: &Verify) -> anyhow::Result<StoreAudit> {
    anyhow::ensure!(cfg.store.is_file(), "{} is not a file (a store is never created by verify)", cfg.store.display());
    let genesis = Genesis::load(&cfg.genesis_file).with_context(|| format!("reading {}", cfg.genesis_file.display()))?;
    let store = ChainStore::open(&cfg.store, &genesis).with_context(|| format!("opening {}", cfg.store.display()))?;
    Ok(store.audit(&genesis)?)
}

/// What an operator reads: the figures, or each fault on its own line.
pub fn report(a: &StoreAudit) -> String {
    let mut out = match &a.chain {
        Ok(c) => format!(
            "chain: {} blocks, {} pairs, {} clients paid, tip {} ({}): every block valid, every identity once\n",
            c.blocks,
            c.pairs,
            c.balances.len(),
            c.tip.map_or(0, |t| t.index),
            c.tip.map(|t| t.hash.to_hex()).unwrap_or_default(),
        ),
        Err(e) => format!("FAULT in the chain at {e}\n"),
    };
    for m in &a.mismatches {
        out.push_str(&format!("MISMATCH {m}\n"));
    }
    if a.is_sound() {
        out.push_str("store sound: balances and identity index agree with the chain\n");
    }
    out
}
