//! Test harness for the integration and fault tests: NATS servers in
//! containers built from this repository's images (nothing is pulled), a
//! test network (keys and genesis in a temporary directory), node services
//! started in process with fast timers, bus helpers, and bounded waits.
//!
//! Container tests need Docker and the local images (`deploy/images/build.sh`);
//! when either is missing they fail with a message saying so, never skip.
#![allow(missing_debug_implementations)]

use anyhow::{bail, Context};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage};
use std::net::SocketAddr;
use std::pin::Pin;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uwl_bus::proto::*;
use uwl_bus::{Bus, BusError, Login, RequestId, Role};
use uwl_ledger::{testkit, Block, Genesis, Identity, NetworkParams, NodeKey, TxPair};

pub const NATS_IMAGE: (&str, &str) = ("uwl-nats", "dev");

/// Container tests share two cores: they run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn require_image(name: &str, tag: &str) -> anyhow::Result<()> {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", &format!("{name}:{tag}")])
        .output()
        .context("docker is not installed or not on PATH: container tests need it")?;
    if !out.status.success() {
        bail!("image {name}:{tag} is missing: build it with deploy/images/build.sh (deploy/test does)");
    }
    Ok(())
}

/// A NATS server in a container, and the URL to reach it from the host.
pub struct Nats {
    pub url: String,
    pub container: ContainerAsync<GenericImage>,
}

pub async fn nats() -> anyhow::Result<Nats> {
    nats_with_max_payload(None).await
}

/// A NATS server whose `max_payload` is `bytes` (the image's default when
/// `None`): messages bounded by it are tested against a small one.
pub async fn nats_with_max_payload(bytes: Option<usize>) -> anyhow::Result<Nats> {
    use testcontainers::ImageExt;
    require_image(NATS_IMAGE.0, NATS_IMAGE.1)?;
    let image = GenericImage::new(NATS_IMAGE.0, NATS_IMAGE.1)
        .with_exposed_port(4222.tcp())
        .with_wait_for(WaitFor::message_on_stderr("Server is ready"));
    let started = match bytes {
        None => image.start().await,
        Some(b) => {
            let conf = format!("include standalone.conf\nmax_payload: {b}\n");
            image.with_copy_to("/etc/nats/test.conf", conf.into_bytes()).with_cmd(["-c", "/etc/nats/test.conf"]).start().await
        }
    };
    let container = started.context("starting the NATS container")?;
    let port = container.get_host_port_ipv4(4222.tcp()).await?;
    Ok(Nats { url: format!("nats://127.0.0.1:{port}"), container })
}

/// Keys and genesis of `n` validators `node-1..node-n` in a temporary directory.
pub struct TestNet {
    pub dir: tempfile::TempDir,
    pub genesis: Genesis,
    pub genesis_file: PathBuf,
    pub nodes: Vec<String>,
}

impl TestNet {
    pub fn new(n: usize, params: NetworkParams) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut validators = Vec::new();
        let mut nodes = Vec::new();
        for i in 1..=n {
            let node = format!("node-{i}");
            std::fs::create_dir_all(dir.path().join(&node))?;
            let key = NodeKey::load_or_generate(&dir.path().join(&node).join("node.key"), &node)?;
            validators.push(key.validator());
            nodes.push(node);
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
        let genesis = Genesis::new("uwl-test", now - 1_000, validators, testkit::issuers(), params)?;
        let genesis_file = dir.path().join("genesis.json");
        genesis.save(&genesis_file)?;
        // The testkit's issuer keys, so pairs the testkit builds are issued by this network.
        for (i, key) in [testkit::issuer(), testkit::successor()].iter().enumerate() {
            key.save(&Self::issuer_file(&dir, i + 1))?;
        }
        Ok(Self { dir, genesis, genesis_file, nodes })
    }

    /// The issuer key in use (the genesis lists it first).
    pub fn issuer(&self) -> NodeKey {
        testkit::issuer()
    }

    /// The file of the `i`-th issuer key the genesis lists (1: in use, 2: its successor).
    pub fn issuer_file(dir: &tempfile::TempDir, i: usize) -> PathBuf {
        dir.path().join(format!("issuer-{i}.key"))
    }

    /// An ingest instance of `node` on a free port; returns it and its base
    /// URL. It issues with the genesis's first issuer key unless `extra` names one.
    pub async fn ingest(&self, node: &str, url: &str, extra: &[&str]) -> anyhow::Result<(Service, Http)> {
        let mut args = vec!["uwl-ingest".to_owned()];
        args.extend(self.common(node, url, extra));
        args.extend([
            "--http-addr".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--genesis-file".to_owned(),
            self.genesis_file.display().to_string(),
            "--hash-difficulty-bits".to_owned(),
            "6".to_owned(),
            "--matmul-n".to_owned(),
            "4".to_owned(),
        ]);
        if !extra.contains(&"--issuer-key-file") {
            args.extend(["--issuer-key-file".to_owned(), Self::issuer_file(&self.dir, 1).display().to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let settings = <uwl_ingest::Settings as clap::Parser>::try_parse_from(args)?;
        let app = uwl_ingest::build(settings).await?;
        let base = format!("http://{}", app.addr());
        Ok((Service::start(format!("ingest/{node}"), async move { Ok(app) }), Http::new(&base)))
    }

    /// A verifier instance serving `node`'s ingest.
    pub fn verifier(&self, node: &str, url: &str) -> anyhow::Result<Service> {
        let settings = <uwl_verifier::Settings as clap::Parser>::try_parse_from([
            "uwl-verifier", "--node-id", node, "--nats-url", url, "--admin-addr", "127.0.0.1:0",
        ])?;
        Ok(Service::start(format!("verifier/{node}"), uwl_verifier::build(settings)))
    }

    pub fn data_dir(&self, node: &str) -> PathBuf {
        self.dir.path().join(node)
    }

    pub fn key(&self, node: &str) -> anyhow::Result<NodeKey> {
        Ok(NodeKey::load_or_generate(&self.data_dir(node).join("node.key"), node)?)
    }

    /// Flags every service takes; an admin address in `extra` replaces the default (any free port).
    fn common(&self, node: &str, url: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["--node-id", node, "--nats-url", url].map(str::to_owned).to_vec();
        if !extra.contains(&"--admin-addr") {
            args.extend(["--admin-addr".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        args
    }

    /// Sync of `node` with fast timers; `extra` are more command-line flags.
    pub fn sync(&self, node: &str, url: &str, extra: &[&str]) -> anyhow::Result<Service> {
        let mut args = vec!["uwl-sync".to_owned()];
        args.extend(self.common(node, url, extra));
        args.extend(self.files(node));
        args.extend(defaults_but(&[("--pull-interval-ms", "500"), ("--announce-interval-ms", "200"), ("--peer-timeout-ms", "1000")], extra));
        let settings = <uwl_sync::Settings as clap::Parser>::try_parse_from(args)?;
        Ok(Service::start(format!("sync/{node}"), uwl_sync::build(settings)))
    }

    /// Miner of `node` with fast timers.
    pub fn miner(&self, node: &str, url: &str, extra: &[&str]) -> anyhow::Result<Service> {
        let mut args = vec!["uwl-miner".to_owned()];
        args.extend(self.common(node, url, extra));
        args.extend(self.files(node));
        args.extend(defaults_but(&[("--mine-interval-ms", "10"), ("--reconcile-interval-ms", "200"), ("--anti-entropy-interval-ms", "1000")], extra));
        let settings = <uwl_miner::Settings as clap::Parser>::try_parse_from(args)?;
        Ok(Service::start(format!("miner/{node}"), uwl_miner::build(settings)))
    }

    fn files(&self, node: &str) -> Vec<String> {
        vec![
            "--data-dir".into(),
            self.data_dir(node).display().to_string(),
            "--genesis-file".into(),
            self.genesis_file.display().to_string(),
        ]
    }
}

/// The fast timers `defaults` (flag, value) but those `extra` sets, then `extra`.
fn defaults_but(defaults: &[(&str, &str)], extra: &[&str]) -> Vec<String> {
    let kept = defaults.iter().filter(|(flag, _)| !extra.contains(flag)).flat_map(|(f, v)| [*f, *v]);
    kept.chain(extra.iter().copied()).map(str::to_owned).collect()
}

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Prints a figure a test measured and keeps it in `target/test-figures.txt`,
/// which `deploy/test` prints after the suite (a passing test's output is
/// otherwise captured and never reaches the CI log).
pub fn figure(line: impl std::fmt::Display) {
    use std::io::Write;
    let line = line.to_string();
    println!("{line}");
    let path = repo().join("target/test-figures.txt");
    let written = std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        eprintln!("cannot keep the figure in {}: {e}", path.display());
    }
}

/// Stops each service gracefully; fails on the first that had failed.
pub async fn stop_all(services: impl IntoIterator<Item = Service>) -> anyhow::Result<()> {
    for s in services {
        s.stop().await?;
    }
    Ok(())
}

/// A built service of this workspace: its bound admin address, and its run.
pub trait App: Send + 'static {
    fn admin_addr(&self) -> SocketAddr;
    fn run(self, shutdown: CancellationToken) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
}

macro_rules! app {
    ($($t:ty),+) => {$(
        impl App for $t {
            fn admin_addr(&self) -> SocketAddr {
                <$t>::admin_addr(self)
            }
            fn run(self, shutdown: CancellationToken) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> {
                Box::pin(<$t>::run(self, shutdown))
            }
        }
    )+};
}
app!(uwl_sync::App, uwl_miner::App, uwl_verifier::App, uwl_metrics::App, uwl_ingest::App);

/// A service running in this process.
pub struct Service {
    pub name: String,
    token: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    /// The admin address, once built (port 0 in the settings: the one bound).
    admin: watch::Receiver<Option<SocketAddr>>,
}

impl Service {
    /// Builds the service (binding its ports) and runs it, in the background.
    pub fn start<A: App>(name: String, build: impl Future<Output = anyhow::Result<A>> + Send + 'static) -> Self {
        let token = CancellationToken::new();
        let (tx, admin) = watch::channel(None);
        let t = token.clone();
        let task = tokio::spawn(async move {
            let app = build.await?;
            tx.send_replace(Some(app.admin_addr()));
            app.run(t).await
        });
        Self { name, token, task, admin }
    }

    /// The admin address the service bound (waits for its build).
    pub async fn admin_addr(&self) -> anyhow::Result<SocketAddr> {
        let mut rx = self.admin.clone();
        let addr = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(Option::is_some))
            .await
            .with_context(|| format!("{} not built within 20 s", self.name))?
            .map_err(|_| anyhow::anyhow!("{} failed to build", self.name))?;
        addr.ok_or_else(|| anyhow::anyhow!("{} has no admin address", self.name))
    }


    /// Graceful stop; fails if the service had failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.token.cancel();
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(Ok(r)) => r.with_context(|| format!("{} failed", self.name)),
            Ok(Err(e)) => bail!("{} panicked: {e}", self.name),
            Err(_) => bail!("{} did not stop within 10 s", self.name),
        }
    }

    /// Abrupt end (the task is dropped at its next await point), like a crash
    /// of the process: what was committed stays, nothing else runs.
    pub fn kill(self) {
        self.task.abort();
    }
}

/// A client of the bus for tests.
pub struct Client {
    pub bus: Bus,
    pub timeout: Duration,
}

impl Client {
    /// To a server without users.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::login(url, &Login::open(Role::Admin, "test")).await
    }

    pub async fn login(url: &str, login: &Login) -> anyhow::Result<Self> {
        let bus = Bus::connect(url, login).await?;
        Ok(Self { bus, timeout: Duration::from_secs(5) })
    }

    pub async fn submit(&self, node: &str, pair: &TxPair, origin: SubmitOrigin, wait_block_ms: u64) -> Result<SubmitReply, BusError> {
        let req = SubmitRequest { pair: pair.clone(), origin, wait_block_ms, verified: true };
        self.offer(node, req, self.timeout + Duration::from_millis(wait_block_ms)).await
    }

    /// A pair offered as if its result had not been verified (ingest's verdict `verified: false`).
    pub async fn submit_unverified(&self, node: &str, pair: &TxPair) -> Result<SubmitReply, BusError> {
        let req = SubmitRequest { pair: pair.clone(), origin: SubmitOrigin::Local, wait_block_ms: 0, verified: false };
        self.offer(node, req, self.timeout).await
    }

    async fn offer(&self, node: &str, req: SubmitRequest, timeout: Duration) -> Result<SubmitReply, BusError> {
        let mut replies = self.bus.ask(node, SubmitBatch { items: vec![req] }, timeout, &RequestId::new()).await?;
        match replies.pop() {
            Some(r) if replies.is_empty() => r.map_err(BusError::Remote),
            _ => Err(BusError::Protocol("a batch of one was not answered with one reply".into())),
        }
    }

    pub async fn sync_stats(&self, node: &str) -> Result<SyncStats, BusError> {
        self.bus.ask(node, SyncStatsQuery {}, self.timeout, &RequestId::new()).await
    }

    pub async fn miner_stats(&self, node: &str) -> Result<MinerStats, BusError> {
        self.bus.ask(node, MinerStatsQuery {}, self.timeout, &RequestId::new()).await
    }

    /// What `node`'s miner holds for a receipt (pending, orphaned, set aside).
    pub async fn miner_receipt(&self, node: &str, receipt_id: uwl_ledger::ReceiptId) -> Result<MinerReceipt, BusError> {
        self.bus.ask(node, MinerReceiptQuery { receipt_id }, self.timeout, &RequestId::new()).await
    }

    /// Where each identity landed in `node`'s chain.
    pub async fn landed(&self, node: &str, ids: &[uwl_ledger::Identity]) -> Result<ContainsReply, BusError> {
        self.bus.ask(node, ContainsQuery { ids: ids.to_vec() }, self.timeout, &RequestId::new()).await
    }

    pub async fn balance(&self, node: &str, client_id: &str) -> Result<BalanceReply, BusError> {
        self.bus.ask(node, BalanceQuery { client_id: client_id.to_owned() }, self.timeout, &RequestId::new()).await
    }

    /// The metrics service's cluster view (Prometheus text).
    pub async fn cluster_view(&self) -> Result<String, BusError> {
        self.bus.ask("", ClusterView {}, self.timeout, &RequestId::new()).await
    }

    /// Waits until `node`'s sync (and miner, if `miner`) answer.
    pub async fn ready(&self, node: &str, miner: bool) -> anyhow::Result<()> {
        wait_for(&format!("{node} ready"), Duration::from_secs(20), || async {
            self.sync_stats(node).await?;
            if miner {
                self.miner_stats(node).await?;
            }
            Ok(Some(()))
        })
        .await
    }

    /// The whole chain of `node` after block 0.
    pub async fn chain(&self, node: &str) -> Result<Vec<Block>, BusError> {
        let mut out: Vec<Block> = Vec::new();
        loop {
            let from = out.last().map_or(1, |b| b.index + 1);
            let q = BlocksQuery { locator: vec![], from, limit: 500 };
            let r = self.bus.ask(node, q, self.timeout, &RequestId::new()).await?;
            if r.blocks.is_empty() {
                return Ok(out);
            }
            out.extend(r.blocks);
        }
    }
}

/// A JSON client of one ingest (or nginx) base URL.
#[derive(Clone)]
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

/// Status, JSON body (Null if none) and headers of an answer.
pub type Answer = (u16, serde_json::Value, reqwest::header::HeaderMap);

impl Http {
    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        Self { base: base.trim_end_matches('/').to_owned(), client }
    }

    async fn answer(r: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let resp = r.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let body = if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).with_context(|| format!("not JSON ({status}): {text}"))? };
        Ok((status, body, headers))
    }

    /// Waits until the instance's `/health` answers ok, at most `limit`.
    pub async fn ready(&self, limit: Duration) -> anyhow::Result<()> {
        wait_for(&format!("{} ready", self.base), limit, || async {
            let (code, body, _) = self.get("/health", None).await?;
            Ok((code == 200 && body["status"] == "ok").then_some(()))
        })
        .await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> anyhow::Result<Answer> {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        Self::answer(r).await
    }

    pub async fn post_raw(&self, path: &str, key: Option<&str>, body: Vec<u8>) -> anyhow::Result<Answer> {
        let mut r = self.client.post(format!("{}{path}", self.base)).header("content-type", "application/json").body(body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        Self::answer(r).await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: &serde_json::Value) -> anyhow::Result<Answer> {
        self.post_raw(path, key, serde_json::to_vec(body)?).await
    }

    /// `(client_id, api_key)` of a new client.
    pub async fn register(&self) -> anyhow::Result<(String, String)> {
        let (code, body, _) = self.post("/register", None, &serde_json::json!({})).await?;
        anyhow::ensure!(code == 200, "register: {code} {body}");
        Ok((body["client_id"].as_str().unwrap_or_default().to_owned(), body["api_key"].as_str().unwrap_or_default().to_owned()))
    }

    pub async fn task(&self, key: &str, kind: &str) -> anyhow::Result<serde_json::Value> {
        let (code, body, _) = self.get(&format!("/get_task?kind={kind}"), Some(key)).await?;
        anyhow::ensure!(code == 200, "get_task: {code} {body}");
        Ok(body)
    }

    pub async fn submit(&self, key: &str, client: &str, contract_id: &str, result: &serde_json::Value) -> anyhow::Result<Answer> {
        let body = serde_json::json!({"client_id": client, "contract_id": contract_id, "result_data": result});
        self.post("/submit_work", Some(key), &body).await
    }
}

/// The honest answer to a task as `get_task` returned it (what a worker computes).
/// (The wire task must decode as the API's `Task`.)
pub fn solve_task(task: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let task: uwl_api::Task = serde_json::from_value(task.clone())?;
    Ok(uwl_tasks::solve(&task.params))
}

/// Identities in `chain`, with how often each appears.
pub fn identity_counts(chain: &[Block]) -> std::collections::HashMap<Identity, usize> {
    let mut m = std::collections::HashMap::new();
    for p in chain.iter().flat_map(|b| &b.transactions) {
        *m.entry(p.identity()).or_insert(0) += 1;
    }
    m
}

/// Polls `check` every 100 ms until it returns `Ok(Some(v))`, or fails
/// after `limit` with the last state it described.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        let last = match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "condition not met".to_owned(),
            Err(e) => format!("{e:#}"),
        };
        if start.elapsed() > limit {
            bail!("timed out after {limit:?} waiting for {what}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Captures every log line of this test process (for assertions on logs).
pub fn capture_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buf: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let writer = move || LogWriter(buf);
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")))
            .with_ansi(false)
            .with_writer(writer)
            .try_init();
        buf
    })
}

pub fn logs_contain(needle: &str) -> bool {
    let logs = capture_logs().lock().unwrap_or_else(PoisonError::into_inner);
    String::from_utf8_lossy(&logs).contains(needle)
}

struct LogWriter(&'static Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(b);
        std::io::stderr().write_all(b)?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The NATS secrets of a test deployment, as `deploy/cluster` writes them
/// into `deploy/.env`: the password of every user `nats/users.conf` names
/// and the routes', each `<tag>-<variable in lower case>`.
pub fn nats_secrets(tag: &str) -> anyhow::Result<Vec<(String, String)>> {
    let users = std::fs::read_to_string(repo().join("nats/users.conf")).context("reading nats/users.conf")?;
    let vars = users.split("password: $").skip(1).filter_map(|rest| rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next());
    Ok(vars
        .map(str::to_owned)
        .chain(["NATS_ROUTE_PASSWORD".to_owned()])
        .map(|v| {
            let value = format!("{tag}-{}", v.to_lowercase());
            (v, value)
        })
        .collect())
}

/// Fast test network parameters: 1 s rounds.
pub fn fast_params() -> NetworkParams {
    NetworkParams { t_round_ms: 1_000, max_future_ms: 5_000, max_pairs_per_block: 500, tasks: testkit::bounds() }
}
pub mod browser;
pub mod faults;
pub mod relay;
pub mod sites;

/// Removes containers and networks of earlier test clusters that an aborted
/// run left behind (they would hold the cluster's fixed edge subnet).
pub fn remove_stale_test_clusters() {
    let run = |args: &[&str]| {
        std::process::Command::new("docker").args(args).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    };
    let containers = run(&["ps", "-aq", "--filter", "name=uwltest", "--filter", "name=uwlf"]);
    let ids: Vec<&str> = containers.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        run(&args);
    }
    let networks = run(&["network", "ls", "-q", "--filter", "name=uwltest", "--filter", "name=uwlf"]);
    let ids: Vec<&str> = networks.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["network", "rm"];
        args.extend(ids);
        run(&args);
    }
}
