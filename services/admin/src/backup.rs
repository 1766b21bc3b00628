//! `uwl-admin backup`: an online backup of one node, written by its own
//! services into `backups/<label>/` of the node's data volume (the miner
//! copies the mempool and the node's key, then sync the chain, while the
//! miner holds its chain turn: see services/miner/src/backup.rs).

use crate::Connect;
use std::time::Duration;
use uwl_bus::proto::{BackupReply, BackupRequest};
use uwl_bus::RequestId;

#[derive(clap::Args, Debug, Clone)]
pub struct Backup {
    #[command(flatten)]
    pub connect: Connect,
    /// The node to back up (a validator of the genesis).
    #[arg(long)]
    pub node: String,
    /// The backup's name: its directory under the node's `backups/`.
    #[arg(long)]
    pub label: String,
    /// Put the node's key into the backup too (it then lies in the data
    /// volume, which the node's sync mounts as well).
    #[arg(long)]
    pub with_key: bool,
}

/// How long a backup may take (the chain copy dominates).
const BACKUP_TIMEOUT: Duration = Duration::from_secs(600);

pub async fn backup(cfg: &Backup) -> anyhow::Result<BackupReply> {
    let genesis = cfg.connect.genesis()?;
    anyhow::ensure!(genesis.validator(&cfg.node).is_some(), "{} is not a validator of the genesis", cfg.node);
    let bus = cfg.connect.bus().await?;
    let reply = bus.ask(&cfg.node, BackupRequest { label: cfg.label.clone(), with_key: cfg.with_key }, BACKUP_TIMEOUT, &RequestId::new()).await?;
    Ok(reply)
}

/// What an operator reads.
pub fn backup_report(node: &str, r: &BackupReply) -> String {
    format!(
        "backup of {node} in {} (the node's data volume): chain.sqlite {} bytes (tip {} {}), mempool.sqlite {} bytes ({} pending){}\n",
        r.dir,
        r.chain_bytes,
        r.tip.index,
        &r.tip.hash.to_hex()[..12],
        r.mempool_bytes,
        r.pending,
        if r.key { ", node.key" } else { "; the key is not in it (--with-key)" }
    )
}
