//! `uwl-metrics`: the cluster view for Prometheus (SPEC section 5). It asks
//! every node's sync and miner for their stats on a timer and keeps the
//! answers as gauges in its own registry, served on its admin port and on
//! the bus (`uwl.metrics.cluster`, which ingest exposes behind nginx).

use clap::Parser;
use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;
use std::collections::{BTreeMap, HashMap};
use uwl_bus::proto::{IngestReport, MinerQuery, MinerStats, SyncQuery, SyncStats};
use uwl_bus::{serve, subjects, Bus, RequestId};
use uwl_ledger::Genesis;
use uwl_telemetry::{CommonSettings, Health};

#[derive(Parser, Debug, Clone)]
#[command(name = "uwl-metrics", about = "Cluster view of the ledger for Prometheus")]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonSettings,
    #[arg(long, env = "GENESIS_FILE", default_value = "/config/genesis.json")]
    pub genesis_file: PathBuf,
    /// Nodes to watch besides the validators (followers).
    #[arg(long, env = "NODES", value_delimiter = ',')]
    pub nodes: Vec<String>,
    #[arg(long, env = "SCRAPE_INTERVAL_MS", default_value_t = 2_000)]
    pub scrape_interval_ms: u64,
    #[arg(long, env = "SCRAPE_TIMEOUT_MS", default_value_t = 500)]
    pub scrape_timeout_ms: u64,
}

struct Gauges {
    registry: Registry,
    up: IntGaugeVec,
    tip: IntGaugeVec,
    blocks: IntGaugeVec,
    replacements: IntGaugeVec,
    depth: IntGaugeVec,
    orphaned: IntGaugeVec,
    pending: IntGaugeVec,
    oldest: IntGaugeVec,
    requeued: IntGaugeVec,
    mined: IntGaugeVec,
    forwards: IntGaugeVec,
    stalls: IntGaugeVec,
    divergence: IntGauge,
}

impl Gauges {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("uwl".to_owned()), None)?;
        let g = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
            let v = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(v.clone()))?;
            Ok(v)
        };
        let gauges = Self {
            up: g("cluster_service_up", "1 if the node's service answered the last scrape", &["node", "service"])?,
            tip: g("cluster_tip_index", "Tip index by node", &["node"])?,
            blocks: g("cluster_chain_blocks", "Blocks in the node's chain by creator", &["node", "creator_node_id"])?,
            replacements: g("cluster_chain_replacements_total", "Chain replacements by node", &["node"])?,
            depth: g("cluster_last_replacement_depth", "Depth of the node's last replacement", &["node"])?,
            orphaned: g("cluster_orphaned_blocks_total", "Blocks orphaned by node", &["node"])?,
            pending: g("cluster_pending_pairs", "Pending pairs by node", &["node"])?,
            oldest: g("cluster_oldest_pending_age_seconds", "Age of the oldest pending pair by node", &["node"])?,
            requeued: g("cluster_requeued_total", "Pairs re-queued after replacements by node (since the miner started)", &["node"])?,
            mined: g("cluster_blocks_mined_total", "Blocks mined by node (since the miner started)", &["node"])?,
            forwards: g(
                "cluster_forwards_total",
                "Forwards to the leader by the node's ingest instances, by result (ok, timeout, no_responders, error, fallback_local)",
                &["node", "result"],
            )?,
            stalls: g(
                "cluster_bus_stalls_total",
                "Times a service's NATS connection delivered nothing for 6 s and was made again, by node and service",
                &["node", "service"],
            )?,
            divergence: IntGauge::new("cluster_tip_divergence_blocks", "Highest minus lowest tip index over answering nodes")?,
            registry: registry.clone(),
        };
        registry.register(Box::new(gauges.divergence.clone()))?;
        Ok(gauges)
    }
}

async fn scrape(bus: &Bus, g: &Gauges, nodes: &[String], timeout: Duration) {
    let rid = RequestId::new();
    let mut tips = Vec::new();
    for node in nodes {
        let sync: Result<SyncStats, _> = bus.request(subjects::sync_read(node), &SyncQuery::Stats, timeout, &rid).await;
        g.up.with_label_values(&[node, "sync"]).set(i64::from(sync.is_ok()));
        if let Ok(s) = sync {
            if let Some(t) = s.tip {
                g.tip.with_label_values(&[node]).set(t.index as i64);
                tips.push(t.index);
            }
            for (creator, n) in &s.blocks_by_creator {
                g.blocks.with_label_values(&[node, creator]).set(*n as i64);
            }
            g.replacements.with_label_values(&[node]).set(s.replacements_total as i64);
            g.depth.with_label_values(&[node]).set(s.last_replacement_depth as i64);
            g.orphaned.with_label_values(&[node]).set(s.orphaned_blocks_total as i64);
            g.stalls.with_label_values(&[node, "sync"]).set(s.bus_stalls_total as i64);
        }
        let miner: Result<MinerStats, _> = bus.request(subjects::miner_read(node), &MinerQuery::Stats, timeout, &rid).await;
        g.up.with_label_values(&[node, "miner"]).set(i64::from(miner.is_ok()));
        if let Ok(m) = miner {
            g.pending.with_label_values(&[node]).set(m.pending as i64);
            g.oldest.with_label_values(&[node]).set((m.oldest_pending_age_ms.unwrap_or(0) / 1_000) as i64);
            g.requeued.with_label_values(&[node]).set(m.requeued_total as i64);
            g.mined.with_label_values(&[node]).set(m.blocks_mined_total as i64);
            g.stalls.with_label_values(&[node, "miner"]).set(m.bus_stalls_total as i64);
        }
    }
    if let (Some(max), Some(min)) = (tips.iter().max(), tips.iter().min()) {
        g.divergence.set((max - min) as i64);
    }
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let genesis = Genesis::load(&settings.genesis_file)?;
    let mut nodes: Vec<String> = genesis.validators.iter().map(|v| v.node_id.clone()).collect();
    nodes.extend(settings.nodes.iter().cloned());
    let bus = Bus::connect(&settings.common.nats_url, &format!("uwl-metrics/{}", settings.common.node_id)).await?;
    let gauges = Arc::new(Gauges::new()?);
    let health_bus = bus.clone();
    let health = Arc::new(move || {
        let connected = health_bus.is_connected();
        Health { ready: connected, detail: serde_json::json!({"service": "metrics", "nats": connected}) }
    });
    let admin = uwl_telemetry::serve_admin(settings.common.admin_addr, gauges.registry.clone(), health, shutdown.clone()).await?;
    info!(%admin, ?nodes, "metrics ready");
    let g = gauges.clone();
    let server = tokio::spawn(serve(
        bus.clone(),
        subjects::METRICS_CLUSTER.to_owned(),
        Some("metrics"),
        8,
        shutdown.clone(),
        move |_: serde_json::Value, _| {
            let text = uwl_telemetry::render(&g.registry);
            async move { Ok(text) }
        },
    ));
    let mut reports = bus.subscribe(subjects::INGEST_REPORTS.to_owned()).await?;
    let mut by_instance: HashMap<String, IngestReport> = HashMap::new();
    let mut timer = tokio::time::interval(Duration::from_millis(settings.scrape_interval_ms));
    let timeout = Duration::from_millis(settings.scrape_timeout_ms);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = timer.tick() => scrape(&bus, &gauges, &nodes, timeout).await,
            m = futures::StreamExt::next(&mut reports) => {
                let Some(m) = m else { break };
                if let Ok(r) = serde_json::from_slice::<IngestReport>(&m.payload) {
                    by_instance.insert(r.instance.clone(), r);
                    let mut sums: BTreeMap<(String, String), u64> = BTreeMap::new();
                    for r in by_instance.values() {
                        for (result, n) in &r.forwards {
                            *sums.entry((r.node_id.clone(), result.clone())).or_default() += n;
                        }
                    }
                    for ((node, result), n) in sums {
                        gauges.forwards.with_label_values(&[&node, &result]).set(n as i64);
                    }
                }
            }
        }
    }
    let _ = server.await;
    bus.drain().await;
    Ok(())
}
