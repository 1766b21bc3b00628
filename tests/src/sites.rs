//! Sites as separate deployments, on this host: one compose project per
//! validator, started by `deploy/site` from one genesis directory, each on
//! its own Docker network, meeting the others only at their published NATS
//! route ports. Every route between two sites runs through a [`Relay`] of
//! this process (one per ordered pair of sites), so a test can put the
//! sites far apart (delay, jitter; loss through iptables) or cut one off.

use crate::faults::docker;
use crate::relay::Relay;
use crate::{repo, Http};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use uwl_ledger::{Block, Genesis};

/// Validator sites running, torn down with their volumes on drop.
pub struct Sites {
    pub nodes: Vec<String>,
    dir: tempfile::TempDir,
    projects: BTreeMap<String, String>,
    pub ingest: BTreeMap<String, Http>,
    /// (from, to, relay): site `from`'s routes to site `to`.
    relays: Vec<(String, String, Relay)>,
    /// The iptables rules in force (dropping a share of the relays' packets).
    loss_rules: Mutex<Vec<Vec<String>>>,
    pub genesis: Genesis,
    pub faults: Mutex<Vec<(u64, String)>>,
    pub started: Instant,
}

/// docker0's address: published there, a port is reachable from every
/// container and this process, not from outside the host.
fn docker_host() -> anyhow::Result<IpAddr> {
    let out = Command::new("ip").args(["-4", "-o", "addr", "show", "docker0"]).output().context("running ip")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let addr = text.split_whitespace().skip_while(|w| *w != "inet").nth(1).and_then(|a| a.split('/').next()).context("docker0 has no IPv4 address")?;
    Ok(addr.parse()?)
}

fn free_port(host: IpAddr) -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((host, 0))?.local_addr()?.port())
}

fn site_script(project: Option<&str>, args: &[&str], env: &[(&str, String)]) -> anyhow::Result<String> {
    let mut cmd = Command::new(repo().join("deploy/site"));
    cmd.args(args).env("PROFILE", "dev");
    if let Some(p) = project {
        cmd.env("UWL_PROJECT", p);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().context("running deploy/site")?;
    if !out.status.success() {
        bail!("deploy/site {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Sites {
    /// Starts one site per validator (their genesis first), all at once,
    /// and waits until every ingest answers healthy.
    pub async fn up(name: &str, validators: &[&str]) -> anyhow::Result<Self> {
        let ok = Command::new("docker").args(["image", "inspect", "uwl:dev"]).output()?.status.success();
        anyhow::ensure!(ok, "image uwl:dev is missing: build it with deploy/images/build.sh (deploy/test does)");
        crate::remove_stale_test_clusters();
        let dir = tempfile::tempdir()?;
        let d = dir.path().to_str().context("temporary directory")?.to_owned();
        site_script(None, &["genesis", &d], &[("VALIDATORS", validators.join(","))])?;
        let genesis: Genesis = serde_json::from_slice(&std::fs::read(dir.path().join("config/genesis.json"))?)?;
        let host = docker_host()?;
        let route_ports: BTreeMap<&str, u16> = validators.iter().map(|n| Ok((*n, free_port(host)?))).collect::<anyhow::Result<_>>()?;
        let mut relays = Vec::new();
        for from in validators {
            for to in validators.iter().filter(|t| *t != from) {
                let relay = Relay::start(SocketAddr::new(host, 0), SocketAddr::new(host, route_ports[to])).await?;
                relays.push((from.to_string(), to.to_string(), relay));
            }
        }
        let mut projects = BTreeMap::new();
        let mut http = BTreeMap::new();
        let mut plans = Vec::new();
        for (i, node) in validators.iter().enumerate() {
            let project = format!("uwlf{name}{}n{}", std::process::id(), i + 1);
            let peers: Vec<String> = relays.iter().filter(|(f, _, _)| f == node).map(|(_, _, r)| r.addr.to_string()).collect();
            let http_port = free_port("127.0.0.1".parse()?)?;
            let env = vec![
                ("UWL_PEERS", peers.join(",")),
                ("UWL_ROUTE_PUBLISH", format!("{host}:{}", route_ports[node])),
                ("UWL_HTTP_PUBLISH", format!("127.0.0.1:{http_port}")),
                // the load solves its tasks in this (debug) process
                ("HASH_DIFFICULTY_BITS", "4".to_owned()),
            ];
            projects.insert(node.to_string(), project.clone());
            http.insert(node.to_string(), Http::new(&format!("http://127.0.0.1:{http_port}")));
            plans.push((node.to_string(), project, env));
        }
        let sites = Self {
            nodes: validators.iter().map(|n| n.to_string()).collect(),
            dir,
            projects,
            ingest: http,
            relays,
            loss_rules: Mutex::new(Vec::new()),
            genesis,
            faults: Mutex::new(Vec::new()),
            started: Instant::now(),
        };
        std::thread::scope(|scope| {
            let runs: Vec<_> = plans
                .iter()
                .map(|(node, project, env)| scope.spawn(|| site_script(Some(project), &["up", node, &d], env)))
                .collect();
            runs.into_iter().try_for_each(|r| r.join().map_err(|_| anyhow::anyhow!("deploy/site up panicked"))?.map(drop))
        })?;
        for h in sites.ingest.values() {
            h.ready(Duration::from_secs(120)).await?;
        }
        Ok(sites)
    }

    fn record(&self, what: String) {
        let at = self.started.elapsed().as_millis() as u64;
        println!("[{at:>6} ms] {what}");
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).push((at, what));
    }

    /// The container of `service` (nats, sync, miner, verifier, ingest) of `node`'s site.
    pub fn container(&self, node: &str, service: &str) -> anyhow::Result<String> {
        let project = format!("label=com.docker.compose.project={}", self.projects[node]);
        let svc = format!("label=com.docker.compose.service={service}");
        let id = docker(&["ps", "-aq", "--filter", &project, "--filter", &svc])?;
        id.lines().next().map(str::to_owned).with_context(|| format!("{node}'s {service} has no container"))
    }

    pub fn kill(&self, node: &str, service: &str) -> anyhow::Result<()> {
        docker(&["kill", "-s", "KILL", &self.container(node, service)?])?;
        self.record(format!("SIGKILL {node}'s {service}"));
        Ok(())
    }

    pub fn start(&self, node: &str, service: &str) -> anyhow::Result<()> {
        docker(&["start", &self.container(node, service)?])?;
        self.record(format!("{node}'s {service} started"));
        Ok(())
    }

    /// Every route between sites `delay ± jitter` late, and `loss` (a
    /// share, 0 to 1) of the packets either way between a site and a relay
    /// dropped; `set_far_apart(ZERO, ZERO, 0.0)` brings them back together.
    pub fn set_far_apart(&self, delay: Duration, jitter: Duration, loss: f64) -> anyhow::Result<()> {
        for (_, _, r) in &self.relays {
            r.set_delay(delay, jitter);
        }
        let mut rules = self.loss_rules.lock().unwrap_or_else(PoisonError::into_inner);
        for rule in rules.drain(..) {
            iptables("-D", &rule)?;
        }
        if loss > 0.0 {
            let ports = self.relays.iter().map(|(_, _, r)| r.addr.port().to_string()).collect::<Vec<_>>().join(",");
            let host = self.relays.first().map(|(_, _, r)| r.addr.ip().to_string()).unwrap_or_default();
            for (chain, addr, port) in [("INPUT", "-d", "--dports"), ("OUTPUT", "-s", "--sports")] {
                let rule: Vec<String> = [chain, addr, &host, "-p", "tcp", "-m", "multiport", port, &ports, "-m", "statistic", "--mode", "random", "--probability", &loss.to_string(), "-j", "DROP"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                iptables("-I", &rule)?;
                rules.push(rule);
            }
        }
        self.record(format!("sites {} ms ± {} ms apart, {}% loss", delay.as_millis(), jitter.as_millis(), loss * 100.0));
        Ok(())
    }

    /// Packets the loss rules dropped so far.
    pub fn dropped_packets(&self) -> anyhow::Result<u64> {
        let mut total = 0;
        for chain in ["INPUT", "OUTPUT"] {
            let out = Command::new("iptables").args(["-L", chain, "-v", "-x", "-n"]).output()?;
            for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("statistic mode random")) {
                total += line.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            }
        }
        Ok(total)
    }

    /// Cuts `node`'s site off from every other (both directions of every route).
    pub fn isolate(&self, node: &str) {
        self.relays.iter().filter(|(f, t, _)| f == node || t == node).for_each(|(_, _, r)| r.cut());
        self.record(format!("{node}'s site cut off from the others"));
    }

    pub fn rejoin(&self, node: &str) {
        self.relays.iter().filter(|(f, t, _)| f == node || t == node).for_each(|(_, _, r)| r.heal());
        self.record(format!("{node}'s site joined again"));
    }

    /// `node`'s whole chain, through its ingest (`GET /chain`).
    pub async fn chain(&self, node: &str) -> anyhow::Result<Vec<Block>> {
        let mut out: Vec<Block> = Vec::new();
        loop {
            let from = out.last().map_or(1, |b| b.index + 1);
            let (code, body, _) = self.ingest[node].get(&format!("/chain?from={from}&limit=500"), None).await?;
            anyhow::ensure!(code == 200, "{node} GET /chain: {code} {body}");
            let blocks: Vec<Block> = serde_json::from_value(body["blocks"].clone())?;
            if blocks.is_empty() {
                return Ok(out);
            }
            out.extend(blocks);
        }
    }

    /// A metric of `node`'s `service` (the sum of its labelled series),
    /// read from the service's own `/metrics` inside its container; None
    /// when no series of it is exported (a labelled family appears with
    /// its first series).
    pub fn metric(&self, node: &str, service: &str, name: &str) -> anyhow::Result<Option<f64>> {
        let text = docker(&["exec", &self.container(node, service)?, "curl", "-fsS", "http://127.0.0.1:9100/metrics"])?;
        let values: Vec<f64> =
            text.lines().filter(|l| l.split(['{', ' ']).next() == Some(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).collect();
        Ok((!values.is_empty()).then(|| values.iter().sum()))
    }

    /// The leader now, by `node`'s view of its tip.
    pub async fn leader(&self, node: &str) -> anyhow::Result<String> {
        let (_, body, _) = self.ingest[node].get("/chain?from=0&limit=1", None).await?;
        let tip: uwl_ledger::TipInfo = serde_json::from_value(body["tip"].clone())?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
        Ok(uwl_ledger::current_leader(&self.genesis, &tip, now).node_id.clone())
    }

    /// Writes every site's logs to `target/fault-logs/<tag>-<node>.log`.
    pub fn save_logs(&self, tag: &str) {
        let logs = repo().join("target/fault-logs");
        let _ = std::fs::create_dir_all(&logs);
        let d = self.dir.path().to_str().unwrap_or_default().to_owned();
        for (node, project) in &self.projects {
            let path = logs.join(format!("{tag}-{node}.log"));
            match site_script(Some(project), &["logs", node, &d, "--no-color", "--timestamps"], &[]) {
                Ok(text) => {
                    let _ = std::fs::write(&path, text);
                    println!("--- {node}'s logs: {}", path.display());
                }
                Err(e) => println!("--- {node}'s logs not saved: {e:#}"),
            }
        }
    }
}

fn iptables(op: &str, rule: &[String]) -> anyhow::Result<()> {
    let (chain, rest) = rule.split_first().context("empty rule")?;
    let out = Command::new("iptables").arg(op).arg(chain).args(rest).output().context("running iptables")?;
    anyhow::ensure!(out.status.success(), "iptables {op} {rule:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

impl Drop for Sites {
    fn drop(&mut self) {
        for rule in self.loss_rules.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            let _ = iptables("-D", &rule);
        }
        let d = self.dir.path().to_str().unwrap_or_default().to_owned();
        for (node, project) in &self.projects {
            let _ = site_script(Some(project), &["down", node, &d, "-v", "-t", "2"], &[]);
        }
    }
}
