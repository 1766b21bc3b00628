//! `uwl-sync`: owns a node's chain store.
//!
//! It serves the chain to everyone (tip, block ranges by locator, balances,
//! receipts, identity look-ups, stats), accepts blocks from its own miner
//! (naming identities already in the chain), announces its tip, pulls from
//! peers on their announcements and on a timer with a locator so that only
//! blocks after the fork point travel, replaces its chain when fork choice
//! says so, and hands chain-replaced events to its miner from an outbox
//! written in the replacement's own transaction.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod handlers;
mod metrics;
mod node;
mod pull;
mod settings;

pub use settings::Settings;

use anyhow::Context;
use futures::StreamExt;
use metrics::Metrics;
use node::Node;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use uwl_bus::proto::{AppendRequest, ChainCopyRequest, EventsRequest, SyncQuery, TipAnnouncement};
use uwl_bus::{serve, BusError};
use uwl_ledger::{is_better, Genesis};
use uwl_runtime::Runtime;
use uwl_store::ChainStore;

/// Sync, built (store open, bus connected, admin address bound), ready to run.
#[derive(Debug)]
pub struct App {
    rt: Runtime,
    node: Arc<Node>,
}

/// Opens the chain store, connects and binds.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    settings.validate()?;
    let genesis = Genesis::load(&settings.genesis_file)?;
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let path = settings.data_dir.join(uwl_store::files::CHAIN_FILE);
    let store = ChainStore::open(&path, &genesis).with_context(|| format!("opening {}", path.display()))?;
    let tip = store.tip().tip_info();
    let blocks_read_at_start = store.blocks_read();
    let id = settings.common.node_id.clone();
    info!(node = %id, tip = tip.index, blocks_read = blocks_read_at_start, "chain store open");
    let peers = if settings.peers.is_empty() { genesis.peers_of(&id) } else { settings.peers.clone() };
    let mut rt = Runtime::start(uwl_bus::Role::Sync, &settings.common).await?;
    rt.report_disk(&settings.data_dir);
    let metrics = Metrics::new(&id)?;
    metrics.startup_blocks_read.set(blocks_read_at_start as i64);
    metrics.tip_index.set(tip.index as i64);
    let node = Arc::new(Node {
        id,
        genesis,
        bus: rt.bus().clone(),
        store: Mutex::new(store),
        tip: watch::channel(tip).0,
        peers,
        heard: Default::default(),
        metrics,
        settings,
        blocks_read_at_start,
    });
    Ok(App { rt, node })
}

impl App {
    pub fn admin_addr(&self) -> SocketAddr {
        self.rt.admin_addr()
    }

    /// Serves until `shutdown`, then finishes what is in flight.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { mut rt, node } = self;
        let (bus, id, stop) = (rt.bus().clone(), node.id.clone(), rt.stopping());
        let n = node.clone();
        rt.spawn("serve reads", serve(bus.clone(), &id, None, 64, stop.clone(), move |q: SyncQuery, _| n.clone().read(q)));
        let n = node.clone();
        rt.spawn("serve appends", serve(bus.clone(), &id, None, 1, stop.clone(), move |q: AppendRequest, _| n.clone().append(q)));
        let n = node.clone();
        rt.spawn("serve events", serve(bus.clone(), &id, None, 1, stop.clone(), move |q: EventsRequest, _| n.clone().events(q)));
        let n = node.clone();
        rt.spawn("serve copies", serve(bus.clone(), &id, None, 1, stop.clone(), move |q: ChainCopyRequest, _| n.clone().copy(q)));
        let (pull_tx, pull_rx) = mpsc::channel::<String>(64);
        rt.spawn("hear tips", hear_tips(node.clone(), pull_tx, stop.clone()));
        rt.spawn("pull", pull_loop(node.clone(), pull_rx, stop.clone()));
        rt.spawn("announce", announce_loop(node.clone(), stop));
        let registry = node.metrics.registry.clone();
        rt.run(registry, move || (true, serde_json::json!({ "tip": node.tip.borrow().index })), shutdown).await
    }
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run(shutdown).await
}

/// Peers' announcements of better tips ask for a pull from that peer.
async fn hear_tips(node: Arc<Node>, pull: mpsc::Sender<String>, stop: CancellationToken) -> Result<(), BusError> {
    let mut tips = node.bus.subscribe::<TipAnnouncement>(uwl_bus::subjects::ANY_NODE).await?;
    loop {
        let ann = tokio::select! { _ = stop.cancelled() => break, a = tips.next() => match a { Some(a) => a, None => break } };
        if ann.node_id == node.id {
            continue;
        }
        node.heard(&ann.node_id, ann.tip);
        if is_better(&ann.tip, &node.tip.borrow()) && pull.try_send(ann.node_id).is_err() {
            debug!("pull queue full: the timer pulls every peer anyway");
        }
    }
    Ok(())
}

/// Pulls the peers asked for, and every peer on the timer.
async fn pull_loop(node: Arc<Node>, mut asked: mpsc::Receiver<String>, stop: CancellationToken) -> Result<(), BusError> {
    let mut timer = tokio::time::interval(node.settings.pull_interval);
    loop {
        let mut wanted: HashSet<String> = HashSet::new();
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = timer.tick() => wanted.extend(node.peers.iter().cloned()),
            p = asked.recv() => match p { Some(p) => { wanted.insert(p); }, None => break },
        }
        while let Ok(p) = asked.try_recv() {
            wanted.insert(p);
        }
        for peer in wanted {
            let result = match node.pull(&peer).await {
                Ok(r) => r,
                Err(e) => {
                    debug!(peer, %e, "pull failed");
                    e.label()
                }
            };
            node.metrics.pulls.with_label_values(&[result]).inc();
        }
    }
    Ok(())
}

/// Announces the tip on every change, and as a heartbeat.
async fn announce_loop(node: Arc<Node>, stop: CancellationToken) -> Result<(), BusError> {
    let mut changes = node.tip.subscribe();
    let mut timer = tokio::time::interval(node.settings.announce_interval);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = timer.tick() => {}
            c = changes.changed() => if c.is_err() { break },
        }
        node.announce().await;
    }
    Ok(())
}
