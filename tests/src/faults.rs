//! The fault-injection harness: the cluster of `deploy/docker-compose.yml`
//! (its own images, fresh networks per test: a backbone between the NATS
//! servers and one network per site) with each node's ingest and NATS server
//! also published on loopback, faults through the Docker CLI (SIGKILL,
//! pause, restart, cutting a site's NATS server from the backbone), a load
//! that records every request and its answer, and a checker of SPEC
//! section 7 run once faults heal and load stops.

use crate::{wait_for, Client, Http};
use anyhow::{bail, Context};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uwl_ledger::{Block, Identity};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker").args(args).output().context("running docker")?;
    if !out.status.success() {
        bail!("docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A running cluster, torn down with its volumes on drop.
pub struct FaultCluster {
    pub project: String,
    env_file: PathBuf,
    _dir: tempfile::TempDir,
    pub ingest: BTreeMap<String, Http>,
    pub nginx: Http,
    pub admin: Client,
    /// What was done to the cluster, with when (ms since start).
    pub faults: Mutex<Vec<(u64, String)>>,
    pub started: Instant,
}

impl FaultCluster {
    fn compose(&self, args: &[&str]) -> anyhow::Result<String> {
        compose(&self.project, &self.env_file, args)
    }

    pub async fn up(name: &str) -> anyhow::Result<Self> {
        let ok = Command::new("docker").args(["image", "inspect", "uwl:dev"]).output()?.status.success();
        anyhow::ensure!(ok, "image uwl:dev is missing: build it with deploy/images/build.sh (deploy/test does)");
        let dir = tempfile::tempdir()?;
        let env_file = dir.path().join(".env");
        let secrets: String = ["SYNC", "MINER", "VERIFIER", "INGEST", "METRICS", "ADMIN"]
            .iter()
            .map(|r| format!("NATS_{r}_PASSWORD=fault-{}\n", r.to_lowercase()))
            .collect();
        std::fs::write(&env_file, secrets)?;
        crate::remove_stale_test_clusters();
        let project = format!("uwlf{}{}", name, std::process::id());
        if let Err(e) = compose(&project, &env_file, &["up", "-d"]) {
            let _ = compose(&project, &env_file, &["down", "-v", "--remove-orphans", "-t", "1"]);
            return Err(e);
        }
        let port = |svc: &str, p: &str| -> anyhow::Result<String> {
            let out = compose(&project, &env_file, &["port", svc, p])?;
            Ok(out.rsplit(':').next().unwrap_or_default().to_owned())
        };
        let mut ingest = BTreeMap::new();
        for (node, svc) in [("node-1", "ingest-1"), ("node-2", "ingest-2")] {
            ingest.insert(node.to_owned(), Http::new(&format!("http://127.0.0.1:{}", port(svc, "8080")?)));
        }
        let nginx_port = port("nginx", "8080")?;
        // through nats-3, which no test faults
        let admin = Client::connect(&format!("nats://admin:fault-admin@127.0.0.1:{}", port("nats-3", "4222")?)).await?;
        let c = Self {
            project,
            env_file,
            _dir: dir,
            ingest,
            nginx: Http::new(&format!("http://127.0.0.1:{nginx_port}")),
            admin,
            faults: Mutex::new(Vec::new()),
            started: Instant::now(),
        };
        for h in c.ingest.values() {
            wait_for("an ingest ready", Duration::from_secs(120), || async {
                let (code, body, _) = h.get("/health", None).await?;
                Ok((code == 200 && body["status"] == "ok").then_some(()))
            })
            .await?;
        }
        Ok(c)
    }

    pub fn container(&self, service: &str) -> String {
        format!("{}_{}_1", self.project, service)
    }

    fn record(&self, what: String) {
        let at = self.started.elapsed().as_millis() as u64;
        println!("[{at:>6} ms] fault: {what}");
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).push((at, what));
    }

    pub fn kill(&self, service: &str) -> anyhow::Result<()> {
        docker(&["kill", "-s", "KILL", &self.container(service)])?;
        self.record(format!("SIGKILL {service}"));
        Ok(())
    }

    pub fn start(&self, service: &str) -> anyhow::Result<()> {
        docker(&["start", &self.container(service)])?;
        self.record(format!("start {service}"));
        Ok(())
    }

    pub fn restart(&self, service: &str) -> anyhow::Result<()> {
        docker(&["restart", "-t", "5", &self.container(service)])?;
        self.record(format!("restart {service}"));
        Ok(())
    }

    pub fn pause(&self, service: &str) -> anyhow::Result<()> {
        docker(&["pause", &self.container(service)])?;
        self.record(format!("pause {service}"));
        Ok(())
    }

    pub fn unpause(&self, service: &str) -> anyhow::Result<()> {
        docker(&["unpause", &self.container(service)])?;
        self.record(format!("unpause {service}"));
        Ok(())
    }

    /// Cuts a site's NATS server from the others: its node is partitioned.
    pub fn partition(&self, nats: &str) -> anyhow::Result<()> {
        docker(&["network", "disconnect", &format!("{}_backbone", self.project), &self.container(nats)])?;
        self.record(format!("partition {nats} from the backbone"));
        Ok(())
    }

    pub fn heal(&self, nats: &str) -> anyhow::Result<()> {
        docker(&["network", "connect", "--alias", nats, &format!("{}_backbone", self.project), &self.container(nats)])?;
        self.record(format!("heal {nats}"));
        Ok(())
    }

    /// Prints the last lines every service logged (a failed scenario's
    /// evidence: the cluster is torn down with the test).
    pub fn print_logs(&self) {
        match self.compose(&["logs", "--no-color", "--timestamps", "--tail", "60"]) {
            Ok(logs) => println!("--- service logs (last 60 lines each)\n{logs}"),
            Err(e) => println!("--- service logs not read: {e:#}"),
        }
    }

    pub fn fault_count(&self) -> usize {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The node whose miner currently leads (by node-1's view of the tip).
    pub async fn leader(&self, net_genesis: &uwl_ledger::Genesis) -> anyhow::Result<String> {
        let stats = self.admin.sync_stats("node-1").await?;
        let tip = stats.tip.context("tip")?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
        Ok(uwl_ledger::current_leader(net_genesis, &tip, now).node_id.clone())
    }

    /// The genesis the cluster generated (read from sync's volume through the bus is not possible: use the init container's file).
    pub fn genesis(&self) -> anyhow::Result<uwl_ledger::Genesis> {
        let text = docker(&["run", "--rm", "-v", &format!("{}_config:/config:ro", self.project), "uwl:dev", "cat", "/config/genesis.json"])?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn compose(project: &str, env_file: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker-compose")
        .args(["-p", project, "--env-file"])
        .arg(env_file)
        .arg("-f")
        .arg(repo().join("deploy/docker-compose.yml"))
        .arg("-f")
        .arg(repo().join("tests/compose/faults.override.yml"))
        .args(args)
        .env("UWL_PORT", "0")
        .output()?;
    if !out.status.success() {
        bail!("docker-compose {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Drop for FaultCluster {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans", "-t", "2"]);
    }
}

/// One request of the load and its answer.
#[derive(Debug, Clone)]
pub struct Op {
    pub at_ms: u64,
    pub entry: String,
    pub client_id: String,
    pub contract_id: String,
    pub reward: u64,
    pub code: u16,
    pub status: String,
    pub receipt_id: String,
}

/// Every request the load made, in order.
#[derive(Debug, Default)]
pub struct History {
    pub ops: Mutex<Vec<Op>>,
}

/// Clients submitting hash tasks through `entries` until `stop`; every answer
/// goes to the history. Returns when all clients stopped.
pub async fn load(entries: Vec<(String, Http)>, clients_per_entry: usize, history: Arc<History>, started: Instant, stop: CancellationToken) {
    let mut tasks = Vec::new();
    for (name, h) in entries {
        for _ in 0..clients_per_entry {
            let (name, h, history, stop) = (name.clone(), h.clone(), history.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let Ok((client, key)) = h.register().await else { return };
                while !stop.is_cancelled() {
                    let Ok(task) = h.task(&key, "hash").await else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    };
                    let Ok(result) = crate::solve_task(&task) else { continue };
                    let contract_id = task["contract_id"].as_str().unwrap_or_default().to_owned();
                    let at_ms = started.elapsed().as_millis() as u64;
                    let (code, body) = match h.submit(&key, &client, &contract_id, &result).await {
                        Ok((code, body, _)) => (code, body),
                        Err(e) => (0, serde_json::json!({"status": format!("{e}")})),
                    };
                    history.ops.lock().unwrap_or_else(PoisonError::into_inner).push(Op {
                        at_ms,
                        entry: name.clone(),
                        client_id: client.clone(),
                        contract_id,
                        reward: task["reward"].as_u64().unwrap_or(0),
                        code,
                        // an error's message in place of the status: the history says why
                        status: body["status"].as_str().or(body["message"].as_str()).unwrap_or_default().to_owned(),
                        receipt_id: body["receipt_id"].as_str().unwrap_or_default().to_owned(),
                    });
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// What the checker found (SPEC section 7).
#[derive(Debug, Default)]
pub struct Verdict {
    pub submissions: usize,
    pub acknowledged: usize,
    pub lost: Vec<Identity>,
    pub duplicated: Vec<Identity>,
    pub balance_mismatch: Vec<String>,
    pub liveness_outside_faults: f64,
    pub tip_blocks: u64,
}

/// Checks the history against every node's converged chain.
pub fn check(ops: &[Op], chains: &BTreeMap<String, Vec<Block>>, fault_windows: &[(u64, u64)]) -> Verdict {
    let mut v = Verdict { submissions: ops.len(), ..Verdict::default() };
    let acked: HashSet<Identity> = ops
        .iter()
        .filter(|o| o.code == 200)
        .map(|o| Identity { client_id: o.client_id.clone(), contract_id: o.contract_id.clone() })
        .collect();
    v.acknowledged = acked.len();
    // A window runs from 1 s before a fault to 5 s after it is undone (recovery).
    let in_fault = |t: u64| fault_windows.iter().any(|(a, b)| t + 1_000 >= *a && t <= b + 5_000);
    let outside: Vec<&Op> = ops.iter().filter(|o| !in_fault(o.at_ms)).collect();
    v.liveness_outside_faults = if outside.is_empty() { 1.0 } else { outside.iter().filter(|o| o.code == 200).count() as f64 / outside.len() as f64 };
    let rewards: HashMap<&str, u64> = ops.iter().map(|o| (o.contract_id.as_str(), o.reward)).collect();
    for chain in chains.values() {
        v.tip_blocks = v.tip_blocks.max(chain.last().map_or(0, |b| b.index));
        let mut count: HashMap<Identity, usize> = HashMap::new();
        let mut balances: HashMap<&str, u64> = HashMap::new();
        for p in chain.iter().flat_map(|b| &b.transactions) {
            *count.entry(p.identity()).or_default() += 1;
            *balances.entry(p.client_id()).or_default() += p.amount();
        }
        v.duplicated.extend(count.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id.clone()));
        v.lost.extend(acked.iter().filter(|id| !count.contains_key(*id)).cloned());
        // every reward in the chain is the task's reward
        for p in chain.iter().flat_map(|b| &b.transactions) {
            if rewards.get(p.reward_tx.contract_id.as_str()).is_some_and(|r| *r != p.amount()) {
                v.balance_mismatch.push(p.client_id().to_owned());
            }
        }
    }
    v.lost.sort();
    v.lost.dedup();
    v.duplicated.sort();
    v.duplicated.dedup();
    v
}
