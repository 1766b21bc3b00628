//! `uwl-metrics`: the cluster view for Prometheus (README: Operations). It asks
//! every node's sync and miner for their stats on a timer and keeps the
//! answers as gauges in its own registry, served on its admin port and on
//! the bus (`uwl.metrics.cluster`, which ingest exposes behind nginx).

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use clap::Parser;
use futures::StreamExt;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;
use uwl_bus::proto::{ClusterView, IngestReport, MinerStatsQuery, SyncStatsQuery};
use uwl_bus::{serve, Bus, BusError, RequestId};
use uwl_ledger::{Genesis, TipInfo};
use uwl_runtime::{millis, CommonSettings, Runtime};

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
    #[arg(long = "scrape-interval-ms", env = "SCRAPE_INTERVAL_MS", default_value = "2000", value_parser = millis)]
    pub scrape_interval: Duration,
    #[arg(long = "scrape-timeout-ms", env = "SCRAPE_TIMEOUT_MS", default_value = "500", value_parser = millis)]
    pub scrape_timeout: Duration,
}

#[derive(Debug)]
struct Gauges {
    registry: Registry,
    up: IntGaugeVec,
    tip: IntGaugeVec,
    blocks: IntGaugeVec,
    replacements: IntCounterVec,
    depth: IntGaugeVec,
    orphaned: IntCounterVec,
    pending: IntGaugeVec,
    oldest: IntGaugeVec,
    requeued: IntCounterVec,
    mined: IntCounterVec,
    forwards: IntCounterVec,
    stalls: IntCounterVec,
    divergence: IntGauge,
    tip_hashes: IntGauge,
}

impl Gauges {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("uwl".to_owned()), None)?;
        let g = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
            let v = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(v.clone()))?;
            Ok(v)
        };
        // Other processes' counters, kept as counters (see `relay`).
        let c = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let v = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(v.clone()))?;
            Ok(v)
        };
        let gauges = Self {
            up: g("cluster_service_up", "1 if the node's service answered the last scrape", &["node", "service"])?,
            tip: g("cluster_tip_index", "Tip index by node", &["node"])?,
            blocks: g("cluster_chain_blocks", "Blocks in the node's chain by creator", &["node", "creator_node_id"])?,
            replacements: c("cluster_chain_replacements_total", "Chain replacements by node", &["node"])?,
            depth: g("cluster_last_replacement_depth", "Depth of the node's last replacement", &["node"])?,
            orphaned: c("cluster_orphaned_blocks_total", "Blocks orphaned by node", &["node"])?,
            pending: g("cluster_pending_pairs", "Pending pairs by node", &["node"])?,
            oldest: g("cluster_oldest_pending_age_seconds", "Age of the oldest pending pair by node", &["node"])?,
            requeued: c("cluster_requeued_total", "Pairs re-queued after replacements by node (since the miner started)", &["node"])?,
            mined: c("cluster_blocks_mined_total", "Blocks mined by node (since the miner started)", &["node"])?,
            forwards: c(
                "cluster_forwards_total",
                "Forwards to the leader by the node's ingest instances, by result (ok, timeout, no_responders, error, fallback_local)",
                &["node", "result"],
            )?,
            stalls: c(
                "cluster_bus_stalls_total",
                "Times a service's NATS connection delivered nothing for 6 s and was made again, by node and service",
                &["node", "service"],
            )?,
            divergence: IntGauge::new("cluster_tip_divergence_blocks", "Highest minus lowest tip index over answering nodes")?,
            tip_hashes: IntGauge::new(
                "cluster_tip_hashes",
                "Distinct tip hashes over answering nodes: 1 when every node is on the same chain (two chains of equal height read 2)",
            )?,
            registry: registry.clone(),
        };
        registry.register(Box::new(gauges.divergence.clone()))?;
        registry.register(Box::new(gauges.tip_hashes.clone()))?;
        Ok(gauges)
    }
}

async fn scrape(bus: &Bus, g: &Gauges, nodes: &[String], timeout: Duration) {
    let rid = RequestId::new();
    let mut tips = Vec::new();
    for node in nodes {
        let sync = bus.ask(node, SyncStatsQuery {}, timeout, &rid).await;
        g.up.with_label_values(&[node, "sync"]).set(i64::from(sync.is_ok()));
        if let Ok(s) = sync {
            if let Some(t) = s.tip {
                g.tip.with_label_values(&[node]).set(t.index as i64);
                tips.push(t);
            }
            for (creator, n) in &s.blocks_by_creator {
                g.blocks.with_label_values(&[node, creator]).set(*n as i64);
            }
            relay(&g.replacements, &[node], s.replacements_total);
            g.depth.with_label_values(&[node]).set(s.last_replacement_depth as i64);
            relay(&g.orphaned, &[node], s.orphaned_blocks_total);
            relay(&g.stalls, &[node, "sync"], s.bus_stalls_total);
        }
        let miner = bus.ask(node, MinerStatsQuery {}, timeout, &rid).await;
        g.up.with_label_values(&[node, "miner"]).set(i64::from(miner.is_ok()));
        if let Ok(m) = miner {
            g.pending.with_label_values(&[node]).set(m.pending as i64);
            g.oldest.with_label_values(&[node]).set((m.oldest_pending_age_ms.unwrap_or(0) / 1_000) as i64);
            relay(&g.requeued, &[node], m.requeued_total);
            relay(&g.mined, &[node], m.blocks_mined_total);
            relay(&g.stalls, &[node, "miner"], m.bus_stalls_total);
        }
    }
    if let Some((blocks, hashes)) = TipInfo::spread(&tips) {
        g.divergence.set(blocks as i64);
        g.tip_hashes.set(hashes as i64);
    }
}

/// Shows another process's counter as this registry's counter: it follows
/// the value read; when the value falls (its owner restarted and counts from
/// 0) the counter is reset, a reset Prometheus' `rate()` and `increase()`
/// handle as they handle any counter's.
fn relay(c: &IntCounterVec, labels: &[&str], value: u64) {
    let c = c.with_label_values(labels);
    let now = c.get();
    if value < now {
        c.reset();
        c.inc_by(value);
    } else {
        c.inc_by(value - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_counter_follows_its_source_and_resets_when_the_source_restarts() {
        let c = IntCounterVec::new(Opts::new("x_total", "x"), &["node"]).expect("counter");
        let at = |v| {
            relay(&c, &["n"], v);
            c.with_label_values(&["n"]).get()
        };
        assert_eq!([at(5), at(9), at(9), at(2), at(4)], [5, 9, 9, 2, 4]);
    }
}

/// The metrics service, built (bus connected, admin address bound), ready to run.
#[derive(Debug)]
pub struct App {
    rt: Runtime,
    nodes: Vec<String>,
    settings: Settings,
}

pub async fn build(settings: Settings) -> anyhow::Result<App> {
    let genesis = Genesis::load(&settings.genesis_file)?;
    let mut nodes: Vec<String> = genesis.validators.iter().map(|v| v.node_id.clone()).collect();
    nodes.extend(settings.nodes.iter().cloned());
    Ok(App { rt: Runtime::start(uwl_bus::Role::Metrics, &settings.common).await?, nodes, settings })
}

impl App {
    pub fn admin_addr(&self) -> SocketAddr {
        self.rt.admin_addr()
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { mut rt, nodes, settings } = self;
        let gauges = Arc::new(Gauges::new()?);
        info!(?nodes, "watching");
        let (bus, node, stop) = (rt.bus().clone(), rt.node_id().to_owned(), rt.stopping());
        let g = gauges.clone();
        rt.spawn(
            "serve cluster view",
            serve(bus.clone(), &node, Some("metrics"), 8, stop.clone(), move |_: ClusterView, _| {
                let text = uwl_runtime::render(&g.registry);
                async move { Ok(text) }
            }),
        );
        rt.spawn("scrape", scrape_loop(bus, gauges.clone(), nodes, settings, stop));
        rt.run(gauges.registry.clone(), || (true, serde_json::json!({})), shutdown).await
    }
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run(shutdown).await
}

/// Scrapes every node on the timer; sums the ingest instances' reports.
async fn scrape_loop(bus: Bus, gauges: Arc<Gauges>, nodes: Vec<String>, settings: Settings, stop: CancellationToken) -> Result<(), BusError> {
    let mut reports = bus.subscribe::<IngestReport>("").await?;
    let mut by_instance: HashMap<String, IngestReport> = HashMap::new();
    let mut timer = tokio::time::interval(settings.scrape_interval);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = timer.tick() => scrape(&bus, &gauges, &nodes, settings.scrape_timeout).await,
            r = reports.next() => {
                let Some(r) = r else { break };
                by_instance.insert(r.instance.clone(), r);
                let mut sums: BTreeMap<(String, String), u64> = BTreeMap::new();
                for r in by_instance.values() {
                    for (result, n) in &r.forwards {
                        *sums.entry((r.node_id.clone(), result.clone())).or_default() += n;
                    }
                }
                for ((node, result), n) in sums {
                    relay(&gauges.forwards, &[&node, &result], n);
                }
            }
        }
    }
    Ok(())
}
