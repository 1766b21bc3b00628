//! `uwl-miner`: owns a node's mempool.
//!
//! It accepts pairs on its node-addressed submit subject (the subject the
//! leader is reached on) and acknowledges them once they are durable here
//! (group commit: one fsync per batch) and replicated to a reachable peer
//! within a bound; it keeps replicating pending pairs to peers
//! (anti-entropy); when this node is the leader it mines every pending pair
//! on a short timer (its fallback pairs always), signs the block and hands it
//! to its sync; and it reconciles pending after chain replacements, from
//! sync's outbox of chain-replaced events and level-triggered against the
//! tip, idempotently.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod accept;
mod backup;
mod metrics;
mod mine;
mod reconcile;
mod replicate;
mod settings;
mod state;

pub use settings::Settings;

use accept::{AcceptJob, ACCEPT_BATCH};
use anyhow::Context;
use futures::StreamExt;
use metrics::Metrics;
use state::Miner;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use uwl_bus::proto::{BackupRequest, MinerQuery, ReplicateRequest, Replaced, SubmitBatch, TipAnnouncement};
use uwl_bus::{serve, BusError, DownMarks};
use uwl_ledger::{Block, Genesis, NodeKey};
use uwl_runtime::Runtime;
use uwl_store::Mempool;

/// The miner, built (key checked, mempool open, bus connected, admin
/// address bound), ready to run.
#[derive(Debug)]
pub struct App {
    rt: Runtime,
    miner: Arc<Miner>,
    accepts: mpsc::Receiver<AcceptJob>,
}

/// Loads the key and the mempool, connects and binds.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    settings.validate()?;
    let genesis = Genesis::load(&settings.genesis_file)?;
    let id = settings.common.node_id.clone();
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let key_file = settings.key_file.clone().unwrap_or_else(|| settings.data_dir.join("node.key"));
    let key = NodeKey::load_or_generate(&key_file, &id)?;
    let validator = match genesis.validator(&id) {
        Some(v) if v.public_key != key.public_key() => {
            anyhow::bail!("{} does not hold the key the genesis file lists for {id}", key_file.display())
        }
        Some(_) => true,
        None => false,
    };
    let path = settings.data_dir.join(uwl_store::files::MEMPOOL_FILE);
    let mempool = Mempool::open(&path).with_context(|| format!("opening {}", path.display()))?;
    info!(node = %id, validator, pending = mempool.len()?, "mempool open");
    let peers = if settings.peers.is_empty() { genesis.peers_of(&id) } else { settings.peers.clone() };
    let mut rt = Runtime::start(uwl_bus::Role::Miner, &settings.common).await?;
    rt.report_disk(&settings.data_dir);
    let (accept, accepts) = mpsc::channel(4 * ACCEPT_BATCH);
    let genesis_tip = Block::genesis(&genesis).tip_info();
    let miner = Arc::new(Miner {
        metrics: Metrics::new(&id)?,
        id,
        key,
        genesis,
        validator,
        bus: rt.bus().clone(),
        mempool: Mutex::new(mempool),
        peers,
        down: DownMarks::default(),
        wake: Notify::new(),
        chain_turn: tokio::sync::Mutex::new(()),
        tip: watch::channel(genesis_tip).0,
        accept,
        settings,
    });
    Ok(App { rt, miner, accepts })
}

impl App {
    pub fn admin_addr(&self) -> SocketAddr {
        self.rt.admin_addr()
    }

    /// Serves until `shutdown`. Requests stop first; mining, accepting and
    /// reconciliation stop after the requests in flight were answered and
    /// the block in flight stored.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { mut rt, miner, accepts } = self;
        let (bus, id) = (rt.bus().clone(), miner.id.clone());
        let (requests, workers) = (rt.stopping(), rt.workers_stopping());
        let m = miner.clone();
        rt.spawn("serve submissions", serve(bus.clone(), &id, None, 4 * ACCEPT_BATCH, requests.clone(), move |q: SubmitBatch, rid| {
            m.clone().submit_batch(q, rid)
        }));
        let m = miner.clone();
        rt.spawn("serve replication", serve(bus.clone(), &id, None, 16, requests.clone(), move |q: ReplicateRequest, _| m.clone().replicated(q)));
        let m = miner.clone();
        rt.spawn("serve reads", serve(bus.clone(), &id, None, 64, requests.clone(), move |q: MinerQuery, _| m.clone().read(q)));
        let m = miner.clone();
        rt.spawn("serve backups", serve(bus.clone(), &id, None, 1, requests, move |q: BackupRequest, rid| m.clone().backup(q, rid)));
        rt.spawn_worker("accept", miner.clone().accept_loop(accepts, workers.clone()));
        rt.spawn_worker("mine", miner.clone().mine_loop(workers.clone()));
        rt.spawn_worker("hear tips", hear_tips(miner.clone(), workers.clone()));
        rt.spawn_worker("reconcile", reconcile_loop(miner.clone(), workers.clone()));
        rt.spawn_worker("anti-entropy", miner.clone().anti_entropy_loop(workers));
        let registry = miner.metrics.registry.clone();
        rt.run(registry, || (true, serde_json::json!({})), shutdown).await
    }
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run(shutdown).await
}

/// Own sync's tip announcements keep the tip view (and block waits) current.
async fn hear_tips(miner: Arc<Miner>, stop: CancellationToken) -> Result<(), BusError> {
    let mut tips = miner.bus.subscribe::<TipAnnouncement>(uwl_bus::subjects::ANY_NODE).await?;
    loop {
        let ann = tokio::select! { _ = stop.cancelled() => break, a = tips.next() => match a { Some(a) => a, None => break } };
        if ann.node_id == miner.id {
            miner.observe_tip(ann.tip);
        }
    }
    Ok(())
}

/// Reconciles on sync's replacement hints (sync writes a chain-replaced
/// event only when it replaces blocks: a plain extension needs nothing
/// here, and mining checks its pairs against a tip it did not make), and
/// level-triggered on the timer (a hint lost on the way).
async fn reconcile_loop(miner: Arc<Miner>, stop: CancellationToken) -> Result<(), BusError> {
    let mut hints = miner.bus.subscribe::<Replaced>(&miner.id).await?;
    let mut timer = tokio::time::interval(miner.settings.reconcile_interval);
    loop {
        let level = tokio::select! {
            _ = stop.cancelled() => break,
            _ = timer.tick() => true,
            _ = hints.next() => false,
        };
        if let Err(e) = miner.reconcile_once(level).await {
            debug!(%e, "reconciliation deferred");
        }
    }
    Ok(())
}
