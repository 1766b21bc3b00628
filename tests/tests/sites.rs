//! Three validators as three separate deployments (`deploy/site`, one
//! compose project and Docker network each, joined only through published
//! NATS route ports), from one setting (`VALIDATORS`), under load through
//! every site's ingest:
//!
//! 1. together (no delay between sites): the baseline;
//! 2. far apart: 25 ms ± 5 ms, then 50 ms ± 10 ms each way on every
//!    route, and 1% of the packets lost either way; fork rate,
//!    replacements and submit latency against the baseline
//!    (docs/capacity.md models them);
//! 3. together again: the leader's miner killed and restarted, then one
//!    site cut off from the other two and joined again.
//!
//! Then: every site on one chain within 20 s, no acknowledged reward lost
//! or paid twice.

// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use anyhow::Context;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uwl_tests::faults::{check, load, History, Op, Url};
use uwl_tests::sites::Sites;
use uwl_tests::*;

const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
/// Closed-loop clients per site's ingest.
const CLIENTS_PER_SITE: usize = 2;
const CLIENTS: usize = CLIENTS_PER_SITE * NODES.len();
/// One measured phase's length.
const PHASE: Duration = Duration::from_secs(25);

/// What one phase measured.
#[derive(Debug)]
struct Phase {
    acknowledged: usize,
    failed: usize,
    mean_ms: f64,
    p50_ms: u64,
    p99_ms: u64,
    blocks: f64,
    orphaned: f64,
    replacements: f64,
}

impl Phase {
    fn fork_rate(&self) -> f64 {
        if self.blocks + self.orphaned == 0.0 { 0.0 } else { self.orphaned / (self.blocks + self.orphaned) }
    }

    fn line(&self, name: &str) -> String {
        let secs = PHASE.as_secs_f64();
        // a closed loop: each client submits, then pauses (the load's 50 ms)
        let closed_loop = CLIENTS as f64 / ((self.mean_ms + 50.0) / 1_000.0);
        format!(
            "sites {name}: {} acknowledged ({} failed) in {} s ({:.1}/s; {CLIENTS} clients / (mean latency + 50 ms) = {closed_loop:.1}/s), submit latency mean {:.0} ms p50 {} ms p99 {} ms, {} blocks (one every {:.0} ms), fork rate {:.1}% ({} orphaned), {} replacements",
            self.acknowledged,
            self.failed,
            PHASE.as_secs(),
            self.acknowledged as f64 / secs,
            self.mean_ms,
            self.p50_ms,
            self.p99_ms,
            self.blocks,
            secs * 1_000.0 / self.blocks.max(1.0),
            self.fork_rate() * 100.0,
            self.orphaned,
            self.replacements
        )
    }
}

/// Summed over every site's sync: blocks orphaned, chain replacements.
fn fork_counters(sites: &Sites) -> anyhow::Result<(f64, f64)> {
    let mut orphaned = 0.0;
    let mut replacements = 0.0;
    for n in &sites.nodes {
        // by creator: no series until a block is orphaned
        orphaned += sites.metric(n, "sync", "uwl_sync_orphaned_blocks_total")?.unwrap_or(0.0);
        replacements += sites.metric(n, "sync", "uwl_sync_chain_replacements_total")?.context("sync exports no uwl_sync_chain_replacements_total")?;
    }
    Ok((orphaned, replacements))
}

/// Runs `PHASE` of the load and reports it: submissions sent in the phase,
/// and the fork counters' and tip's change over it.
async fn measure(sites: &Sites, history: &History) -> anyhow::Result<Phase> {
    let (o0, r0) = fork_counters(sites)?;
    let tip0 = sites.chain("node-1").await?.last().map_or(0, |b| b.index);
    let from = sites.started.elapsed().as_millis() as u64;
    tokio::time::sleep(PHASE).await;
    let to = sites.started.elapsed().as_millis() as u64;
    let (o1, r1) = fork_counters(sites)?;
    let tip1 = sites.chain("node-1").await?.last().map_or(0, |b| b.index);
    let ops: Vec<Op> = history.snapshot().into_iter().filter(|o| o.kind == "submit" && (from..to).contains(&o.at_ms)).collect();
    let mut took: Vec<u64> = ops.iter().filter(|o| o.code == 200).map(|o| o.took_ms).collect();
    took.sort_unstable();
    let pct = |p: f64| took.get(((took.len() as f64 * p) as usize).min(took.len().saturating_sub(1))).copied().unwrap_or(0);
    Ok(Phase {
        acknowledged: took.len(),
        failed: ops.len() - took.len(),
        mean_ms: took.iter().sum::<u64>() as f64 / took.len().max(1) as f64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        blocks: (tip1 - tip0) as f64,
        orphaned: o1 - o0,
        replacements: r1 - r0,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_sites_far_apart_then_a_kill_and_a_one_against_two_partition() -> anyhow::Result<()> {
    let _guard = serial();
    let sites = Sites::up("sites", &NODES).await?;
    let result = scenario(&sites).await;
    if result.is_err() {
        sites.save_logs("sites");
    }
    result
}

async fn scenario(sites: &Sites) -> anyhow::Result<()> {
    let history = Arc::new(History::default());
    let stop = CancellationToken::new();
    let entries: Vec<(String, Url)> = sites.ingest.iter().map(|(n, h)| (n.clone(), Arc::new(std::sync::Mutex::new(h.base.clone())))).collect();
    let load = tokio::spawn(load(entries, CLIENTS_PER_SITE, history.clone(), sites.started, stop.clone()));
    let mut windows = Vec::new();

    // 1. together
    tokio::time::sleep(Duration::from_secs(5)).await;
    let together = measure(sites, &history).await?;
    figure(together.line("together"));

    // 2. far apart, at two distances (a few seconds to settle first:
    // connections under way); docs/capacity.md predicts the latency each
    // adds from the other
    let t = sites.started.elapsed().as_millis() as u64;
    let dropped0 = sites.dropped_packets()?;
    let mut apart = Vec::new();
    for (delay, jitter) in [(25, 5), (50, 10)] {
        sites.set_far_apart(Duration::from_millis(delay), Duration::from_millis(jitter), 0.01)?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let phase = measure(sites, &history).await?;
        figure(phase.line(&format!("{delay} ms ± {jitter} ms apart, 1% loss")));
        anyhow::ensure!(phase.acknowledged > 0, "no submission acknowledged {delay} ms apart: {phase:?}");
        anyhow::ensure!(phase.p50_ms > together.p50_ms + delay, "the delay did not show in the submissions' latency: {phase:?} against {together:?}");
        apart.push((delay as f64, phase.mean_ms - together.mean_ms));
    }
    let dropped = sites.dropped_packets()? - dropped0;
    sites.set_far_apart(Duration::ZERO, Duration::ZERO, 0.0)?;
    windows.push((t, sites.started.elapsed().as_millis() as u64));
    anyhow::ensure!(dropped > 0, "the loss rules dropped no packet: the routes did not run through the relays");
    // The model: the delay adds k one-way trips to a submission's mean
    // latency (docs/capacity.md), k measured at the far distance.
    let k = apart[1].1 / apart[1].0;
    let predicted = k * apart[0].0;
    let off = (apart[0].1 - predicted) / predicted;
    figure(format!(
        "sites far apart: {dropped} packets dropped; latency added: {:.0} ms at {} ms, {:.0} ms at {} ms; k = {k:.2} one-way delays; predicted at {} ms from k: {predicted:.0} ms, measured {:.0} ms ({:+.0}%)",
        apart[0].1, apart[0].0, apart[1].1, apart[1].0, apart[0].0, apart[0].1, off * 100.0
    ));
    anyhow::ensure!(off.abs() <= 0.5, "the latency the delay adds is not proportional to it: {apart:?}");

    // 3. the leader's miner killed, then started again
    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = sites.leader("node-1").await?;
    let t = sites.started.elapsed().as_millis() as u64;
    sites.kill(&leader, "miner")?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    sites.start(&leader, "miner")?;
    windows.push((t, sites.started.elapsed().as_millis() as u64));
    tokio::time::sleep(Duration::from_secs(8)).await;

    // 4. one site against two
    let t = sites.started.elapsed().as_millis() as u64;
    let forks_before = fork_counters(sites)?;
    sites.isolate("node-3");
    tokio::time::sleep(Duration::from_secs(15)).await;
    sites.rejoin("node-3");
    let rejoined = Instant::now();
    windows.push((t, sites.started.elapsed().as_millis() as u64));
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    load.await?;

    // one chain everywhere within 20 s of the heal
    let limit = Duration::from_secs(20).saturating_sub(rejoined.elapsed());
    let chains = wait_for("every site on one chain", limit, || async {
        let mut chains = BTreeMap::new();
        for n in &sites.nodes {
            chains.insert(n.clone(), sites.chain(n).await?);
        }
        let tips: Vec<_> = chains.values().map(|c| c.last().map(|b| b.hash)).collect();
        Ok(tips.windows(2).all(|w| w[0] == w[1]).then_some(chains))
    })
    .await?;
    figure(format!("sites: one chain on all three {:.1} s after the cut-off site joined again (the load stopped 5 s after it)", rejoined.elapsed().as_secs_f64()));
    // both sides mined while apart: the fork shows in the counters
    let forks_after = fork_counters(sites)?;
    figure(format!(
        "sites: the 15 s cut-off cost {} orphaned blocks, {} replacements",
        forks_after.0 - forks_before.0,
        forks_after.1 - forks_before.1
    ));
    anyhow::ensure!(forks_after.1 > forks_before.1, "no chain replaced after one site mined alone for 15 s: fork choice never ran");
    let verdict = check(&history.snapshot(), &chains, &windows);
    figure(format!(
        "sites: {} submissions, {} acknowledged, {} lost, {} paid twice, liveness outside faults {:.3}",
        verdict.submissions,
        verdict.acknowledged,
        verdict.lost.len(),
        verdict.duplicated.len(),
        verdict.liveness_outside_faults
    ));
    anyhow::ensure!(verdict.lost.is_empty(), "acknowledged rewards lost: {:?}", verdict.lost);
    anyhow::ensure!(verdict.duplicated.is_empty(), "rewards paid twice: {:?}", verdict.duplicated);
    anyhow::ensure!(verdict.balance_mismatch.is_empty(), "rewards of the wrong amount: {:?}", verdict.balance_mismatch);
    anyhow::ensure!(verdict.liveness_outside_faults > 0.95, "liveness outside faults {}", verdict.liveness_outside_faults);
    Ok(())
}
