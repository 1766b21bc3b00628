//! Fault injection on the real cluster: no reward lost, none paid twice,
//! under kills, pauses, partitions and restarts (README: When the network fails).
//! `UWL_FAULT_SECONDS` lengthens the randomized run (default 100 s);
//! `UWL_FAULT_SEED` replays one; `UWL_FAULT_LOGS=1` prints the services'
//! logs of passing scenarios too (failing ones always print them).
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uwl_bus::proto::MinerReceiptQuery;
use uwl_tests::faults::*;
use uwl_tests::*;

struct Run {
    cluster: FaultCluster,
    genesis: uwl_ledger::Genesis,
    history: Arc<History>,
    stop: CancellationToken,
    load: tokio::task::JoinHandle<()>,
    /// Each load entry's current base URL (`nginx`, `node-1`, `node-2`).
    urls: BTreeMap<String, Url>,
    windows: Vec<(u64, u64)>,
    seed: u64,
    /// Equal tips and empty pendings are due this long after the load stops.
    converge_within: Duration,
}

/// Submissions offered per second in all by the open-loop load of the
/// partition scenarios (a third through nginx, a third straight to each side).
const OPEN_RATE: f64 = 300.0;

impl Run {
    async fn cluster(name: &str) -> anyhow::Result<(FaultCluster, uwl_ledger::Genesis, BTreeMap<String, Url>)> {
        let cluster = FaultCluster::up(name).await?;
        let genesis = cluster.genesis()?;
        let mut urls = BTreeMap::new();
        urls.insert("nginx".to_owned(), Arc::new(std::sync::Mutex::new(cluster.nginx.base.clone())));
        for (n, h) in &cluster.ingest {
            urls.insert(n.clone(), Arc::new(std::sync::Mutex::new(h.base.clone())));
        }
        Ok((cluster, genesis, urls))
    }

    /// The cluster under a closed-loop load (one client per entry).
    async fn start(name: &str, seed: u64) -> anyhow::Result<Self> {
        let (cluster, genesis, urls) = Self::cluster(name).await?;
        let history = Arc::new(History::default());
        let stop = CancellationToken::new();
        let entries = urls.iter().map(|(n, u)| (n.clone(), u.clone())).collect();
        let load = tokio::spawn(load(entries, 1, history.clone(), cluster.started, stop.clone()));
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(Self { cluster, genesis, history, stop, load, urls, windows: Vec::new(), seed, converge_within: Duration::from_secs(20) })
    }

    /// The cluster under an open-loop load of [`OPEN_RATE`] submissions a
    /// second for about `seconds`, tasks solved before it starts.
    async fn start_open(name: &str, seconds: u64) -> anyhow::Result<Self> {
        let (cluster, genesis, urls) = Self::cluster(name).await?;
        let per_entry = OPEN_RATE / urls.len() as f64;
        let n = (per_entry * seconds as f64) as usize;
        let t = Instant::now();
        let mut entries = Vec::new();
        for (name, url) in &urls {
            // tasks straight from an ingest (nginx's rate limits are for clients)
            let source = &cluster.ingest[if name == "node-2" { "node-2" } else { "node-1" }];
            // enough clients that fetching stays inside each one's burst allowance (400)
            entries.push(Entry { name: name.clone(), url: url.clone(), work: prepare(source, n / 200 + 4, n).await? });
        }
        println!("{} submissions prepared in {:?}: {per_entry} a second to each of {:?}", n * urls.len(), t.elapsed(), urls.keys());
        let history = Arc::new(History::default());
        let stop = CancellationToken::new();
        let load = tokio::spawn(open_loop(entries, per_entry, history.clone(), cluster.started, stop.clone()));
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(Self { cluster, genesis, history, stop, load, urls, windows: Vec::new(), seed: 0, converge_within: Duration::from_secs(10) })
    }

    /// Points the load's entry for `node` at its ingest's current port.
    fn refresh(&self, node: &str) -> anyhow::Result<()> {
        let url = self.cluster.ingest_url(node)?;
        *self.urls[node].lock().unwrap_or_else(PoisonError::into_inner) = url;
        Ok(())
    }

    /// Samples both nodes' tips until they are equal.
    async fn tips_equal(&self, limit: Duration) -> anyhow::Result<()> {
        let c = &self.cluster.admin;
        wait_for("equal tips", limit, || async {
            let (a, b) = tokio::join!(c.sync_stats("node-1"), c.sync_stats("node-2"));
            Ok((a?.tip == b?.tip).then_some(()))
        })
        .await
    }

    /// Waits until every pair acknowledged before `at_ms` is in a block on
    /// every node; how many there were.
    async fn acknowledged_in_blocks(&self, at_ms: u64, limit: Duration) -> anyhow::Result<usize> {
        let acked: std::collections::HashSet<uwl_ledger::Identity> = self
            .history
            .snapshot()
            .iter()
            .filter(|o| o.kind == "submit" && o.code == 200 && o.at_ms < at_ms)
            .map(|o| uwl_ledger::Identity { client_id: o.client_id.clone(), contract_id: o.contract_id.clone() })
            .collect();
        let c = &self.cluster.admin;
        // Look-ups of what is still missing on each node (cheaper than
        // reading whole chains under load).
        let missing = std::sync::Mutex::new(BTreeMap::from([("node-1", acked.clone()), ("node-2", acked.clone())]));
        wait_for("every pair acknowledged before the heal in a block on every node", limit, || async {
            // Every half second, not every 100 ms: thousands of look-ups a
            // round would slow the recovery this measures.
            tokio::time::sleep(Duration::from_millis(400)).await;
            for n in ["node-1", "node-2"] {
                let ids: Vec<_> = missing.lock().unwrap_or_else(PoisonError::into_inner)[n].iter().cloned().collect();
                for chunk in ids.chunks(1_000) {
                    let r = c.landed(n, chunk).await?;
                    let mut m = missing.lock().unwrap_or_else(PoisonError::into_inner);
                    for (id, landed) in chunk.iter().zip(r.landed) {
                        if landed.is_some() {
                            m.entry(n).or_default().remove(id);
                        }
                    }
                }
            }
            let mut m = missing.lock().unwrap_or_else(PoisonError::into_inner);
            if !m.values().all(|m| m.is_empty()) {
                return Ok(None);
            }
            // All found: once more for all of them at once (a block found
            // earlier may have been orphaned since).
            drop(m);
            let all: Vec<_> = acked.iter().cloned().collect();
            for n in ["node-1", "node-2"] {
                for chunk in all.chunks(1_000) {
                    let r = c.landed(n, chunk).await?;
                    m = missing.lock().unwrap_or_else(PoisonError::into_inner);
                    m.entry(n).or_default().extend(chunk.iter().zip(r.landed).filter(|(_, l)| l.is_none()).map(|(id, _)| id.clone()));
                    drop(m);
                }
            }
            Ok(missing.lock().unwrap_or_else(PoisonError::into_inner).values().all(|m| m.is_empty()).then_some(()))
        })
        .await?;
        Ok(acked.len())
    }

    /// The sum of the cluster view's `metric` series whose labels contain `labels`.
    async fn cluster_sum(&self, metric: &str, labels: &str) -> anyhow::Result<u64> {
        let c = &self.cluster.admin;
        let text = c.cluster_view().await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum())
    }

    /// The fallbacks the cluster view counts (`result="fallback_local"`, every node).
    async fn fallbacks(&self) -> anyhow::Result<u64> {
        self.cluster_sum("uwl_cluster_forwards_total", "result=\"fallback_local\"").await
    }

    fn now(&self) -> u64 {
        self.cluster.started.elapsed().as_millis() as u64
    }

    /// Runs `fault`, waits `hold`, runs `undo`, and records the window.
    async fn window(&mut self, fault: impl FnOnce(&FaultCluster) -> anyhow::Result<()>, hold: Duration, undo: impl FnOnce(&FaultCluster) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let a = self.now();
        fault(&self.cluster)?;
        tokio::time::sleep(hold).await;
        undo(&self.cluster)?;
        self.windows.push((a, self.now()));
        Ok(())
    }

    /// Stops the load, waits for convergence, checks, prints the figures.
    async fn finish(mut self, name: &str) -> anyhow::Result<Figures> {
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.stop.cancel();
        let _ = (&mut self.load).await;
        let last_fault = self.windows.last().map_or(0, |w| w.1);
        let c = &self.cluster.admin;
        let nodes = ["node-1", "node-2"];
        let converge = wait_for("convergence: equal tips, empty pendings", self.converge_within, || async {
            let mut tips = Vec::new();
            for n in nodes {
                if c.miner_stats(n).await?.pending > 0 {
                    return Ok(None);
                }
                tips.push(c.sync_stats(n).await?.tip);
            }
            Ok((tips[0] == tips[1]).then_some(()))
        })
        .await;
        let converged_after = self.now().saturating_sub(last_fault);
        let ops = self.history.snapshot();
        let mut chains = BTreeMap::new();
        for n in nodes {
            chains.insert(n.to_owned(), c.chain(n).await?);
        }
        let v = check(&ops, &chains, &self.windows);
        // Stored balances equal the sum of rewards in the chain, per client.
        let mut mismatched = v.balance_mismatch.clone();
        let clients: std::collections::BTreeSet<&str> = ops.iter().filter(|o| o.kind == "submit").map(|o| o.client_id.as_str()).collect();
        for n in nodes {
            for client in &clients {
                let want: u64 = chains[n].iter().flat_map(|b| &b.transactions).filter(|p| p.client_id() == *client).map(|p| p.amount()).sum();
                let got = c.balance(n, client).await?;
                if got.balance != want {
                    mismatched.push(format!("{n}/{client}: {} != {want}", got.balance));
                }
            }
        }
        let mut replacements = 0;
        let mut requeued = 0;
        for n in nodes {
            replacements += c.sync_stats(n).await?.replacements_total;
            requeued += c.miner_stats(n).await?.requeued_total;
        }
        let f = Figures {
            submissions: v.submissions,
            acknowledged: v.acknowledged,
            faults: self.cluster.fault_count(),
            replacements,
            requeued,
            converged_after_ms: converged_after,
            lost: v.lost.len(),
            duplicated: v.duplicated.len(),
            liveness: v.liveness_outside_faults,
        };
        figure(format!(
            "{name}: submissions {}, acknowledged {}, faults {}, forks/replacements {}, re-queued {}, converged {} ms after the last fault, lost {}, duplicated {}, liveness outside faults {:.1}% (seed {})",
            f.submissions, f.acknowledged, f.faults, f.replacements, f.requeued, f.converged_after_ms, f.lost, f.duplicated, f.liveness * 100.0, self.seed
        ));
        let mut outside_failures: BTreeMap<(String, &str, u16), usize> = BTreeMap::new();
        for o in ops.iter().filter(|o| o.code != 200 && !self.windows.iter().any(|(a, b)| o.at_ms + 1_000 >= *a && o.at_ms <= b + 5_000)) {
            *outside_failures.entry((o.entry.clone(), o.kind, o.code)).or_default() += 1;
        }
        if !outside_failures.is_empty() {
            println!("{name}: failures outside fault windows by (entry, kind, status): {outside_failures:?}");
        }
        let failed = converge.is_err() || !v.lost.is_empty() || !v.duplicated.is_empty() || !mismatched.is_empty() || f.liveness < 0.9;
        if !failed && std::env::var_os("UWL_FAULT_LOGS").is_some() {
            self.cluster.print_logs();
        }
        if failed {
            println!("FAILED {name} (seed {}): converge {converge:?}; lost {:?}; duplicated {:?}; balances {mismatched:?}", self.seed, v.lost, v.duplicated);
            let windows = &self.windows;
            for o in ops.iter().filter(|o| v.lost.iter().any(|id| id.contract_id == o.contract_id) || o.code != 200).take(200) {
                println!("  {:>6} ms {:<7} {:<8} {} {} {}", o.at_ms, o.entry, o.kind, o.code, &o.contract_id[..o.contract_id.len().min(24)], o.status);
            }
            println!("  fault windows {windows:?}, faults {:?}", self.cluster.faults.lock().map(|f| f.clone()).unwrap_or_default());
            // Where each lost pair is now, as each node's miner tells it.
            for id in v.lost.iter().take(20) {
                let Some(op) = ops.iter().find(|o| o.code == 200 && o.contract_id == id.contract_id) else { continue };
                let Ok(receipt_id) = uwl_ledger::Hash32::from_hex(&op.receipt_id) else { continue };
                for n in nodes {
                    let r = c.bus.ask(n, MinerReceiptQuery { receipt_id }, c.timeout, &uwl_bus::RequestId::new()).await;
                    println!("  lost {} (acknowledged at {} ms by {}, {}): {n}'s miner: {r:?}", op.receipt_id, op.at_ms, op.entry, op.status);
                }
            }
            // What each node set aside, and its counters (a pair set aside
            // is never mined again).
            for n in nodes {
                match (c.miner_stats(n).await, c.sync_stats(n).await) {
                    (Ok(m), Ok(st)) => println!(
                        "  {n}: pending {}, set aside {:?}; tip {:?}, replacements {}, orphaned blocks {}",
                        m.pending,
                        m.set_aside.iter().map(|a| (a.receipt_id.to_hex(), a.reason.clone())).collect::<Vec<_>>(),
                        st.tip,
                        st.replacements_total,
                        st.orphaned_blocks_total
                    ),
                    (m, st) => println!("  {n}: miner {:?}, sync {:?}", m.err(), st.err()),
                }
            }
            self.cluster.save_logs(&format!("{name}-{}", self.seed));
            anyhow::bail!("{name} broke the ledger's guarantees: an acknowledged reward lost or paid twice, or liveness lost (see the history above)");
        }
        Ok(f)
    }
}

#[derive(Debug)]
struct Figures {
    submissions: usize,
    acknowledged: usize,
    faults: usize,
    replacements: u64,
    requeued: u64,
    converged_after_ms: u64,
    lost: usize,
    duplicated: usize,
    liveness: f64,
}

fn miner_of(node: &str) -> String {
    format!("miner-{}", node.trim_start_matches("node-"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_miner_killed_under_load() -> anyhow::Result<()> {
    let _serial = serial();
    let mut run = Run::start("kill", 0).await?;
    let leader = run.cluster.leader(&run.genesis).await?;
    let m = miner_of(&leader);
    run.window(|c| c.kill(&m), Duration::from_secs(4), |c| c.start(&m)).await?;
    let fallbacks = fallback_happened(&run).await?;
    run.finish("leader's miner killed").await?;
    println!("fallbacks to the local miner: {fallbacks}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_paused_under_load() -> anyhow::Result<()> {
    let _serial = serial();
    let mut run = Run::start("pause", 0).await?;
    let leader = run.cluster.leader(&run.genesis).await?;
    let m = miner_of(&leader);
    run.window(|c| c.pause(&m), Duration::from_secs(5), |c| c.unpause(&m)).await?;
    let fallbacks = fallback_happened(&run).await?;
    run.finish("leader's miner paused").await?;
    println!("fallbacks to the local miner: {fallbacks}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_of_node_2_forks_and_heals() -> anyhow::Result<()> {
    let _serial = serial();
    let mut run = Run::start("part", 0).await?;
    let a = run.now();
    run.cluster.partition("nats-2")?;
    // Each side acknowledges and mines work of its own during the partition:
    // whichever fork loses, its own pairs must be re-queued.
    let mut receipts = Vec::new();
    for node in ["node-1", "node-2"] {
        let h = run.cluster.ingest[node].clone();
        let (client, key) = h.register().await?;
        let receipt = wait_for(&format!("a pair acknowledged and mined on {node}'s side"), Duration::from_secs(30), || async {
            let task = h.task(&key, "hash").await?;
            let (code, body, _) = h.submit(&key, &client, task["contract_id"].as_str().unwrap_or(""), &solve_task(&task)?).await?;
            anyhow::ensure!(code == 200, "{code} {body}");
            let rid = body["receipt_id"].as_str().unwrap_or_default().to_owned();
            let (_, r, _) = h.get(&format!("/receipt/{rid}?wait_ms=5000"), Some(&key)).await?;
            Ok((r["status"] == "in_block").then_some((node, rid)))
        })
        .await
        .inspect_err(|_| run.cluster.print_logs())?;
        receipts.push(receipt);
    }
    let held = Duration::from_secs(15).saturating_sub(Duration::from_millis(run.now() - a));
    tokio::time::sleep(held).await;
    run.cluster.heal("nats-2")?;
    run.windows.push((a, run.now()));
    let b = run.now();
    let ops = run.history.snapshot();
    let acked_side = |node: &str| ops.iter().filter(|o| o.entry == node && o.code == 200 && o.at_ms > a && o.at_ms < b).count();
    let (one, two) = (acked_side("node-1") + 1, acked_side("node-2") + 1);
    println!("during the partition: node-1 acknowledged {one}, node-2 acknowledged {two} (in blocks on their own side: {receipts:?})");
    let f = run.finish("partition of node-2").await?;
    assert!(f.replacements >= 1, "the partition forked: a chain was replaced");
    assert!(f.requeued >= 1, "the losing side's pairs were re-queued");
    Ok(())
}

/// The other node's ingest fell back to its own miner while the leader's
/// miner was away (ingests report their counters every 5 s).
async fn fallback_happened(run: &Run) -> anyhow::Result<u64> {
    wait_for("fallback_local counted in the cluster view", Duration::from_secs(15), || async {
        let n = run.fallbacks().await?;
        Ok((n > 0).then_some(n))
    })
    .await
}

/// Site 2 cut off from the rest of the cluster for 20 s under an open-loop
/// load of [`OPEN_RATE`] submissions a second, through nginx and straight to
/// each side: both sides acknowledge and mine, the cluster forks, and after
/// the heal every pair acknowledged before it is in a block on every node
/// within 20 s under continued load, tips equal and pendings empty within
/// 10 s of the load stopping, nothing lost or paid twice.
async fn site_2_partitioned(short: &str, name: &str, kind: Partition) -> anyhow::Result<()> {
    let mut run = Run::start_open(short, 50).await?;
    let a = run.now();
    let layout = match kind {
        Partition::BlackHole => {
            run.cluster.black_hole("nats-2")?;
            None
        }
        Partition::MovedSite => {
            let layout = run.cluster.move_site("2")?;
            run.refresh("node-2")?;
            Some(layout)
        }
    };
    tokio::time::sleep(Duration::from_secs(20)).await;
    let before_heal = run.history.snapshot();
    // nats-2's client connections before the heal: each service must come back on a new one.
    let old_cids: HashSet<u64> = match &layout {
        Some(_) => connections(&run.cluster)?.into_iter().map(|(cid, _)| cid).collect(),
        None => HashSet::new(),
    };
    let heal_ms = run.now();
    match &layout {
        None => run.cluster.heal_black_hole("nats-2")?,
        Some(layout) => run.cluster.return_site("2", layout)?,
    }
    // The heal is done: every container back (the clock runs from here).
    let healed_at = Instant::now();
    if layout.is_some() {
        run.refresh("node-2")?;
    }
    println!("{name}: healing took {:?}", Duration::from_millis(run.now() - heal_ms));
    // The checker gives a window 5 s of recovery after it; a partition's
    // services have 10 s to reconnect (STALL_AFTER is 6 s): its window ends 5 s later.
    run.windows.push((a, run.now() + 5_000));
    let side = |node: &str| before_heal.iter().filter(|o| o.entry == node && o.code == 200 && o.at_ms > a).count();
    println!("{name}: during the partition node-1 acknowledged {}, node-2 acknowledged {}", side("node-1"), side("node-2"));
    anyhow::ensure!(side("node-1") > 0 && side("node-2") > 0, "both sides acknowledged work during the partition");

    // Back in touch: routes (black hole) or every service of the site (moved).
    match &layout {
        None => {
            let routes = wait_for("nats-2's routes back", Duration::from_secs(10), || async {
                let r = run.cluster.monitor("nats-2", "/routez")?;
                Ok((r["num_routes"].as_u64() == Some(2)).then(|| healed_at.elapsed()))
            })
            .await
            .inspect_err(|_| run.cluster.print_logs())?;
            println!("{name}: nats-2's routes back {routes:?} after the heal");
        }
        Some(_) => {
            let all = ["uwl-sync/node-2", "uwl-miner/node-2", "uwl-verifier/node-2", "uwl-ingest/node-2"];
            let mut back: BTreeMap<&str, Duration> = BTreeMap::new();
            wait_for("every site-2 service reconnected to nats-2", Duration::from_secs(10), || {
                let fresh = connections(&run.cluster).map(|c| c.into_iter().filter(|(cid, _)| !old_cids.contains(cid)).map(|(_, n)| n).collect::<HashSet<_>>());
                let at = healed_at.elapsed();
                for n in all {
                    if fresh.as_ref().is_ok_and(|f| f.contains(n)) {
                        back.entry(n).or_insert(at);
                    }
                }
                let done = back.len() == all.len();
                async move { Ok(done.then_some(())) }
            })
            .await
            .inspect_err(|_| run.cluster.print_logs())?;
            println!("{name}: each site-2 service reconnected to nats-2 after the heal: {back:?}");
            let stalls = run.cluster_sum("uwl_cluster_bus_stalls_total", "node=\"node-2\"").await?;
            println!("{name}: stalled connections the cluster view counts for node-2's sync and miner: {stalls}");
        }
    }
    let limit = Duration::from_secs(20).saturating_sub(healed_at.elapsed());
    let pending_at_heal = run.acknowledged_in_blocks(heal_ms, limit).await.inspect_err(|_| run.cluster.print_logs())?;
    let in_blocks = healed_at.elapsed();
    run.tips_equal(Duration::from_secs(20)).await?;
    let equal = healed_at.elapsed();
    println!("{name}: {pending_at_heal} pairs acknowledged before the heal in blocks on both nodes {in_blocks:?} after it; equal tips {equal:?} after it (load on)");
    let f = run.finish(name).await?;
    assert!(f.replacements >= 1, "the partition forked: a chain was replaced");
    assert!(f.requeued >= 1, "the losing side's pairs were re-queued");
    Ok(())
}

/// nats-2's client connections: (cid, name).
fn connections(cluster: &FaultCluster) -> anyhow::Result<Vec<(u64, String)>> {
    let connz = cluster.monitor("nats-2", "/connz?limit=1024")?;
    Ok(connz["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["cid"].as_u64()?, c["name"].as_str()?.to_owned())))
        .collect())
}

#[derive(Debug, Clone, Copy)]
enum Partition {
    /// Packets between nats-2 and the other NATS servers dropped, addresses unchanged.
    BlackHole,
    /// Site 2's containers moved onto an isolated network and back (new addresses).
    MovedSite,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_hole_partition_of_site_2_under_open_load() -> anyhow::Result<()> {
    let _serial = serial();
    site_2_partitioned("hole", "black hole partition of site 2", Partition::BlackHole).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_2_moved_to_an_isolated_network_and_back_under_open_load() -> anyhow::Result<()> {
    let _serial = serial();
    site_2_partitioned("moved", "site 2 moved to an isolated network and back", Partition::MovedSite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_of_each_service_kind_under_load() -> anyhow::Result<()> {
    let _serial = serial();
    let mut run = Run::start("restart", 0).await?;
    for svc in ["sync-1", "miner-2", "verifier-1", "ingest-2", "metrics", "sync-2", "miner-1"] {
        let s = svc.to_owned();
        run.window(|c| c.restart(&s), Duration::from_secs(3), |_| Ok(())).await?;
    }
    run.finish("restart of each service kind").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_killed_and_restarted() -> anyhow::Result<()> {
    let _serial = serial();
    let mut run = Run::start("nats", 0).await?;
    run.window(|c| c.kill("nats-1"), Duration::from_secs(5), |c| c.start("nats-1")).await?;
    // node-1's services back on nats-1, and nats-1 back in the cluster
    wait_for("the bus back", Duration::from_secs(30), || async { Ok(run.cluster.admin.sync_stats("node-1").await.ok().map(|_| ())) }).await?;
    run.finish("NATS server killed and restarted").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_random_schedule_of_faults() -> anyhow::Result<()> {
    let _serial = serial();
    let seed: u64 = std::env::var("UWL_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand_seed);
    let seconds: u64 = std::env::var("UWL_FAULT_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    println!("randomized faults: seed {seed}, {seconds} s (replay with UWL_FAULT_SEED={seed})");
    let mut rng = uwl_tasks::SplitMix64(seed);
    let mut run = Run::start("rand", seed).await?;
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        let node = if rng.next_u64().is_multiple_of(2) { "1" } else { "2" };
        let hold = Duration::from_millis(2_000 + rng.next_u64() % 4_000);
        let miner = format!("miner-{node}");
        let sync = format!("sync-{node}");
        let nats = format!("nats-{node}");
        match rng.next_u64() % 7 {
            0 => run.window(|c| c.kill(&miner), hold, |c| c.start(&miner)).await?,
            1 => run.window(|c| c.pause(&miner), hold, |c| c.unpause(&miner)).await?,
            2 => run.window(|c| c.restart(&sync), hold, |_| Ok(())).await?,
            3 => run.window(|c| c.partition(&nats), hold, |c| c.heal(&nats)).await?,
            4 => run.window(|c| c.black_hole(&nats), hold, |c| c.heal_black_hole(&nats)).await?,
            5 => {
                let a = run.now();
                let layout = run.cluster.move_site(node)?;
                run.refresh(&format!("node-{node}"))?;
                tokio::time::sleep(hold).await;
                run.cluster.return_site(node, &layout)?;
                run.refresh(&format!("node-{node}"))?;
                run.windows.push((a, run.now()));
            }
            _ => run.window(|c| c.kill(&nats), hold, |c| c.start(&nats)).await?,
        }
        tokio::time::sleep(Duration::from_millis(1_000 + rng.next_u64() % 3_000)).await;
    }
    wait_for("the bus back", Duration::from_secs(30), || async { Ok(run.cluster.admin.sync_stats("node-1").await.ok().map(|_| ())) }).await?;
    run.finish("randomized schedule").await?;
    Ok(())
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
}
