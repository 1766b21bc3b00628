//! `uwl-sync`: owns a node's chain store.
//!
//! It serves the chain to everyone (tip, block ranges by locator, balances,
//! receipts, identity look-ups, stats), accepts blocks from its own miner
//! (naming identities already in the chain), announces its tip, pulls from
//! peers on their announcements and on a timer with a locator so that only
//! blocks after the fork point travel, replaces its chain when fork choice
//! says so, and hands chain-replaced events to its miner from an outbox
//! written in the replacement's own transaction.

mod metrics;

use anyhow::Context;
use clap::Parser;
use metrics::Metrics;
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uwl_bus::proto::*;
use uwl_bus::{serve, subjects, Bus, BusError, RemoteError, RequestId};
use uwl_ledger::{
    check_fork, is_better, plan_adoption, AdoptError, Block, BlockError, Clock, Genesis, Plan, SystemClock, TipInfo, TxPair,
};
use uwl_store::{ChainStore, Replaced};
use uwl_telemetry::{CommonSettings, Health};

/// Most blocks a pull accumulates before it judges them.
const MAX_PULL_BLOCKS: usize = 20_000;

#[derive(Parser, Debug, Clone)]
#[command(name = "uwl-sync", about = "Owns a node's chain: serves it, accepts blocks, pulls from peers, replaces on forks")]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonSettings,
    /// Directory of this node's stores.
    #[arg(long, env = "DATA_DIR", default_value = "/data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "GENESIS_FILE", default_value = "/config/genesis.json")]
    pub genesis_file: PathBuf,
    /// Nodes to pull from (default: every validator but this node).
    #[arg(long, env = "PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Pull from every peer this often even without announcements (seed: 5-10 s).
    #[arg(long, env = "PULL_INTERVAL_MS", default_value_t = 5_000)]
    pub pull_interval_ms: u64,
    /// Announce the tip this often even when it did not change (freshness).
    #[arg(long, env = "ANNOUNCE_INTERVAL_MS", default_value_t = 1_000)]
    pub announce_interval_ms: u64,
    /// Timeout of one request to a peer's sync.
    #[arg(long, env = "PEER_TIMEOUT_MS", default_value_t = 2_000)]
    pub peer_timeout_ms: u64,
}

impl Settings {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.common.node_id.is_empty(), "NODE_ID must not be empty");
        anyhow::ensure!(self.pull_interval_ms >= 100, "PULL_INTERVAL_MS must be at least 100");
        anyhow::ensure!(self.announce_interval_ms >= 50, "ANNOUNCE_INTERVAL_MS must be at least 50");
        anyhow::ensure!(self.peer_timeout_ms >= 10, "PEER_TIMEOUT_MS must be at least 10");
        Ok(())
    }
}

struct Node {
    id: String,
    genesis: Genesis,
    bus: Bus,
    store: Mutex<ChainStore>,
    tip: watch::Sender<TipInfo>,
    peers: Vec<String>,
    metrics: Metrics,
    settings: Settings,
    blocks_read_at_start: u64,
}

enum Step {
    Adopted(Replaced, TipInfo),
    Known,
    NotBetter,
    Rejected(AdoptError),
}

impl Node {
    fn now(&self) -> u64 {
        SystemClock.now_ms()
    }

    /// Runs `f` on the store off the async runtime.
    async fn with_store<T: Send + 'static>(
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

    fn set_tip(&self, tip: TipInfo) {
        self.metrics.tip_index.set(tip.index as i64);
        self.tip.send_replace(tip);
    }

    async fn read(self: Arc<Self>, q: SyncQuery) -> Result<Value, RemoteError> {
        let id = self.id.clone();
        let me = self.clone();
        let budget = self.bus.reply_budget();
        self.with_store(move |s| -> uwl_store::Result<Value> {
            let tip = s.tip().tip_info();
            Ok(match q {
                SyncQuery::Tip => json(&TipReply { node_id: id, tip }),
                SyncQuery::Blocks { locator, from, limit } => {
                    let mut start = from;
                    for h in &locator {
                        if let Some(i) = s.index_of(h)? {
                            start = i + 1;
                            break;
                        }
                    }
                    let mut blocks = s.blocks(start, u64::from(limit.clamp(1, 1_000)))?;
                    blocks.truncate(fitting(&blocks, budget));
                    json(&BlocksReply { tip, blocks })
                }
                SyncQuery::Balance { client_id } => json(&BalanceReply { balance: s.balance(&client_id)?, tip }),
                SyncQuery::Receipt { receipt_id } => json(&ReceiptReply { landed: s.receipt(&receipt_id)?, tip }),
                SyncQuery::Contains { ids } => {
                    let landed = ids.iter().map(|id| s.landed(id)).collect::<uwl_store::Result<Vec<_>>>()?;
                    json(&ContainsReply { landed, tip })
                }
                SyncQuery::Stats => {
                    let st = s.stats()?;
                    json(&SyncStats {
                        node_id: id,
                        tip: Some(tip),
                        blocks_by_creator: st.blocks_by_creator,
                        replacements_total: st.replacements_total,
                        last_replacement_depth: st.last_replacement_depth,
                        orphaned_blocks_total: st.orphaned_blocks_total,
                        blocks_read_at_start: me.blocks_read_at_start,
                        bus_stalls_total: me.bus.stalls(),
                    })
                }
            })
        })
        .await?
        .map_err(RemoteError::internal)
    }

    /// A block from this node's miner: it must extend the tip.
    async fn append(self: Arc<Self>, req: AppendRequest) -> Result<AppendReply, RemoteError> {
        let (genesis, now) = (self.genesis.clone(), self.now());
        let block = req.block;
        let reply = self
            .with_store(move |s| -> uwl_store::Result<AppendReply> {
                let tip = s.tip().tip_info();
                if block.prev_hash != tip.hash || block.index != tip.index + 1 {
                    return Ok(AppendReply::NotOnTip { tip });
                }
                let slice = s.slice_for(std::slice::from_ref(&block))?;
                match check_fork(&slice, &tip, std::slice::from_ref(&block), &genesis, now) {
                    Ok(()) => {}
                    Err(e) if matches!(e.error, BlockError::DuplicateIdentity(_)) && !slice.landed.is_empty() => {
                        let ids = block.transactions.iter().map(|p| p.identity()).filter(|id| slice.landed.contains_key(id));
                        return Ok(AppendReply::Duplicates { ids: ids.collect(), tip });
                    }
                    Err(e) => {
                        let pairs = match &e.error {
                            BlockError::MalformedPair { position, .. } => {
                                block.transactions.get(*position).map(TxPair::identity).into_iter().collect()
                            }
                            BlockError::DuplicateIdentity(id) => vec![id.clone()],
                            _ => Vec::new(),
                        };
                        return Ok(AppendReply::Invalid { reason: e.to_string(), pairs });
                    }
                }
                match s.apply(tip.index, std::slice::from_ref(&block), now) {
                    Ok(_) => Ok(AppendReply::Appended { tip: block.tip_info() }),
                    Err(uwl_store::StoreError::BalanceOverflow { client_id }) => {
                        let pairs = block.transactions.iter().filter(|p| p.client_id() == client_id).map(TxPair::identity).collect();
                        Ok(AppendReply::Invalid { reason: format!("the balance of {client_id:?} would overflow"), pairs })
                    }
                    Err(e) => Err(e),
                }
            })
            .await?
            .map_err(RemoteError::internal)?;
        if let AppendReply::Appended { tip } = &reply {
            self.metrics.blocks_appended.with_label_values(&["miner"]).inc();
            self.set_tip(*tip);
        }
        Ok(reply)
    }

    /// Chain-replaced events, in a reply bounded in bytes: whole events
    /// while they fit, else one page of the first event's orphaned blocks.
    async fn events(self: Arc<Self>, req: EventsRequest) -> Result<EventsReply, RemoteError> {
        let budget = self.bus.reply_budget();
        self.with_store(move |s| -> uwl_store::Result<EventsReply> {
            if let Some(seq) = req.ack_through {
                s.delete_events_through(seq)?;
            }
            let mut events = s.events_after(req.after, u64::from(req.limit.clamp(1, 100)))?;
            if let Some((_, first)) = events.first_mut() {
                let skip = (req.skip_blocks as usize).min(first.orphaned.len());
                first.orphaned.drain(..skip);
            }
            let whole = fitting(&events, budget);
            let mut partial = false;
            if let Some((_, first)) = events.first_mut() {
                if whole == 1 && serde_json::to_vec(&*first).map_or(usize::MAX, |v| v.len()) > budget {
                    let total = first.orphaned.len();
                    first.orphaned.truncate(fitting(&first.orphaned, budget / 2));
                    partial = first.orphaned.len() < total;
                }
            }
            events.truncate(whole);
            Ok(EventsReply { events, tip: s.tip().tip_info(), partial })
        })
        .await?
        .map_err(RemoteError::internal)
    }

    /// Locator: our tip, then exponentially older blocks, then block 0.
    async fn locator(self: &Arc<Self>) -> Result<Vec<uwl_ledger::Hash32>, RemoteError> {
        self.with_store(|s| {
            let tip = s.tip().index;
            let mut idx = Vec::new();
            let mut step = 1;
            let mut i = tip;
            while i > 0 {
                idx.push(i);
                i = i.saturating_sub(step);
                if idx.len() > 8 {
                    step *= 2;
                }
            }
            idx.push(0);
            s.hashes_at(&idx)
        })
        .await?
        .map_err(RemoteError::internal)
    }

    /// Pulls `peer`'s blocks after our common point and adopts them if they win.
    async fn pull(self: &Arc<Self>, peer: &str) -> Result<&'static str, BusError> {
        let rid = RequestId::new();
        let timeout = Duration::from_millis(self.settings.peer_timeout_ms);
        let mut locator = self.locator().await.map_err(BusError::Remote)?;
        let mut incoming: Vec<Block> = Vec::new();
        let mut result = "known";
        loop {
            let q = SyncQuery::Blocks { locator: locator.clone(), from: 1, limit: 500 };
            let reply: BlocksReply = self.bus.request(subjects::sync_read(peer), &q, timeout, &rid).await?;
            let Some(last) = reply.blocks.last().cloned() else { break };
            let more = last.index < reply.tip.index;
            incoming.extend(reply.blocks);
            let batch = incoming.clone();
            let (genesis, now) = (self.genesis.clone(), self.now());
            let step = self
                .with_store(move |s| -> uwl_store::Result<Step> {
                    let slice = s.slice_for(&batch)?;
                    Ok(match plan_adoption(&slice, &batch, &genesis, now) {
                        Ok(Plan::Adopt { fork_point, blocks, deferred }) => {
                            if let Some(d) = deferred {
                                debug!(%d, "part of the candidate deferred");
                            }
                            let r = s.apply(fork_point.index, &blocks, now)?;
                            Step::Adopted(r, s.tip().tip_info())
                        }
                        Ok(Plan::Known) => Step::Known,
                        Ok(Plan::NotBetter { .. }) => Step::NotBetter,
                        Err(e) => Step::Rejected(e),
                    })
                })
                .await
                .map_err(BusError::Remote)?
                .map_err(|e| BusError::Remote(RemoteError::internal(e)))?;
            match step {
                Step::Adopted(replaced, tip) => {
                    result = self.adopted(peer, replaced, tip, incoming.len()).await;
                    incoming.clear();
                }
                Step::Known => incoming.clear(),
                Step::NotBetter => result = "not_better",
                Step::Rejected(AdoptError::Deferred(e)) => {
                    debug!(peer, %e, "candidate deferred");
                    return Ok("deferred");
                }
                Step::Rejected(e) => {
                    warn!(peer, %e, "candidate rejected");
                    return Ok("rejected");
                }
            }
            if !more || incoming.len() > MAX_PULL_BLOCKS {
                break;
            }
            locator = vec![last.hash];
        }
        Ok(result)
    }

    async fn adopted(self: &Arc<Self>, peer: &str, replaced: Replaced, tip: TipInfo, received: usize) -> &'static str {
        self.set_tip(tip);
        self.metrics.blocks_appended.with_label_values(&["peer"]).inc_by(received as u64);
        if replaced.orphaned.is_empty() {
            return "extended";
        }
        let depth = replaced.orphaned.len();
        self.metrics.replacements.inc();
        self.metrics.replacement_depth.observe(depth as f64);
        for b in &replaced.orphaned {
            self.metrics.orphaned_blocks.with_label_values(&[&b.creator_node_id]).inc();
        }
        if let Some((seq, ev)) = &replaced.event {
            info!(
                peer,
                fork_point = ev.fork_point.index,
                depth,
                old_tip = ev.old_tip.index,
                new_tip = ev.new_tip.index,
                event = seq,
                "chain replaced"
            );
            if let Err(e) = self.bus.publish(subjects::sync_replaced(&self.id), seq).await {
                warn!(%e, "replacement hint not published (the miner polls the outbox)");
            }
        }
        "replaced"
    }

    async fn announce(&self) {
        let ann = TipAnnouncement { node_id: self.id.clone(), tip: *self.tip.borrow() };
        if let Err(e) = self.bus.publish(subjects::TIPS.to_owned(), &ann).await {
            debug!(%e, "announcement not published");
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Starts sync and runs it until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    settings.validate()?;
    let genesis = Genesis::load(&settings.genesis_file)?;
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let path = settings.data_dir.join("chain.sqlite");
    let store = ChainStore::open(&path, &genesis).with_context(|| format!("opening {}", path.display()))?;
    let tip = store.tip().tip_info();
    let blocks_read_at_start = store.blocks_read();
    let id = settings.common.node_id.clone();
    info!(node = %id, tip = tip.index, blocks_read = blocks_read_at_start, "chain store open");

    let peers = if settings.peers.is_empty() {
        genesis.validators.iter().map(|v| v.node_id.clone()).filter(|n| *n != id).collect()
    } else {
        settings.peers.clone()
    };
    let bus = Bus::connect(&settings.common.nats_url, &format!("uwl-sync/{id}")).await?;
    let metrics = Metrics::new(&id)?;
    metrics.startup_blocks_read.set(blocks_read_at_start as i64);
    metrics.tip_index.set(tip.index as i64);
    let (tip_tx, _) = watch::channel(tip);
    let node = Arc::new(Node {
        id: id.clone(),
        genesis,
        bus: bus.clone(),
        store: Mutex::new(store),
        tip: tip_tx,
        peers,
        metrics: metrics.clone(),
        settings: settings.clone(),
        blocks_read_at_start,
    });

    let health_bus = bus.clone();
    let health_node = node.clone();
    let health = Arc::new(move || {
        let connected = health_bus.is_connected();
        Health {
            ready: connected,
            detail: serde_json::json!({"service": "sync", "nats": connected, "tip": health_node.tip.borrow().index}),
        }
    });
    let admin = uwl_telemetry::serve_admin(settings.common.admin_addr, metrics.registry.clone(), health, shutdown.clone()).await?;
    info!(%admin, "admin server listening");

    let mut tasks = JoinSet::new();
    let n = node.clone();
    tasks.spawn(serve(bus.clone(), subjects::sync_read(&id), None, 64, shutdown.clone(), move |q, _| n.clone().read(q)));
    let n = node.clone();
    tasks.spawn(serve(bus.clone(), subjects::sync_append(&id), None, 1, shutdown.clone(), move |q, _| n.clone().append(q)));
    let n = node.clone();
    tasks.spawn(serve(bus.clone(), subjects::sync_events(&id), None, 1, shutdown.clone(), move |q, _| n.clone().events(q)));

    // Pull requests: announcements of better tips, and the timer.
    let (pull_tx, mut pull_rx) = mpsc::channel::<String>(64);
    let mut tips = bus.subscribe(subjects::TIPS.to_owned()).await?;
    let (n, stop) = (node.clone(), shutdown.clone());
    let tx = pull_tx.clone();
    tasks.spawn(async move {
        use futures::StreamExt as _;
        loop {
            let msg = tokio::select! { _ = stop.cancelled() => break, m = tips.next() => match m { Some(m) => m, None => break } };
            let Ok(ann) = serde_json::from_slice::<TipAnnouncement>(&msg.payload) else { continue };
            if ann.node_id != n.id && is_better(&ann.tip, &n.tip.borrow()) {
                let _ = tx.try_send(ann.node_id);
            }
        }
        Ok(())
    });
    let (n, stop) = (node.clone(), shutdown.clone());
    tasks.spawn(async move {
        let mut timer = tokio::time::interval(Duration::from_millis(n.settings.pull_interval_ms));
        loop {
            let mut wanted: HashSet<String> = HashSet::new();
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = timer.tick() => wanted.extend(n.peers.iter().cloned()),
                p = pull_rx.recv() => match p { Some(p) => { wanted.insert(p); }, None => break },
            }
            while let Ok(p) = pull_rx.try_recv() {
                wanted.insert(p);
            }
            for peer in wanted {
                let result = match n.pull(&peer).await {
                    Ok(r) => r,
                    Err(e) => {
                        debug!(peer, %e, "pull failed");
                        e.label()
                    }
                };
                n.metrics.pulls.with_label_values(&[result]).inc();
            }
        }
        Ok(())
    });
    // Announcements: on every tip change, and as a heartbeat.
    let (n, stop) = (node.clone(), shutdown.clone());
    tasks.spawn(async move {
        let mut changes = n.tip.subscribe();
        let mut timer = tokio::time::interval(Duration::from_millis(n.settings.announce_interval_ms));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = timer.tick() => {}
                c = changes.changed() => if c.is_err() { break },
            }
            n.announce().await;
        }
        Ok(())
    });

    shutdown.cancelled().await;
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Err(e)) => warn!(%e, "task ended with an error"),
            Err(e) => warn!(%e, "task panicked"),
            Ok(Ok(())) => {}
        }
    }
    bus.drain().await;
    info!("sync stopped");
    Ok(())
}
