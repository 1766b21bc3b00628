//! The fault-injection harness: the cluster of `deploy/docker-compose.yml`
//! (its own images, fresh networks per test: a backbone between the NATS
//! servers and one network per site) with each node's ingest and NATS server
//! also published on loopback, faults through the Docker CLI (SIGKILL,
//! pause, restart, cutting a site's NATS server from the backbone), a load
//! that records every request and its answer, and a checker of the
//! ledger's guarantees (no acknowledged reward lost or paid twice, liveness)
//! run once faults heal and load stops.

use crate::{Client, Http};
use futures::StreamExt;
use anyhow::{bail, Context};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uwl_ledger::{Block, Identity};

use crate::repo;

pub(crate) fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker").args(args).output().context("running docker")?;
    if !out.status.success() {
        bail!("docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A site's containers, each with its networks and fixed address there.
pub type SiteLayout = Vec<(String, Vec<(String, Option<String>)>)>;

/// Runs `f` for every container of `layout` at once (one thread each), as
/// one interface flap would touch them all together.
fn each_at_once(layout: &SiteLayout, f: impl Fn(&str, &[(String, Option<String>)]) -> anyhow::Result<()> + Sync) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        let runs: Vec<_> = layout.iter().map(|(svc, nets)| scope.spawn(|| f(svc, nets))).collect();
        runs.into_iter().try_for_each(|r| r.join().map_err(|_| anyhow::anyhow!("a network change panicked"))?)
    })
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
        let secrets: String = crate::nats_secrets("fault")?.into_iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        // compose takes one env file: the deployment's values, then the secrets
        std::fs::write(&env_file, format!("{}\n{secrets}UWL_SECRETS_FILE={}\n", cluster_env()?, env_file.display()))?;
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
            ingest.insert(node.to_owned(), Http::new(&format!("http://127.0.0.1:{}", port(svc, &http_port()?)?)));
        }
        let nginx_port = port("nginx", &http_port()?)?;
        // through nats-3, which no test faults
        let login = uwl_bus::Login::with_password(uwl_bus::Role::Admin, "ops", "fault-nats_admin_password".to_owned().into());
        let admin = Client::login(&format!("nats://127.0.0.1:{}", port("nats-3", "4222")?), &login).await?;
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
            h.ready(Duration::from_secs(120)).await?;
        }
        Ok(c)
    }

    /// The container of compose service `service`, found by compose's
    /// labels (the same under compose v1 and v2, whose names differ).
    pub fn container(&self, service: &str) -> String {
        let project = format!("label=com.docker.compose.project={}", self.project);
        let svc = format!("label=com.docker.compose.service={service}");
        match docker(&["ps", "-aq", "--filter", &project, "--filter", &svc]) {
            Ok(id) if !id.is_empty() => id.lines().next().unwrap_or_default().to_owned(),
            // not created (yet): the v1 name, so the failing command names it
            _ => format!("{}_{service}_1", self.project),
        }
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

    /// The address of `service` on the cluster's network `net`.
    pub fn ip_on(&self, service: &str, net: &str) -> anyhow::Result<String> {
        let fmt = format!("{{{{(index .NetworkSettings.Networks \"{}_{net}\").IPAddress}}}}", self.project);
        docker(&["inspect", "-f", &fmt, &self.container(service)])
    }

    /// Runs `iptables args` in `service`'s network namespace (the image has
    /// no iptables: the host's, entered with nsenter).
    fn iptables(&self, service: &str, args: &[&str]) -> anyhow::Result<()> {
        let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &self.container(service)])?;
        let out = Command::new("nsenter").args(["-t", &pid, "-n", "iptables"]).args(args).output().context("running nsenter (util-linux) with iptables")?;
        anyhow::ensure!(out.status.success(), "iptables {args:?} in {service}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// Drops every packet between `nats` and the other NATS servers; every
    /// address stays as it is (a black hole, not a disconnect).
    pub fn black_hole(&self, nats: &str) -> anyhow::Result<()> {
        self.black_hole_rules(nats, "-I")?;
        self.record(format!("black hole between {nats} and the other NATS servers"));
        Ok(())
    }

    pub fn heal_black_hole(&self, nats: &str) -> anyhow::Result<()> {
        self.black_hole_rules(nats, "-D")?;
        self.record(format!("heal the black hole of {nats}"));
        Ok(())
    }

    /// Inserts (`-I`) or deletes (`-D`) the black hole's rules.
    fn black_hole_rules(&self, nats: &str, op: &str) -> anyhow::Result<()> {
        for other in ["nats-1", "nats-2", "nats-3"].into_iter().filter(|o| *o != nats) {
            let ip = self.ip_on(other, "backbone")?;
            self.iptables(nats, &[op, "INPUT", "-s", &ip, "-j", "DROP"])?;
            self.iptables(nats, &[op, "OUTPUT", "-d", &ip, "-j", "DROP"])?;
        }
        Ok(())
    }

    /// Site `n`'s containers, with the networks each is on and its fixed
    /// address there, if it has one.
    fn site(&self, n: &str) -> anyhow::Result<SiteLayout> {
        let mut out = Vec::new();
        for svc in ["nats", "sync", "miner", "verifier", "ingest"].map(|s| format!("{s}-{n}")) {
            let mut nets = vec![(format!("site{n}"), None)];
            if svc.starts_with("nats") {
                nets.push(("backbone".to_owned(), None));
            }
            if svc.starts_with("ingest") {
                nets.push(("edge".to_owned(), Some(self.ip_on(&svc, "edge")?)));
            }
            out.push((svc, nets));
        }
        Ok(out)
    }

    /// Moves site `n`'s containers onto an isolated network of their own:
    /// they still reach each other (by the same names), nothing else. Their
    /// addresses change on return, as after an interface flap.
    pub fn move_site(&self, n: &str) -> anyhow::Result<SiteLayout> {
        let isolated = format!("{}_isolated{n}", self.project);
        let layout = self.site(n)?;
        docker(&["network", "create", &isolated])?;
        each_at_once(&layout, |svc, nets| {
            docker(&["network", "connect", "--alias", svc, &isolated, &self.container(svc)])?;
            for (net, _) in nets {
                docker(&["network", "disconnect", &format!("{}_{net}", self.project), &self.container(svc)])?;
            }
            Ok(())
        })?;
        self.record(format!("site {n} moved onto an isolated network"));
        Ok(layout)
    }

    /// Brings site `n` back onto its own networks (fixed addresses kept,
    /// the others new) and off the isolated one.
    pub fn return_site(&self, n: &str, layout: &SiteLayout) -> anyhow::Result<()> {
        let isolated = format!("{}_isolated{n}", self.project);
        each_at_once(layout, |svc, nets| {
            let c = self.container(svc);
            for (net, ip) in nets {
                let net = format!("{}_{net}", self.project);
                let mut args = vec!["network", "connect", "--alias", svc];
                if let Some(ip) = ip.as_deref() {
                    args.extend(["--ip", ip]);
                }
                args.extend([net.as_str(), c.as_str()]);
                docker(&args)?;
            }
            docker(&["network", "disconnect", &isolated, &c])
                .map(|_| ())
        })?;
        docker(&["network", "rm", &isolated])?;
        self.record(format!("site {n} back on its networks"));
        Ok(())
    }

    /// `path` of a NATS server's monitoring endpoint, read inside its container.
    pub fn monitor(&self, nats: &str, path: &str) -> anyhow::Result<serde_json::Value> {
        let text = docker(&["exec", &self.container(nats), "curl", "-fsS", &format!("http://127.0.0.1:8222{path}")])?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The current loopback URL of a node's ingest (a container that moved
    /// between networks gets a new published port).
    pub fn ingest_url(&self, node: &str) -> anyhow::Result<String> {
        let svc = format!("ingest-{}", node.trim_start_matches("node-"));
        let out = self.compose(&["port", &svc, &http_port()?])?;
        Ok(format!("http://127.0.0.1:{}", out.rsplit(':').next().unwrap_or_default()))
    }

    /// Prints the last lines every service logged (a failed scenario's
    /// evidence: the cluster is torn down with the test).
    pub fn print_logs(&self) {
        match self.compose(&["logs", "--no-color", "--timestamps", "--tail", "60"]) {
            Ok(logs) => println!("--- service logs (last 60 lines each)\n{logs}"),
            Err(e) => println!("--- service logs not read: {e:#}"),
        }
    }

    /// Writes every line every service logged to `target/fault-logs/<tag>.log`
    /// (a failed run's whole evidence; the cluster goes with the test) and
    /// prints the last lines.
    pub fn save_logs(&self, tag: &str) {
        let dir = crate::repo().join("target/fault-logs");
        let path = dir.join(format!("{tag}.log"));
        let saved = self
            .compose(&["logs", "--no-color", "--timestamps"])
            .and_then(|logs| Ok(std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, logs))?));
        match saved {
            Ok(()) => println!("--- every service's logs: {}", path.display()),
            Err(e) => println!("--- service logs not saved: {e:#}"),
        }
        self.print_logs();
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

/// The deployment's shared values (`deploy/cluster.env`).
pub fn cluster_env() -> anyhow::Result<String> {
    std::fs::read_to_string(repo().join("deploy/cluster.env")).context("reading deploy/cluster.env")
}

/// One value of `deploy/cluster.env`.
pub fn cluster_value(key: &str) -> anyhow::Result<String> {
    let text = cluster_env()?;
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
        .with_context(|| format!("deploy/cluster.env sets no {key}"))
}

fn http_port() -> anyhow::Result<String> {
    cluster_value("UWL_HTTP_PORT")
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
        .env("UWL_TLS_PORT", "0")
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
#[derive(Debug, Clone, Default)]
pub struct Op {
    pub at_ms: u64,
    /// `submit`, or `register` / `task` for a failed registration or task
    /// request (those count in liveness, not as submissions).
    pub kind: &'static str,
    pub entry: String,
    pub client_id: String,
    pub contract_id: String,
    pub reward: u64,
    pub code: u16,
    pub status: String,
    pub receipt_id: String,
    /// From the request sent to its answer.
    pub took_ms: u64,
}

/// Every request the load made, in order.
#[derive(Debug, Default)]
pub struct History {
    pub ops: Mutex<Vec<Op>>,
}

impl History {
    pub fn push(&self, op: Op) {
        self.ops.lock().unwrap_or_else(PoisonError::into_inner).push(op);
    }

    pub fn snapshot(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A load entry's base URL, which the scenario may change while the load
/// runs (a site moved between networks gets a new published port).
pub type Url = Arc<Mutex<String>>;

fn http_at(url: &Url, client: &reqwest::Client) -> Http {
    Http { base: url.lock().unwrap_or_else(PoisonError::into_inner).clone(), client: client.clone() }
}

/// Clients submitting hash tasks through `entries` until `stop`; every answer
/// goes to the history. Returns when all clients stopped.
pub async fn load(entries: Vec<(String, Url)>, clients_per_entry: usize, history: Arc<History>, started: Instant, stop: CancellationToken) {
    let mut tasks = Vec::new();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
    for (name, url) in entries {
        for _ in 0..clients_per_entry {
            let (name, history, stop, client) = (name.clone(), history.clone(), stop.clone(), client.clone());
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let h = || http_at(&url, &client);
                let failed = |kind: &'static str, e: anyhow::Error| {
                    let at_ms = started.elapsed().as_millis() as u64;
                    history.push(Op { at_ms, kind, entry: name.clone(), status: format!("{e:#}"), ..Op::default() });
                };
                let (client, key) = loop {
                    match h().register().await {
                        Ok(c) => break c,
                        Err(e) if !stop.is_cancelled() => {
                            failed("register", e);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(_) => return,
                    }
                };
                while !stop.is_cancelled() {
                    let task = match h().task(&key, "hash").await {
                        Ok(t) => t,
                        Err(e) => {
                            failed("task", e);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    };
                    let Ok(result) = crate::solve_task(&task) else { continue };
                    let contract_id = task["contract_id"].as_str().unwrap_or_default().to_owned();
                    let at_ms = started.elapsed().as_millis() as u64;
                    let sent = Instant::now();
                    let (code, body) = match h().submit(&key, &client, &contract_id, &result).await {
                        Ok((code, body, _)) => (code, body),
                        Err(e) => (0, serde_json::json!({"status": format!("{e}")})),
                    };
                    let took_ms = sent.elapsed().as_millis() as u64;
                    history.push(Op {
                        at_ms,
                        kind: "submit",
                        entry: name.clone(),
                        client_id: client.clone(),
                        contract_id,
                        reward: task["reward"].as_u64().unwrap_or(0),
                        code,
                        // an error's message in place of the status: the history says why
                        status: body["status"].as_str().or(body["message"].as_str()).unwrap_or_default().to_owned(),
                        receipt_id: body["receipt_id"].as_str().unwrap_or_default().to_owned(),
                        took_ms,
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

/// What the checker found (README: When the network fails).
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
    let submits: Vec<&Op> = ops.iter().filter(|o| o.kind == "submit").collect();
    let mut v = Verdict { submissions: submits.len(), ..Verdict::default() };
    let acked: HashSet<Identity> = submits
        .iter()
        .filter(|o| o.code == 200)
        .map(|o| Identity { client_id: o.client_id.clone(), contract_id: o.contract_id.clone() })
        .collect();
    v.acknowledged = acked.len();
    // A window runs from 1 s before a fault to 5 s after it is undone (recovery).
    let in_fault = |t: u64| fault_windows.iter().any(|(a, b)| t + 1_000 >= *a && t <= b + 5_000);
    let outside: Vec<&Op> = ops.iter().filter(|o| !in_fault(o.at_ms)).collect();
    v.liveness_outside_faults = if outside.is_empty() { 1.0 } else { outside.iter().filter(|o| o.code == 200).count() as f64 / outside.len() as f64 };
    let rewards: HashMap<&str, u64> = submits.iter().map(|o| (o.contract_id.as_str(), o.reward)).collect();
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

/// A submission made ready before the load starts: a task solved for a client.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub client_id: String,
    pub key: String,
    pub contract_id: String,
    pub result: serde_json::Value,
    pub reward: u64,
}

/// Registers `clients` clients at `h` and fetches and solves `n` hash tasks
/// for them, 16 requests at a time.
pub async fn prepare(h: &Http, clients: usize, n: usize) -> anyhow::Result<Vec<Prepared>> {
    let mut keys = Vec::new();
    for _ in 0..clients.max(1) {
        keys.push(h.register().await?);
    }
    let fetch = (0..n).map(|i| {
        let (client, key) = keys[i % keys.len()].clone();
        async move {
            // a client past its rate waits as told (429, Retry-After)
            let task = loop {
                let (code, body, headers) = h.get("/get_task?kind=hash", Some(&key)).await?;
                match code {
                    200 => break body,
                    429 => {
                        let wait = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(1);
                        tokio::time::sleep(Duration::from_secs(wait)).await;
                    }
                    _ => anyhow::bail!("get_task: {code} {body}"),
                }
            };
            let result = crate::solve_task(&task)?;
            let contract_id = task["contract_id"].as_str().unwrap_or_default().to_owned();
            anyhow::Ok(Prepared { client_id: client, key, contract_id, result, reward: task["reward"].as_u64().unwrap_or(0) })
        }
    });
    futures::stream::iter(fetch).buffer_unordered(16).collect::<Vec<_>>().await.into_iter().collect()
}

/// One entry of the open-loop load: its name (`nginx`, `node-1`, ...), its
/// base URL (changed while the load runs when a site's published port
/// changes) and the work it submits.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub url: Url,
    pub work: Vec<Prepared>,
}

/// Submits each entry's prepared work at `rate` a second (open loop: not
/// waiting for answers, at most 2,000 in flight per entry, more recorded as
/// failures) until `stop` or the work runs out; every answer goes to the history.
pub async fn open_loop(entries: Vec<Entry>, rate: f64, history: Arc<History>, started: Instant, stop: CancellationToken) {
    let mut senders = Vec::new();
    for e in entries {
        let (history, stop) = (history.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap_or_default();
            let in_flight = Arc::new(tokio::sync::Semaphore::new(2_000));
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            let mut sent = tokio::task::JoinSet::new();
            for w in e.work {
                tokio::select! { _ = stop.cancelled() => break, _ = tick.tick() => {} }
                let at_ms = started.elapsed().as_millis() as u64;
                let mut op = Op { at_ms, kind: "submit", entry: e.name.clone(), client_id: w.client_id.clone(), contract_id: w.contract_id.clone(), reward: w.reward, ..Op::default() };
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    op.status = "the load's own limit of requests in flight".into();
                    history.push(op);
                    continue;
                };
                let h = http_at(&e.url, &client);
                let history = history.clone();
                sent.spawn(async move {
                    let _permit = permit;
                    match h.submit(&w.key, &w.client_id, &w.contract_id, &w.result).await {
                        Ok((code, body, _)) => {
                            op.code = code;
                            op.status = body["status"].as_str().or(body["message"].as_str()).unwrap_or_default().to_owned();
                            op.receipt_id = body["receipt_id"].as_str().unwrap_or_default().to_owned();
                        }
                        Err(e) => op.status = format!("{e:#}"),
                    }
                    history.push(op);
                });
                while sent.try_join_next().is_some() {}
            }
            while sent.join_next().await.is_some() {}
        }));
    }
    for s in senders {
        let _ = s.await;
    }
}
