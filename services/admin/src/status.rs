//! `uwl-admin status`: every node of the genesis as the bus sees it now:
//! whether its sync and miner answer, its tip, the peers its sync hears
//! (their tips and how long ago), its pending pairs and their age, and the
//! leader of the best tip heard. Works while the cluster runs
//! (read-only queries, as the admin user).

use crate::Connect;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};
use uwl_bus::proto::{MinerStats, MinerStatsQuery, SyncStats, SyncStatsQuery};
use uwl_bus::RequestId;
use uwl_ledger::{current_leader, is_better, TipInfo};

#[derive(clap::Args, Debug, Clone)]
pub struct Status {
    #[command(flatten)]
    pub connect: Connect,
}

/// One node as it answered (an error's text when it did not).
#[derive(Debug)]
pub struct NodeStatus {
    pub node: String,
    pub sync: Result<SyncStats, String>,
    pub miner: Result<MinerStats, String>,
}

/// The cluster as it answered.
#[derive(Debug)]
pub struct ClusterStatus {
    pub nodes: Vec<NodeStatus>,
    /// The best tip any node answered with, and its leader now.
    pub leader: Option<(TipInfo, String)>,
}

impl ClusterStatus {
    /// Every node's sync and miner answered, on one chain.
    pub fn healthy(&self) -> bool {
        let tips: Vec<TipInfo> = self.nodes.iter().filter_map(|n| n.sync.as_ref().ok()?.tip).collect();
        self.nodes.iter().all(|n| n.sync.is_ok() && n.miner.is_ok()) && TipInfo::spread(&tips).is_some_and(|(_, chains)| chains == 1)
    }

    pub fn report(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let sync = match &n.sync {
                Ok(s) => s.tip.map_or("sync up, no tip".into(), |t| format!("sync up, tip {} {}", t.index, &t.hash.to_hex()[..12])),
                Err(e) => format!("sync DOWN ({e})"),
            };
            let miner = match &n.miner {
                Ok(m) => format!("miner up, {} pending (oldest {:.1} s)", m.pending, m.oldest_pending_age_ms.unwrap_or(0) as f64 / 1_000.0),
                Err(e) => format!("miner DOWN ({e})"),
            };
            let _ = writeln!(out, "{}: {sync}; {miner}", n.node);
            if let Ok(s) = &n.sync {
                let peers: Vec<String> = s
                    .peers
                    .iter()
                    .map(|p| format!("{} at {} ({:.1} s ago)", p.node_id, p.tip.index, p.heard_ms_ago as f64 / 1_000.0))
                    .collect();
                let _ = writeln!(out, "  peers heard: {}", if peers.is_empty() { "none".to_owned() } else { peers.join(", ") });
            }
            for a in n.miner.as_ref().map(|m| m.set_aside.as_slice()).unwrap_or_default() {
                let _ = writeln!(out, "  set aside: receipt {} ({})", a.receipt_id.to_hex(), a.reason);
            }
        }
        match &self.leader {
            Some((tip, leader)) => {
                let _ = writeln!(out, "leader now: {leader} (on the best tip heard, {} {})", tip.index, &tip.hash.to_hex()[..12]);
            }
            None => out.push_str("leader now: unknown (no sync answered)\n"),
        }
        out.push_str(if self.healthy() { "cluster: every service answers, one chain\n" } else { "cluster: NOT healthy\n" });
        out
    }
}

/// Asks every validator's sync and miner for their stats, at once.
pub async fn status(cfg: &Status) -> anyhow::Result<ClusterStatus> {
    let genesis = cfg.connect.genesis()?;
    let bus = cfg.connect.bus().await?;
    let timeout = cfg.connect.timeout;
    let rid = RequestId::new();
    let asks = genesis.validators.iter().map(|v| {
        let (bus, rid, node) = (&bus, &rid, v.node_id.clone());
        async move {
            let (sync, miner) = tokio::join!(bus.ask(&node, SyncStatsQuery {}, timeout, rid), bus.ask(&node, MinerStatsQuery {}, timeout, rid));
            NodeStatus { node, sync: sync.map_err(|e| e.to_string()), miner: miner.map_err(|e| e.to_string()) }
        }
    });
    let nodes = futures::future::join_all(asks).await;
    let best = nodes.iter().filter_map(|n| n.sync.as_ref().ok()?.tip).reduce(|a, b| if is_better(&b, &a) { b } else { a });
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let leader = best.map(|t| (t, current_leader(&genesis, &t, now).node_id.clone()));
    Ok(ClusterStatus { nodes, leader })
}
