//! The node's chain as sync holds it: the store (one owner, used off the
//! async runtime), the tip everyone is told about, the peers.

use crate::metrics::Metrics;
use crate::Settings;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;
use tracing::debug;
use uwl_bus::proto::{NewBlock, PeerHeard, TipAnnouncement};
use uwl_bus::{Bus, RemoteError};
use uwl_ledger::{Clock, Genesis, SystemClock, TipInfo};
use uwl_store::ChainStore;

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) genesis: Genesis,
    pub(crate) bus: Bus,
    pub(crate) store: Mutex<ChainStore>,
    pub(crate) tip: watch::Sender<TipInfo>,
    pub(crate) peers: Vec<String>,
    /// Each peer's last tip announcement heard, and when (ms).
    pub(crate) heard: Mutex<BTreeMap<String, (TipInfo, u64)>>,
    pub(crate) metrics: Metrics,
    pub(crate) settings: Settings,
    pub(crate) blocks_read_at_start: u64,
}

impl Node {
    pub(crate) fn now(&self) -> u64 {
        SystemClock.now_ms()
    }

    /// Runs `f` on the store off the async runtime.
    pub(crate) async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut ChainStore) -> T + Send + 'static,
    ) -> Result<T, RemoteError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = me.store.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut store)
        })
        .await
        .map_err(RemoteError::internal)
    }

    /// Records a peer's announcement (for the stats' peer list).
    pub(crate) fn heard(&self, peer: &str, tip: TipInfo) {
        let now = self.now();
        self.heard.lock().unwrap_or_else(PoisonError::into_inner).insert(peer.to_owned(), (tip, now));
    }

    /// The peers heard, with how long ago.
    pub(crate) fn peers_heard(&self) -> Vec<PeerHeard> {
        let now = self.now();
        let heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        heard.iter().map(|(n, (tip, at))| PeerHeard { node_id: n.clone(), tip: *tip, heard_ms_ago: now.saturating_sub(*at) }).collect()
    }

    pub(crate) fn set_tip(&self, tip: TipInfo) {
        self.metrics.tip_index.set(tip.index as i64);
        self.tip.send_replace(tip);
    }

    /// Tells the ingests what blocks just applied carry (a message each:
    /// a block's fits one message, a long adoption's many would not).
    pub(crate) async fn announce_blocks(&self, blocks: &[NewBlock]) {
        for b in blocks {
            if let Err(e) = self.bus.publish(&self.id, b).await {
                debug!(%e, index = b.index, "new block's contents not published (waiters fall back to their deadline)");
                return;
            }
        }
    }

    pub(crate) async fn announce(&self) {
        let ann = TipAnnouncement { node_id: self.id.clone(), tip: *self.tip.borrow() };
        if let Err(e) = self.bus.publish(&self.id, &ann).await {
            debug!(%e, "announcement not published");
        }
    }
}
