//! An online backup of the node, asked by an operator (`uwl-admin
//! backup`): the mempool (the node's key too if asked), then the chain, into
//! `<data dir>/backups/<label>/`. The miner holds its chain turn for the
//! whole backup, so none of its blocks and no reconciliation falls between
//! the mempool copy and the chain copy: every pair the mempool copy lacks
//! because it was mined is in the chain copy, and every chain-replaced
//! event the mempool copy has not applied is still in the chain copy's
//! outbox (sync deletes events only once the miner has applied them).

use crate::state::Miner;
use std::sync::Arc;
use std::time::Duration;
use tracing::info;
use uwl_bus::proto::{BackupReply, BackupRequest, ChainCopyRequest};
use uwl_bus::{RemoteError, RequestId};
use uwl_store::files::{backup_dir, CHAIN_FILE, KEY_FILE, MEMPOOL_FILE};

/// How long sync may take to copy a chain store (a large chain is a few
/// hundred megabytes written once).
const CHAIN_COPY_TIMEOUT: Duration = Duration::from_secs(300);

impl Miner {
    pub(crate) async fn backup(self: Arc<Self>, q: BackupRequest, rid: RequestId) -> Result<BackupReply, RemoteError> {
        let dir = backup_dir(&self.settings.data_dir, &q.label).map_err(RemoteError::bad_request)?;
        if dir.exists() {
            return Err(RemoteError::bad_request(format!("backup {} exists: choose another label", q.label)));
        }
        std::fs::create_dir_all(&dir).map_err(|e| RemoteError::internal(format!("creating {}: {e}", dir.display())))?;
        let written = self.write_backup(&dir, q.with_key, &rid).await;
        if written.is_err() {
            // no half backup left behind (nor a key in it)
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a failed backup");
            }
        }
        written
    }

    async fn write_backup(self: &Arc<Self>, dir: &std::path::Path, with_key: bool, rid: &RequestId) -> Result<BackupReply, RemoteError> {
        let _turn = self.chain_turn.lock().await;
        let mempool = dir.join(MEMPOOL_FILE);
        let (mempool_bytes, pending) = self.with_mempool(move |m| Ok((m.copy_to(&mempool)?, m.len()?))).await?;
        if with_key {
            self.key.save(&dir.join(KEY_FILE)).map_err(RemoteError::internal)?;
        }
        let chain = dir.join(CHAIN_FILE).display().to_string();
        let copied = self
            .bus
            .ask(&self.id, ChainCopyRequest { path: chain }, CHAIN_COPY_TIMEOUT, rid)
            .await
            .map_err(|e| RemoteError::unavailable(format!("sync did not copy the chain: {e}")))?;
        let reply = BackupReply { dir: dir.display().to_string(), chain_bytes: copied.bytes, mempool_bytes, tip: copied.tip, pending, key: with_key };
        info!(dir = %reply.dir, tip = reply.tip.index, pending, "backup written");
        Ok(reply)
    }
}
