//! Load generator: drives `POST /submit_work` through nginx and records,
//! per reward, the latency from the moment the request was due until the
//! pair is in a block (the submit answer's `in_block`, else
//! `GET /receipt/{id}?wait_ms=`), in HDR histograms. The same load shape
//! against `/livez` (same nginx, same ingest) is the floor of the run.
//!
//! Tasks are fetched (`get_task?kind=hash`) and solved before a measurement
//! starts, round-robin over registered clients (nginx limits each API key).
//! Open loop: requests are due at a fixed rate whatever the answers, and
//! latency counts from the due time (no coordinated omission). Closed loop:
//! N workers, each sending its next request when the previous one is done.
//!
//! With `--containers`, each measurement also reads every cluster
//! container's CPU time (docker's cgroup accounting) before and after:
//! CPU per reward, per service.
//!
//! Every measurement is appended as one JSON line to `--out`; `report`
//! turns the file into the table and the plot.

mod cpu;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Open-loop requests in flight beyond which the generator itself is
/// saturated: further due requests are counted as `dropped`.
const MAX_IN_FLIGHT: usize = 4_096;
/// Longest a reward may take to reach a block before it counts as `not_in_block`.
const BLOCK_DEADLINE: Duration = Duration::from_secs(30);
/// After an event (the leader killed), how long requests count as "after" it.
const AFTER_EVENT: Duration = Duration::from_secs(5);

#[derive(Parser, Debug)]
#[command(name = "load", about = "Open/closed-loop load through nginx: rewards to a block, and the /livez floor")]
struct Cli {
    /// nginx in front of the ingest instances.
    #[arg(long, env = "UWL_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Where the cluster view is read (`/metrics` of an ingest instance:
    /// nginx does not serve it to the public edge).
    #[arg(long, env = "UWL_METRICS_URL", default_value = "http://127.0.0.1:8080")]
    metrics_url: String,
    /// Results file (JSON lines, appended).
    #[arg(long, default_value = "bench/results/latest.jsonl")]
    out: PathBuf,
    /// Names this configuration in the results (e.g. the block strategy).
    #[arg(long, default_value = "hybrid")]
    label: String,
    /// Clients to register and spread the load over.
    #[arg(long, default_value_t = 128)]
    clients: usize,
    /// The cluster's containers whose CPU time is accounted:
    /// `service=full-container-id,...` (the load generator's own excluded).
    #[arg(long, env = "UWL_BENCH_CONTAINERS")]
    containers: Option<String>,
    /// The host's cgroup tree (mounted read-only when the generator runs in a container).
    #[arg(long, env = "UWL_CGROUP_ROOT", default_value = "/sys/fs/cgroup")]
    cgroup_root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Rising offered load: an open-loop step per rate (submit, then livez).
    Sweep {
        #[arg(long, value_delimiter = ',', conflicts_with = "fractions")]
        rates: Vec<u32>,
        /// Or: steps at these fractions of the saturation throughput
        /// recorded for `--label` in the results file.
        #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75,0.9,1.0,1.1,1.25,1.5")]
        fractions: Vec<f64>,
        #[arg(long, default_value_t = 8)]
        step_s: u64,
    },
    /// Saturation: N workers in a closed loop (submit, then livez).
    Closed {
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
        /// Tasks prepared per second of the run (the most the run can use).
        #[arg(long, default_value_t = 5_000)]
        max_rate: u32,
    },
    /// One open-loop run with a per-second timeline; optionally runs a
    /// command (e.g. `docker kill` of the leader) part way through.
    Open {
        /// Offered rewards per second.
        #[arg(long, conflicts_with = "fraction")]
        rate: Option<u32>,
        /// Or: this fraction of the saturation throughput recorded for
        /// `--label` in the results file (closed loop).
        #[arg(long)]
        fraction: Option<f64>,
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
        #[arg(long, requires = "event_cmd")]
        event_at_s: Option<f64>,
        /// Shell command run at `--event-at-s`; `{leader}` is replaced by the
        /// leader the latest submit answer named (e.g. `node-2`).
        #[arg(long)]
        event_cmd: Option<String>,
        /// Scenario name in the results.
        #[arg(long, default_value = "open")]
        scenario: String,
        /// Also run the same shape against /livez.
        #[arg(long)]
        floor: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Submit,
    Livez,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Submit => "submit",
            Target::Livez => "livez",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Open { rate: u32 },
    Closed { concurrency: usize },
}

/// Sums of the cluster view's counters, by short name.
type Counters = BTreeMap<&'static str, u64>;

/// A solved task, ready to submit.
#[derive(Debug)]
struct Job {
    auth: String,
    body: Vec<u8>,
}

#[derive(Debug)]
struct Client {
    client_id: String,
    auth: String,
}

#[derive(Debug)]
struct Ctx {
    http: reqwest::Client,
    url: String,
    metrics_url: String,
    clients: Vec<Client>,
    /// The leader the latest submit answer named.
    leader: Mutex<String>,
}

/// What one measurement saw.
#[derive(Debug)]
struct Tally {
    block: Histogram<u64>,
    ack: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    /// ok completions per second since the start.
    timeline: Vec<u64>,
    /// The slowest request (due -> in block, ms) by the second it was due
    /// in: where in a run the tail comes from.
    slowest: Vec<u64>,
    last_done: Duration,
    /// With an event at this offset: latency of requests due before it and
    /// in the `AFTER_EVENT` after it.
    event: Option<(Duration, Histogram<u64>, Histogram<u64>)>,
}

impl Tally {
    fn new(event_at: Option<Duration>) -> Self {
        let h = || Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds");
        let event = event_at.map(|at| (at, h(), h()));
        Self { block: h(), ack: h(), ok: 0, errors: BTreeMap::new(), timeline: Vec::new(), slowest: Vec::new(), last_done: Duration::ZERO, event }
    }

    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }
}

enum Outcome {
    Ok { ack: Duration },
    Err(String),
}

impl Ctx {
    async fn register(url: &str, http: &reqwest::Client, n: usize) -> anyhow::Result<Vec<Client>> {
        let reg = |_| async move {
            let v: Value = http.post(format!("{url}/register")).send().await?.error_for_status()?.json().await?;
            let client_id = v["client_id"].as_str().context("client_id")?.to_owned();
            let key = v["api_key"].as_str().context("api_key")?;
            Ok::<_, anyhow::Error>(Client { client_id, auth: format!("Bearer {key}") })
        };
        // Registration shares one per-IP budget at nginx: a few at a time.
        futures::stream::iter(0..n).map(reg).buffer_unordered(8).collect::<Vec<_>>().await.into_iter().collect()
    }

    /// Fetches and solves `n` hash tasks, round-robin over the clients.
    async fn prepare(&self, n: usize) -> anyhow::Result<Vec<Job>> {
        let t = Instant::now();
        let fetch = |i: usize| async move {
            let c = &self.clients[i % self.clients.len()];
            let mut delay = Duration::from_millis(50);
            let task: uwl_api::Task = loop {
                let r = self.http.get(format!("{}/get_task?kind=hash", self.url)).header("authorization", &c.auth).send().await?;
                if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    continue;
                }
                break r.error_for_status()?.json().await?;
            };
            let result_data = uwl_tasks::solve(&task.params);
            let body = serde_json::to_vec(&uwl_api::SubmitWork { client_id: c.client_id.clone(), contract_id: task.contract_id, result_data })?;
            Ok::<_, anyhow::Error>(Job { auth: c.auth.clone(), body })
        };
        let jobs: anyhow::Result<Vec<Job>> =
            futures::stream::iter(0..n).map(fetch).buffer_unordered(64).collect::<Vec<_>>().await.into_iter().collect();
        eprintln!("  prepared {n} solved tasks in {:.1} s", t.elapsed().as_secs_f64());
        jobs
    }

    async fn livez(&self) -> Outcome {
        match self.http.get(format!("{}/livez", self.url)).send().await {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(_) => Outcome::Ok { ack: Duration::ZERO },
                Err(e) => Outcome::Err(transport(&e)),
            },
            Ok(r) => Outcome::Err(format!("http_{}", r.status().as_u16())),
            Err(e) => Outcome::Err(transport(&e)),
        }
    }

    /// Submits and waits until the pair is in a block.
    async fn submit(&self, job: &Job, due: Instant) -> Outcome {
        let r = self
            .http
            .post(format!("{}/submit_work", self.url))
            .header("authorization", &job.auth)
            .header("content-type", "application/json")
            .body(job.body.clone())
            .send()
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => return Outcome::Err(transport(&e)),
        };
        let status = r.status();
        let v: Value = match r.json().await {
            Ok(v) => v,
            Err(e) => return Outcome::Err(if status.is_success() { transport(&e) } else { format!("http_{}", status.as_u16()) }),
        };
        if !status.is_success() {
            return Outcome::Err(format!("http_{}", status.as_u16()));
        }
        let ack = due.elapsed();
        if let Some(l) = v["leader"].as_str().filter(|l| !l.is_empty()) {
            *self.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = l.to_owned();
        }
        if v["in_block"] == true {
            return Outcome::Ok { ack };
        }
        let Some(receipt) = v["receipt_id"].as_str() else { return Outcome::Err("no_receipt_id".into()) };
        while due.elapsed() < BLOCK_DEADLINE {
            let r = self
                .http
                .get(format!("{}/receipt/{receipt}?wait_ms=5000", self.url))
                .header("authorization", &job.auth)
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                    Ok(v) if v["status"] == "in_block" => return Outcome::Ok { ack },
                    Ok(_) => {}
                    Err(e) => return Outcome::Err(transport(&e)),
                },
                Ok(r) if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => tokio::time::sleep(Duration::from_millis(100)).await,
                Ok(r) => return Outcome::Err(format!("receipt_http_{}", r.status().as_u16())),
                Err(e) => return Outcome::Err(transport(&e)),
            }
        }
        Outcome::Err("not_in_block".into())
    }

    async fn one(&self, target: Target, job: Option<&Job>, due: Instant) -> Outcome {
        match (target, job) {
            (Target::Livez, _) => self.livez().await,
            (Target::Submit, Some(job)) => self.submit(job, due).await,
            (Target::Submit, None) => Outcome::Err("out_of_tasks".into()),
        }
    }

    /// Sum over nodes of the cluster view's counters (forks, replacements, blocks mined).
    async fn cluster_counters(&self) -> Counters {
        let mut out = BTreeMap::new();
        let Ok(text) = async { self.http.get(format!("{}/metrics", self.metrics_url)).send().await?.text().await }.await else {
            return out;
        };
        for (key, metric) in [
            ("orphaned_blocks", "uwl_cluster_orphaned_blocks_total{"),
            ("replacements", "uwl_cluster_chain_replacements_total{"),
            ("blocks_mined", "uwl_cluster_blocks_mined_total{"),
            ("requeued", "uwl_cluster_requeued_total{"),
        ] {
            let sum = text
                .lines()
                .filter(|l| l.starts_with(metric))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
            out.insert(key, sum as u64);
        }
        out
    }
}

fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

fn record(tally: &Mutex<Tally>, start: Instant, due: Instant, outcome: Outcome) {
    let done = start.elapsed();
    let mut t = tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    t.last_done = t.last_done.max(done);
    match outcome {
        Outcome::Ok { ack } => {
            t.ok += 1;
            let us = |d: Duration| (d.as_micros() as u64).clamp(1, 120_000_000);
            t.block.saturating_record(us(due.elapsed()));
            let offset = due.saturating_duration_since(start);
            if let Some((at, before, after)) = &mut t.event {
                if offset < *at {
                    before.saturating_record(us(due.elapsed()));
                } else if offset < *at + AFTER_EVENT {
                    after.saturating_record(us(due.elapsed()));
                }
            }
            t.ack.saturating_record(us(ack));
            let due_sec = offset.as_secs() as usize;
            if t.slowest.len() <= due_sec {
                t.slowest.resize(due_sec + 1, 0);
            }
            t.slowest[due_sec] = t.slowest[due_sec].max(due.elapsed().as_millis() as u64);
            let sec = done.as_secs() as usize;
            if t.timeline.len() <= sec {
                t.timeline.resize(sec + 1, 0);
            }
            t.timeline[sec] += 1;
        }
        Outcome::Err(kind) => t.error(kind),
    }
}

/// Runs one measurement; `event` is a shell command run part way through.
async fn measure(ctx: &Arc<Ctx>, target: Target, shape: Shape, duration: Duration, jobs: Vec<Job>, event: Option<(Duration, String)>) -> (Tally, Option<f64>) {
    let jobs = Arc::new(jobs);
    let tally = Arc::new(Mutex::new(Tally::new(event.as_ref().map(|(at, _)| *at))));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let event_task = event.map(|(at, cmd)| {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            let leader = ctx.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            let cmd = cmd.replace("{leader}", &leader);
            let t = start.elapsed().as_secs_f64();
            eprintln!("  t={t:.1} s: {cmd}");
            let status = tokio::task::spawn_blocking(move || std::process::Command::new("sh").arg("-c").arg(&cmd).status()).await;
            match status {
                Ok(Ok(s)) if s.success() => {}
                other => eprintln!("  event command failed: {other:?}"),
            }
            t
        })
    });
    let mut tasks = tokio::task::JoinSet::new();
    match shape {
        Shape::Open { rate } => {
            let total = (u64::from(rate) * duration.as_secs()) as usize;
            let period = Duration::from_secs_f64(1.0 / f64::from(rate));
            let in_flight = Arc::new(AtomicUsize::new(0));
            for i in 0..total {
                let due = start + period.mul_f64(i as f64);
                tokio::time::sleep_until(due.into()).await;
                if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner).error("dropped_by_generator");
                    continue;
                }
                in_flight.fetch_add(1, Ordering::Relaxed);
                let (ctx, jobs, tally, in_flight) = (ctx.clone(), jobs.clone(), tally.clone(), in_flight.clone());
                tasks.spawn(async move {
                    let outcome = ctx.one(target, jobs.get(i), due).await;
                    record(&tally, start, due, outcome);
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                });
                // Reap finished tasks now and then so the set stays small.
                while tasks.try_join_next().is_some() {}
            }
        }
        Shape::Closed { concurrency } => {
            for _ in 0..concurrency {
                let (ctx, jobs, tally, next) = (ctx.clone(), jobs.clone(), tally.clone(), next.clone());
                tasks.spawn(async move {
                    while start.elapsed() < duration {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let due = Instant::now();
                        let outcome = ctx.one(target, jobs.get(i), due).await;
                        record(&tally, start, due, outcome);
                    }
                });
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    let event_at = match event_task {
        Some(t) => t.await.ok(),
        None => None,
    };
    let t = Arc::try_unwrap(tally).map(|m| m.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner));
    (t.unwrap_or_else(|_| unreachable!("every task was joined")), event_at)
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1_000.0
}

/// What a measurement saw besides its own tally: the cluster view's
/// counters and CPU by service, before and after.
struct Around {
    counters: Option<(Counters, Counters)>,
    cpu: Option<cpu::CpuNs>,
    event_at: Option<f64>,
}

fn summary(label: &str, scenario: &str, target: Target, shape: Shape, duration: Duration, t: &Tally, around: Around) -> Value {
    let Around { counters, cpu, event_at } = around;
    let elapsed = t.last_done.max(duration).as_secs_f64();
    let throughput = t.ok as f64 / elapsed;
    let (mode, offered, concurrency) = match shape {
        Shape::Open { rate } => ("open", Some(rate), None),
        Shape::Closed { concurrency } => ("closed", None, Some(concurrency)),
    };
    let deltas = counters.map(|(before, after)| {
        after.iter().map(|(k, v)| ((*k).to_owned(), json!(v.saturating_sub(before.get(k).copied().unwrap_or(0))))).collect::<serde_json::Map<_, _>>()
    });
    json!({
        "at": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "label": label, "scenario": scenario, "target": target.name(), "mode": mode,
        "offered_per_s": offered, "concurrency": concurrency, "duration_s": duration.as_secs_f64(),
        "ok": t.ok, "errors": t.errors, "throughput_per_s": throughput, "elapsed_s": elapsed,
        "p50_ms": ms(&t.block, 0.5), "p90_ms": ms(&t.block, 0.9), "p99_ms": ms(&t.block, 0.99),
        "p999_ms": ms(&t.block, 0.999), "max_ms": t.block.max() as f64 / 1_000.0,
        "ack_p50_ms": ms(&t.ack, 0.5), "ack_p99_ms": ms(&t.ack, 0.99),
        "timeline": t.timeline, "slowest_ms_by_due_second": t.slowest, "cluster": deltas, "event_at_s": event_at,
        // CPU per completed request (reward in a block, or /livez answer), by service and in all
        "cpu_us_per_ok": cpu.as_ref().map(|c| c.iter().map(|(s, ns)| (s.clone(), json!(*ns as f64 / 1_000.0 / t.ok.max(1) as f64))).collect::<serde_json::Map<_, _>>()),
        "cpu_us_per_ok_total": cpu.as_ref().map(|c| c.values().sum::<u64>() as f64 / 1_000.0 / t.ok.max(1) as f64),
        "before_event_p50_ms": t.event.as_ref().map(|e| ms(&e.1, 0.5)), "before_event_p99_ms": t.event.as_ref().map(|e| ms(&e.1, 0.99)),
        "after_event_p50_ms": t.event.as_ref().map(|e| ms(&e.2, 0.5)), "after_event_p99_ms": t.event.as_ref().map(|e| ms(&e.2, 0.99)),
        "after_event_s": AFTER_EVENT.as_secs_f64(),
    })
}

struct Runner {
    ctx: Arc<Ctx>,
    out: PathBuf,
    label: String,
    containers: Option<cpu::Containers>,
}

impl Runner {
    async fn run(&self, scenario: &str, target: Target, shape: Shape, duration: Duration, n_jobs: usize, event: Option<(Duration, String)>) -> anyhow::Result<Value> {
        let jobs = if target == Target::Submit { self.ctx.prepare(n_jobs).await? } else { Vec::new() };
        let before = if target == Target::Submit { Some(self.ctx.cluster_counters().await) } else { None };
        let cpu_before = self.containers.as_ref().map(cpu::Containers::read);
        let (t, event_at) = measure(&self.ctx, target, shape, duration, jobs, event).await;
        let cpu = self.containers.as_ref().zip(cpu_before).map(|(c, before)| cpu::used(&before, &c.read()));
        let counters = match before {
            Some(b) => {
                // The cluster view is scraped every 2 s.
                tokio::time::sleep(Duration::from_millis(2_500)).await;
                Some((b, self.ctx.cluster_counters().await))
            }
            None => None,
        };
        let v = summary(&self.label, scenario, target, shape, duration, &t, Around { counters, cpu, event_at });
        eprintln!(
            "  {scenario} {} {}: {:.0}/s ok={} p50={:.1} ms p99={:.1} ms cpu/ok={} errors={}",
            target.name(),
            match shape {
                Shape::Open { rate } => format!("open {rate}/s"),
                Shape::Closed { concurrency } => format!("closed x{concurrency}"),
            },
            v["throughput_per_s"].as_f64().unwrap_or(0.0),
            t.ok,
            v["p50_ms"].as_f64().unwrap_or(0.0),
            v["p99_ms"].as_f64().unwrap_or(0.0),
            v["cpu_us_per_ok_total"].as_f64().map_or("-".into(), |us| format!("{us:.0} us")),
            v["errors"],
        );
        if let Some(dir) = self.out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.out)?;
        writeln!(f, "{v}")?;
        Ok(v)
    }

    /// The closed-loop submit throughput last recorded for this label.
    fn saturation(&self) -> anyhow::Result<f64> {
        let text = std::fs::read_to_string(&self.out).with_context(|| format!("reading {}", self.out.display()))?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["label"] == self.label.as_str() && v["mode"] == "closed" && v["target"] == "submit")
            .filter_map(|v| v["throughput_per_s"].as_f64())
            .next_back()
            .with_context(|| format!("no closed-loop submit result for {} in {}", self.label, self.out.display()))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .timeout(Duration::from_secs(15))
        .build()?;
    let url = cli.url.trim_end_matches('/').to_owned();
    let clients = Ctx::register(&url, &http, cli.clients).await.with_context(|| format!("registering clients at {url}"))?;
    let metrics_url = cli.metrics_url.trim_end_matches('/').to_owned();
    let containers = cli.containers.as_deref().map(|spec| cpu::Containers::new(&cli.cgroup_root, spec)).transpose()?;
    let runner = Runner { ctx: Arc::new(Ctx { http, url, metrics_url, clients, leader: Mutex::default() }), out: cli.out, label: cli.label, containers };
    match cli.cmd {
        Cmd::Sweep { mut rates, fractions, step_s } => {
            if rates.is_empty() {
                let sat = runner.saturation()?;
                rates = fractions.iter().map(|f| (sat * f).round().max(1.0) as u32).collect();
            }
            let d = Duration::from_secs(step_s);
            for rate in rates {
                let shape = Shape::Open { rate };
                runner.run("sweep", Target::Submit, shape, d, (u64::from(rate) * step_s) as usize, None).await?;
                runner.run("sweep", Target::Livez, shape, d, 0, None).await?;
            }
        }
        Cmd::Closed { concurrency, duration_s, max_rate } => {
            let (shape, d) = (Shape::Closed { concurrency }, Duration::from_secs(duration_s));
            runner.run("saturation", Target::Submit, shape, d, (u64::from(max_rate) * duration_s) as usize, None).await?;
            runner.run("saturation", Target::Livez, shape, d, 0, None).await?;
        }
        Cmd::Open { rate, fraction, duration_s, event_at_s, event_cmd, scenario, floor } => {
            let rate = match (rate, fraction) {
                (Some(r), _) => r,
                (None, Some(f)) => (runner.saturation()? * f).round().max(1.0) as u32,
                (None, None) => bail!("give --rate or --fraction"),
            };
            let (shape, d) = (Shape::Open { rate }, Duration::from_secs(duration_s));
            let event = event_at_s.zip(event_cmd).map(|(at, cmd)| (Duration::from_secs_f64(at), cmd));
            runner.run(&scenario, Target::Submit, shape, d, (u64::from(rate) * duration_s) as usize, event).await?;
            if floor {
                runner.run(&scenario, Target::Livez, shape, d, 0, None).await?;
            }
        }
    }
    Ok(())
}
