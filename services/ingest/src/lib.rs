//! `uwl-ingest`: the HTTP API of SPEC section 3, stateless, any number of
//! instances per node behind nginx.
//!
//! Authentication uses self-verifying API keys and tasks are self-describing
//! signed contracts, both under the network's issuer key, so no request
//! needs a look-up to authenticate or to check a task. A submission is
//! checked in the documented order (401, 400/413, 403, 400, 200/409, 410,
//! 422), then placed per the block strategy: to this node's miner when it is
//! the leader, else forwarded to the leader's miner under a timeout, with a
//! fallback to this node's miner (option C) or a 503 (option A, followers).

mod auth;
mod batch;
mod error;
mod metrics;
mod routing;

pub use auth::{ApiKey, new_client_id};
pub use error::ApiError;
pub use routing::Strategy;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use futures::StreamExt;
use metrics::Metrics;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::{info, warn};
use uwl_bus::proto::*;
use uwl_bus::{subjects, Bus, BusError, RequestId, REQUEST_ID_HEADER};
use batch::Coalescer;
use uwl_bus::RemoteError;
use uwl_ledger::{result_hash, Clock, Genesis, Hash32, Identity, Landed, NodeKey, PublicKey, SystemClock, TipInfo, TxPair};
use uwl_tasks::{Contract, Kind, TaskSpec};
use uwl_telemetry::CommonSettings;

const IN_BLOCK_MESSAGE: &str = "Reward is in a block (not final: a chain replacement can move it; it then lands again)";
const PENDING_MESSAGE: &str = "Reward will be applied when included in a block";

#[derive(Parser, Debug, Clone)]
#[command(name = "uwl-ingest", about = "HTTP API of a node: auth, tasks, submissions, reads")]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonSettings,
    /// HTTP API address.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    #[arg(long, env = "GENESIS_FILE", default_value = "/config/genesis.json")]
    pub genesis_file: PathBuf,
    /// The network's issuer key (secret, generated at deployment, shared by every ingest).
    #[arg(long, env = "ISSUER_KEY_FILE", default_value = "/config/issuer.key")]
    pub issuer_key_file: PathBuf,
    /// Block strategy: hybrid (option C), leader (option A) or any (option B).
    #[arg(long, env = "STRATEGY", value_enum, default_value = "hybrid")]
    pub strategy: Strategy,
    /// Timeout of a forward to the leader's miner: covers its durable accept
    /// (fsync) and replication bound (300 ms by default), not the block.
    #[arg(long, env = "FORWARD_TIMEOUT_MS", default_value_t = 1_000)]
    pub forward_timeout_ms: u64,
    /// Retries of a forward answered with a server error before falling back.
    #[arg(long, env = "FORWARD_RETRIES", default_value_t = 1)]
    pub forward_retries: u32,
    /// After a forward times out, skip that leader this long.
    #[arg(long, env = "LEADER_DOWN_MS", default_value_t = 5_000)]
    pub leader_down_ms: u64,
    /// After acknowledging, wait this long for the block before answering.
    #[arg(long, env = "WAIT_BLOCK_MS", default_value_t = 1_000)]
    pub wait_block_ms: u64,
    /// A node's tip is fresh if announced within this bound.
    #[arg(long, env = "TIP_FRESH_MS", default_value_t = 3_000)]
    pub tip_fresh_ms: u64,
    /// Timeout of the tip request sent to a node that is not fresh.
    #[arg(long, env = "TIP_QUERY_TIMEOUT_MS", default_value_t = 300)]
    pub tip_query_timeout_ms: u64,
    /// Timeout of a verification request.
    #[arg(long, env = "VERIFY_TIMEOUT_MS", default_value_t = 2_000)]
    pub verify_timeout_ms: u64,
    /// Timeout of reads from this node's sync and miner.
    #[arg(long, env = "READ_TIMEOUT_MS", default_value_t = 1_000)]
    pub read_timeout_ms: u64,
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// How long an API key is valid after it was issued (renew before: POST /renew_key).
    #[arg(long, env = "KEY_TTL_MS", default_value_t = 30 * 24 * 3_600_000)]
    pub key_ttl_ms: u64,
    /// Requests a second each authenticated client may make (per instance;
    /// more are answered 429 with Retry-After).
    #[arg(long, env = "CLIENT_RATE_PER_S", default_value_t = 200)]
    pub client_rate_per_s: u32,
    /// Requests a client may make at once above its rate.
    #[arg(long, env = "CLIENT_BURST", default_value_t = 400)]
    pub client_burst: u32,
    /// Requests handled at once; more are answered 503.
    #[arg(long, env = "MAX_CONCURRENT", default_value_t = 1_024)]
    pub max_concurrent: usize,
    #[arg(long, env = "TASK_TTL_MS", default_value_t = 600_000)]
    pub task_ttl_ms: u64,
    #[arg(long, env = "MATMUL_N", default_value_t = 32)]
    pub matmul_n: u32,
    #[arg(long, env = "HASH_DIFFICULTY_BITS", default_value_t = 16)]
    pub hash_difficulty_bits: u32,
    #[arg(long, env = "REWARD_MATMUL", default_value_t = 10)]
    pub reward_matmul: u64,
    #[arg(long, env = "REWARD_HASH", default_value_t = 5)]
    pub reward_hash: u64,
    /// Nodes besides the validators whose tips count (followers).
    #[arg(long, env = "NODES", value_delimiter = ',')]
    pub nodes: Vec<String>,
}

impl Settings {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.common.node_id.is_empty(), "NODE_ID must not be empty");
        anyhow::ensure!(self.forward_timeout_ms >= 10, "FORWARD_TIMEOUT_MS must be at least 10");
        anyhow::ensure!(self.forward_retries <= 5, "FORWARD_RETRIES must be at most 5");
        anyhow::ensure!((1..=256).contains(&self.matmul_n), "MATMUL_N must be in 1..=256");
        anyhow::ensure!(self.hash_difficulty_bits <= 64, "HASH_DIFFICULTY_BITS must be at most 64");
        anyhow::ensure!(self.reward_matmul > 0 && self.reward_hash > 0, "rewards must be positive");
        anyhow::ensure!(self.max_body_bytes >= 1024, "MAX_BODY_BYTES must be at least 1024");
        anyhow::ensure!(self.max_concurrent >= 1, "MAX_CONCURRENT must be at least 1");
        anyhow::ensure!(self.key_ttl_ms >= 1_000, "KEY_TTL_MS must be at least 1000");
        anyhow::ensure!(self.client_rate_per_s >= 1 && self.client_burst >= 1, "CLIENT_RATE_PER_S and CLIENT_BURST must be at least 1");
        Ok(())
    }
}

/// Shared by every request of this instance.
pub(crate) struct State {
    settings: Settings,
    genesis: Genesis,
    issuer: NodeKey,
    issuer_public: PublicKey,
    auth: auth::Authenticator,
    bus: Bus,
    /// Validators and followers whose tips count, sorted.
    nodes: Vec<String>,
    validator: bool,
    tips: routing::TipView,
    tip_changed: Notify,
    permits: Semaphore,
    metrics: Metrics,
    /// Where identities landed in each node's chain (with its tip), coalesced.
    landed: HashMap<String, Coalescer<Identity, (Option<Landed>, TipInfo)>>,
    /// The pending pair of identities in this node's mempool, coalesced.
    pending: Coalescer<Identity, Option<TxPair>>,
    /// Submissions to each node's miner, coalesced.
    submits: HashMap<String, Coalescer<SubmitRequest, Result<SubmitReply, RemoteError>>>,
    /// Verifications (any verifier of the queue group), coalesced.
    verify: Coalescer<VerifyRequest, VerifyReply>,
}

type Shared = Arc<State>;

/// Most items in one coalesced request.
const BATCH_MAX: usize = 512;

fn landed_coalescer(bus: &Bus, node: &str, timeout: Duration) -> Coalescer<Identity, (Option<Landed>, TipInfo)> {
    let (bus, subject) = (bus.clone(), subjects::sync_read(node));
    Coalescer::spawn(BATCH_MAX, move |ids, rid| {
        let (bus, subject) = (bus.clone(), subject.clone());
        async move {
            let r: ContainsReply = bus.request(subject, &SyncQuery::Contains { ids }, timeout, &rid).await?;
            Ok(r.landed.into_iter().map(|l| (l, r.tip)).collect())
        }
    })
}

/// Sends each batch as one request `wrap(items)` on `subject`, answered
/// with one value per item, in order.
fn batch_requests<K, V, Q>(bus: &Bus, subject: String, timeout: Duration, wrap: fn(Vec<K>) -> Q) -> Coalescer<K, V>
where
    K: Send + 'static,
    V: serde::de::DeserializeOwned + Send + 'static,
    Q: serde::Serialize + Send + Sync + 'static,
{
    let bus = bus.clone();
    Coalescer::spawn(BATCH_MAX, move |items, rid| {
        let (bus, subject) = (bus.clone(), subject.clone());
        async move { bus.request(subject, &wrap(items), timeout, &rid).await }
    })
}

impl State {
    fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.read_timeout_ms)
    }

    fn me(&self) -> &str {
        &self.settings.common.node_id
    }

    async fn sync<R: serde::de::DeserializeOwned>(&self, q: &SyncQuery, rid: &RequestId) -> Result<R, ApiError> {
        self.bus
            .request(subjects::sync_read(self.me()), q, self.read_timeout(), rid)
            .await
            .map_err(|e| ApiError::unavailable(format!("this node's chain: {e}")))
    }

    /// Where `id` landed in `node`'s chain, and that chain's tip.
    async fn landed_in(&self, node: &str, id: Identity, rid: &RequestId) -> Result<(Option<Landed>, TipInfo), BusError> {
        match self.landed.get(node) {
            Some(c) => c.call(id, rid).await,
            None => Err(BusError::NoResponders(subjects::sync_read(node))),
        }
    }

    async fn miner<R: serde::de::DeserializeOwned>(&self, q: &MinerQuery, rid: &RequestId) -> Result<R, ApiError> {
        self.bus
            .request(subjects::miner_read(self.me()), q, self.read_timeout(), rid)
            .await
            .map_err(|e| ApiError::unavailable(format!("this node's mempool: {e}")))
    }
}

/// A bound HTTP server, ready to run (port 0 picks a free port).
pub struct App {
    listener: tokio::net::TcpListener,
    router: Router,
    state: Shared,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("addr", &self.listener.local_addr().ok()).finish()
    }
}

/// Loads keys and genesis, connects to NATS and binds the HTTP address.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    settings.validate()?;
    let genesis = Genesis::load(&settings.genesis_file)?;
    let issuer = read_issuer_key(&settings.issuer_key_file)?;
    let issuer_public = issuer.public_key();
    let id = settings.common.node_id.clone();
    let bus = Bus::connect(&settings.common.nats_url, &format!("uwl-ingest/{id}")).await?;
    let mut nodes: Vec<String> = genesis.validators.iter().map(|v| v.node_id.clone()).collect();
    nodes.extend(settings.nodes.iter().cloned());
    nodes.sort();
    nodes.dedup();
    let validator = genesis.validator(&id).is_some();
    let metrics = Metrics::new(&id)?;
    let read_timeout = Duration::from_millis(settings.read_timeout_ms);
    let forward_timeout = Duration::from_millis(settings.forward_timeout_ms);
    let mut all: Vec<&String> = nodes.iter().collect();
    if !nodes.contains(&id) {
        all.push(&id);
    }
    let landed = all.iter().map(|n| ((*n).clone(), landed_coalescer(&bus, n, read_timeout))).collect();
    let submits = all
        .iter()
        .map(|n| ((*n).clone(), batch_requests(&bus, subjects::miner_submit(n), forward_timeout, |items| SubmitBatch { items })))
        .collect();
    let pending = batch_requests(&bus, subjects::miner_read(&id), read_timeout, |ids| MinerQuery::Identities { ids });
    let verify_timeout = Duration::from_millis(settings.verify_timeout_ms);
    let verify = batch_requests(&bus, subjects::verify(&id), verify_timeout, |items| VerifyBatch { items });
    let state = Arc::new(State {
        verify,
        landed,
        pending,
        submits,
        permits: Semaphore::new(settings.max_concurrent),
        settings: settings.clone(),
        genesis,
        issuer,
        issuer_public,
        auth: auth::Authenticator::new(
            issuer_public,
            settings.key_ttl_ms,
            NonZeroU32::new(settings.client_rate_per_s).context("CLIENT_RATE_PER_S")?,
            NonZeroU32::new(settings.client_burst).context("CLIENT_BURST")?,
        ),
        bus,
        nodes,
        validator,
        tips: routing::TipView::default(),
        tip_changed: Notify::new(),
        metrics,
    });
    let listener = tokio::net::TcpListener::bind(settings.http_addr).await.with_context(|| format!("binding {}", settings.http_addr))?;
    Ok(App { listener, router: router(state.clone()), state })
}

/// The issuer key must exist: every ingest of the network shares it.
fn read_issuer_key(path: &std::path::Path) -> anyhow::Result<NodeKey> {
    anyhow::ensure!(path.exists(), "issuer key {} not found (the deployment generates it once)", path.display());
    Ok(NodeKey::load_or_generate(path, "issuer")?)
}

impl App {
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown`, finishing requests in flight.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let state = self.state.clone();
        let id = state.me().to_owned();
        let health = {
            let bus = state.bus.clone();
            Arc::new(move || {
                let connected = bus.is_connected();
                uwl_telemetry::Health { ready: connected, detail: json!({"service": "ingest", "nats": connected}) }
            })
        };
        let admin = uwl_telemetry::serve_admin(state.settings.common.admin_addr, state.metrics.registry.clone(), health, shutdown.clone()).await?;
        info!(http = %self.addr(), %admin, strategy = ?state.settings.strategy, "ingest ready");
        let background = tokio::spawn(background(state.clone(), shutdown.clone()));
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await?;
        shutdown.cancel();
        let _ = background.await;
        state.bus.drain().await;
        info!(node = %id, "ingest stopped");
        Ok(())
    }
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run(shutdown).await
}

/// Tip announcements feed the tip view; counters go to the cluster view.
async fn background(state: Shared, shutdown: CancellationToken) {
    let mut tips = match state.bus.subscribe(subjects::TIPS.to_owned()).await {
        Ok(s) => s,
        Err(e) => {
            warn!(%e, "cannot subscribe to tip announcements");
            return;
        }
    };
    let instance = format!("{}/{}", state.me(), RequestId::new().0);
    let mut report = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            m = tips.next() => {
                let Some(m) = m else { break };
                if let Ok(ann) = serde_json::from_slice::<TipAnnouncement>(&m.payload) {
                    if state.tips.heard(&ann.node_id, ann.tip) {
                        state.tip_changed.notify_waiters();
                    }
                }
            }
            _ = report.tick() => {
                state.auth.forget_idle();
                let forwards = ["ok", "timeout", "no_responders", "error", "remote", "fallback_local"]
                    .iter()
                    .map(|r| (r.to_string(), state.metrics.forwards.with_label_values(&[r]).get()))
                    .collect();
                let r = IngestReport { instance: instance.clone(), node_id: state.me().to_owned(), forwards };
                let _ = state.bus.publish(subjects::INGEST_REPORTS.to_owned(), &r).await;
            }
        }
    }
}

fn router(state: Shared) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .route("/register", post(register))
        .route("/renew_key", post(renew_key))
        .route("/get_task", get(get_task))
        .route("/submit_work", post(submit_work))
        .route("/get_balance", get(get_balance))
        .route("/orphaned_tx", get(orphaned_tx))
        .route("/receipt/{receipt_id}", get(receipt))
        .route("/chain", get(chain))
        .route("/metrics", get(metrics_view))
        .route("/health", get(health))
        .route("/", get(dashboard))
        .route("/static/{file}", get(static_file))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), admission));
    Router::new()
        .route("/livez", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(api)
        .layer(middleware::map_response(json_errors))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "internal", "message": "internal error"}))).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let rid = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("http", method = %req.method(), uri = %req.uri().path(), request_id = %rid)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Bounded concurrency (503 when saturated) and per-route metrics.
async fn admission(axum::extract::State(state): axum::extract::State<Shared>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let Ok(_permit) = state.permits.try_acquire() else {
        state.metrics.requests.with_label_values(&[&route, "503"]).inc();
        return ApiError::unavailable("overloaded: too many requests in flight").into_response();
    };
    let t = std::time::Instant::now();
    let resp = next.run(req).await;
    state.metrics.seconds.with_label_values(&[&route]).observe(t.elapsed().as_secs_f64());
    state.metrics.requests.with_label_values(&[&route, resp.status().as_str()]).inc();
    resp
}

fn rid(headers: &HeaderMap) -> RequestId {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(|v| RequestId(v.to_owned()))
        .unwrap_or_default()
}

/// The longest receipt long-poll (`GET /receipt/{id}?wait_ms=`). nginx's
/// read timeout on that route is above it (a test compares the two).
pub const MAX_RECEIPT_WAIT_MS: u64 = 30_000;
/// Most blocks in one `GET /chain` page.
const CHAIN_PAGE_MAX: u64 = 500;
/// The highest block index a store can hold (SQLite's signed 64-bit integers).
const MAX_INDEX: u64 = i64::MAX as u64;

/// The integer query parameter `key` (`default` when absent): anything that
/// is not an integer in `range` is a 400 naming the range, never passed on.
fn query_int(q: &HashMap<String, String>, key: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, ApiError> {
    let Some(v) = q.get(key) else { return Ok(default) };
    v.parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| ApiError::BadRequest(format!("{key} must be an integer from {} to {}", range.start(), range.end())))
}

/// A list's cursor (`cursor`, `pending_cursor`, `orphaned_cursor`): the
/// receipt id a page ended at, as `next_*cursor` gave it.
fn query_cursor(q: &HashMap<String, String>, key: &str) -> Result<Option<Hash32>, ApiError> {
    q.get(key)
        .map(|v| Hash32::from_hex(v).map_err(|_| ApiError::BadRequest(format!("{key} must be a cursor a previous page returned (64 hex digits)"))))
        .transpose()
}

/// The cursor of the next page, when there is one.
fn next_cursor(more: bool, last: Option<Hash32>) -> Option<Hash32> {
    last.filter(|_| more)
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Every error answer is JSON: axum's own rejections (a path or query that
/// does not decode, a wrong content type) are plain text, so they are
/// rewritten into the API's error shape with their text as the message.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 4_096).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => e.to_string(),
    };
    let mut out = ApiError::from_status(status, text).into_response();
    for (name, value) in parts.headers.iter().filter(|(n, _)| *n == axum::http::header::ALLOW || *n == axum::http::header::RETRY_AFTER) {
        out.headers_mut().insert(name.clone(), value.clone());
    }
    *out.status_mut() = status;
    out
}

/// The dashboard (SPEC section 4): static assets built into the binary.
/// The dashboard keeps an API key in the browser's storage: its page may
/// run only its own scripts (and its Web Worker), talk only to this origin,
/// and not be framed.
const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

async fn dashboard() -> impl IntoResponse {
    ([("content-security-policy", DASHBOARD_CSP)], Html(include_str!("../static/index.html")))
}

async fn static_file(Path(file): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let (ctype, body) = match file.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", include_str!("../static/app.js")),
        "worker.js" => ("text/javascript; charset=utf-8", include_str!("../static/worker.js")),
        "style.css" => ("text/css; charset=utf-8", include_str!("../static/style.css")),
        _ => return Err(ApiError::NotFound("no such asset".into())),
    };
    Ok(([("content-type", ctype), ("cache-control", "no-cache")], body))
}

async fn register(axum::extract::State(state): axum::extract::State<Shared>) -> Json<Value> {
    issue_key(&state, new_client_id())
}

/// `POST /renew_key`: a valid key buys a new one for the same client.
async fn renew_key(axum::extract::State(state): axum::extract::State<Shared>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let client_id = state.auth.authenticate(&headers, now_ms())?;
    Ok(issue_key(&state, client_id))
}

/// A new key for `client_id`, issued now.
fn issue_key(state: &State, client_id: String) -> Json<Value> {
    let issued_at = now_ms();
    let api_key = ApiKey { client_id: client_id.clone(), issued_at }.seal(&state.issuer);
    Json(json!({ "client_id": client_id, "api_key": api_key, "issued_at": issued_at, "expires_at": state.auth.expires_at(issued_at) }))
}

async fn get_task(
    axum::extract::State(state): axum::extract::State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<uwl_tasks::Task>, ApiError> {
    let client_id = state.auth.authenticate(&headers, now_ms())?;
    let kind: Kind = q
        .get("kind")
        .ok_or_else(|| ApiError::BadRequest("kind is required: matmul or hash".into()))?
        .parse()
        .map_err(|e: uwl_tasks::ContractError| ApiError::BadRequest(e.to_string()))?;
    let s = &state.settings;
    let (spec, reward) = match kind {
        Kind::Matmul => (TaskSpec::Matmul { n: s.matmul_n }, s.reward_matmul),
        Kind::Hash => (TaskSpec::Hash { difficulty_bits: s.hash_difficulty_bits }, s.reward_hash),
    };
    let contract = Contract { spec, seed: rand::random(), client_id, reward, expires_at: now_ms() + s.task_ttl_ms };
    Ok(Json(contract.task(contract.seal(&state.issuer))))
}

#[derive(Debug, Deserialize)]
struct SubmitBody {
    client_id: String,
    contract_id: String,
    result_data: Value,
}

fn block_fields(b: &Option<BlockRef>) -> Value {
    match b {
        Some(b) => json!({"in_block": true, "block_index": b.index, "block_hash": b.hash, "confirmations": b.confirmations}),
        None => json!({"in_block": false}),
    }
}

fn submit_answer(status: &str, receipt_id: &Hash32, block: &Option<BlockRef>, served_by: &str, leader: &str, fallback: bool, replicated: bool) -> Json<Value> {
    let mut v = block_fields(block);
    let message = if block.is_some() { IN_BLOCK_MESSAGE } else { PENDING_MESSAGE };
    let extra = json!({
        "status": status, "receipt_id": receipt_id, "message": message, "served_by": served_by,
        "leader": leader, "fallback": fallback, "replicated": replicated,
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    Json(v)
}

/// `POST /submit_work`, checks in the documented order.
async fn submit_work(
    axum::extract::State(state): axum::extract::State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let rid = rid(&headers);
    let client = state.auth.authenticate(&headers, now_ms())?;
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => ApiError::PayloadTooLarge(state.settings.max_body_bytes),
        other => ApiError::BadRequest(other.body_text()),
    })?;
    let body: SubmitBody = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body must be {{client_id, contract_id, result_data}}: {e}")))?;
    if body.client_id.len() > 128 || body.contract_id.len() > 2_048 {
        return Err(ApiError::BadRequest("client_id or contract_id is too long".into()));
    }
    if body.client_id != client {
        return Err(ApiError::Forbidden("client_id is not the API key's client".into()));
    }
    let contract = Contract::open(&state.issuer_public, &body.contract_id)
        .map_err(|_| ApiError::Forbidden("contract_id is not a task issued by this network".into()))?;
    if contract.client_id != client {
        return Err(ApiError::Forbidden("this task was issued to another client".into()));
    }
    uwl_tasks::parse_result(&contract, &body.result_data).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let pair = TxPair::new(&client, &body.contract_id, contract.reward, result_hash(&body.result_data));
    let receipt_id = pair.receipt_id();

    // Identity: already rewarded or pending here? Then expiry, then the
    // verdict. The two look-ups and the verification go out at once; their
    // answers are judged in that documented order.
    let phase = |name: &str, since: std::time::Instant| state.metrics.phases.with_label_values(&[name]).observe(since.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    let id = pair.identity();
    let (landed, pending, verdict) = tokio::join!(
        state.landed_in(state.me(), id.clone(), &rid),
        state.pending.call(id, &rid),
        state.verify.call(VerifyRequest { contract: contract.clone(), result_data: body.result_data }, &rid),
    );
    phase("checks", t);
    let (landed, tip) = landed.map_err(|e| ApiError::unavailable(format!("this node's chain: {e}")))?;
    if let Some(l) = landed {
        if l.receipt_id != receipt_id {
            return Err(ApiError::Conflict { existing: l.receipt_id });
        }
        let b = Some(BlockRef { index: l.block_index, hash: l.block_hash, confirmations: tip.index.saturating_sub(l.block_index) + 1 });
        return Ok(submit_answer("already_processed", &receipt_id, &b, state.me(), "", false, true));
    }
    let pending = pending.map_err(|e| ApiError::unavailable(format!("this node's mempool: {e}")))?;
    if let Some(p) = pending {
        if p.receipt_id() != receipt_id {
            return Err(ApiError::Conflict { existing: p.receipt_id() });
        }
        return Ok(submit_answer("already_processed", &receipt_id, &None, state.me(), "", false, false));
    }
    if contract.is_expired(now_ms()) {
        return Err(ApiError::Expired { expires_at: contract.expires_at });
    }
    let verdict = verdict.map_err(|e| match e {
            BusError::Remote(r) if r.code == "bad_request" => ApiError::BadRequest(r.message),
            other => ApiError::unavailable(format!("verifier: {other}")),
        })?;
    if let Some(shape) = verdict.shape_error {
        return Err(ApiError::BadRequest(shape));
    }
    if !verdict.valid {
        return Err(ApiError::InvalidResult("the result does not solve the task".into()));
    }

    let t = std::time::Instant::now();
    let routed = state.route(&pair, tip, &rid).await?;
    phase("place", t);
    let r = routed.reply;
    let status = match r.status {
        SubmitStatus::Accepted => "accepted",
        SubmitStatus::AlreadyPending | SubmitStatus::AlreadyInChain => "already_processed",
        SubmitStatus::Conflict => {
            return Err(ApiError::Conflict { existing: r.existing_receipt.unwrap_or(r.receipt_id) });
        }
    };
    let mut block = r.in_block.clone();
    if block.is_none() && state.settings.wait_block_ms > 0 {
        let t = std::time::Instant::now();
        block = state.wait_for_block(&r.served_by, &pair, Duration::from_millis(state.settings.wait_block_ms), &rid).await;
        phase("block", t);
    }
    Ok(submit_answer(status, &receipt_id, &block, &r.served_by, &routed.leader, routed.fallback, r.replicated))
}

fn own_client(headers: &HeaderMap, state: &State, q: &HashMap<String, String>) -> Result<String, ApiError> {
    let client = state.auth.authenticate(headers, now_ms())?;
    let asked = q.get("client_id").ok_or_else(|| ApiError::BadRequest("client_id is required".into()))?;
    if *asked != client {
        return Err(ApiError::Forbidden("an API key reads only its own client's data".into()));
    }
    Ok(client)
}

/// The current status of pairs from orphaned blocks.
async fn orphan_statuses(state: &State, records: &[uwl_ledger::OrphanRecord], rid: &RequestId) -> Result<Vec<Value>, ApiError> {
    let ids: Vec<Identity> = records.iter().map(|r| r.pair.identity()).collect();
    let landed: ContainsReply = state.sync(&SyncQuery::Contains { ids }, rid).await?;
    Ok(records
        .iter()
        .zip(landed.landed)
        .map(|(r, l)| {
            // Not in the chain: re-queued (pending here or at a peer) until it lands again.
            let status = match l {
                Some(l) if l.receipt_id == r.pair.receipt_id() => "in_block",
                Some(_) => "superseded",
                None => "orphaned_requeued",
            };
            json!({
                "receipt_id": r.pair.receipt_id(), "contract_id": r.pair.reward_tx.contract_id, "amount": r.pair.amount(),
                "orphaned_from_block": r.block_index, "orphaned_block_hash": r.block_hash, "orphaned_at": r.orphaned_ms,
                "status": status, "block_index": l.map(|l| l.block_index),
            })
        })
        .collect())
}

async fn get_balance(
    axum::extract::State(state): axum::extract::State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let rid = rid(&headers);
    let client = own_client(&headers, &state, &q)?;
    let limit = query_int(&q, "limit", u64::from(PAGE_DEFAULT), 1..=u64::from(PAGE_MAX))? as u32;
    let (pending_after, orphaned_after) = (query_cursor(&q, "pending_cursor")?, query_cursor(&q, "orphaned_cursor")?);
    let bal: BalanceReply = state.sync(&SyncQuery::Balance { client_id: client.clone() }, &rid).await?;
    let mine: ClientPending = state.miner(&MinerQuery::Client { client_id: client.clone(), limit, pending_after, orphaned_after }, &rid).await?;
    let next_pending = next_cursor(mine.more_pending, mine.pending.last().map(TxPair::receipt_id));
    let next_orphaned = next_cursor(mine.more_orphaned, mine.orphaned.last().map(|o| o.pair.receipt_id()));
    // The mempool lets go of pairs a peer's block carried on its next
    // reconciliation: those already counted in the balance read above (in
    // a block at or below its tip) are not pending any more.
    let ids: Vec<Identity> = mine.pending.iter().map(TxPair::identity).collect();
    let landed: ContainsReply =
        if ids.is_empty() { ContainsReply { landed: vec![], tip: bal.tip } } else { state.sync(&SyncQuery::Contains { ids }, &rid).await? };
    let counted = landed.landed.iter().map(|l| l.is_some_and(|l| l.block_index <= bal.tip.index)).chain(std::iter::repeat(false));
    let pending: Vec<Value> = mine
        .pending
        .iter()
        .zip(counted)
        .filter(|(_, counted)| !counted)
        .map(|(p, _)| p)
        .map(|p| json!({"receipt_id": p.receipt_id(), "contract_id": p.reward_tx.contract_id, "amount": p.amount(), "message": "Reward pending inclusion in block"}))
        .collect();
    let orphaned = orphan_statuses(&state, &mine.orphaned, &rid).await?;
    let last_sync = state.tips.last_heard(state.me()).map(|(_, at)| now_ms().saturating_sub(at.elapsed().as_millis() as u64));
    Ok(Json(json!({
        "client_id": client, "balance": bal.balance, "pending_reward": pending, "orphaned": orphaned,
        "next_pending_cursor": next_pending, "next_orphaned_cursor": next_orphaned,
        "chain_tip_index": bal.tip.index, "chain_tip_hash": bal.tip.hash, "last_sync_time": last_sync, "node_id": state.me(),
    })))
}

async fn orphaned_tx(
    axum::extract::State(state): axum::extract::State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let rid = rid(&headers);
    let client = own_client(&headers, &state, &q)?;
    let limit = query_int(&q, "limit", u64::from(PAGE_DEFAULT), 1..=u64::from(PAGE_MAX))? as u32;
    let query = MinerQuery::Client { client_id: client.clone(), limit, pending_after: None, orphaned_after: query_cursor(&q, "cursor")? };
    let mine: ClientPending = state.miner(&query, &rid).await?;
    let next = next_cursor(mine.more_orphaned, mine.orphaned.last().map(|o| o.pair.receipt_id()));
    let orphaned = orphan_statuses(&state, &mine.orphaned, &rid).await?;
    Ok(Json(json!({ "client_id": client, "orphaned": orphaned, "next_cursor": next, "node_id": state.me() })))
}

/// A receipt's status on this node, and the client it belongs to.
async fn receipt_status(state: &State, receipt_id: &Hash32, rid: &RequestId) -> Result<(Value, Option<String>), ApiError> {
    let in_chain: ReceiptReply = state.sync(&SyncQuery::Receipt { receipt_id: *receipt_id }, rid).await?;
    let local: MinerReceipt = state.miner(&MinerQuery::Receipt { receipt_id: *receipt_id }, rid).await?;
    let orphaned_before = local.orphaned.as_ref().map(|o| o.block_index);
    let mut v = json!({ "receipt_id": receipt_id, "node_id": state.me(), "orphaned_from_block": orphaned_before });
    let client = if let Some((id, l)) = in_chain.landed {
        v["status"] = json!("in_block");
        v["block_index"] = json!(l.block_index);
        v["block_hash"] = json!(l.block_hash);
        v["confirmations"] = json!(in_chain.tip.index.saturating_sub(l.block_index) + 1);
        v["contract_id"] = json!(id.contract_id);
        Some(id.client_id)
    } else if let Some(by) = local.superseded_by {
        v["status"] = json!("superseded");
        v["superseded_by"] = json!(by);
        local.orphaned.map(|o| o.pair.client_id().to_owned())
    } else if let Some(p) = local.pending {
        v["status"] = json!(if orphaned_before.is_some() { "orphaned_requeued" } else { "pending" });
        v["contract_id"] = json!(p.reward_tx.contract_id);
        Some(p.client_id().to_owned())
    } else if let Some(o) = local.orphaned {
        v["status"] = json!("orphaned_requeued");
        Some(o.pair.client_id().to_owned())
    } else {
        v["status"] = json!("unknown");
        None
    };
    Ok((v, client))
}

async fn receipt(
    axum::extract::State(state): axum::extract::State<Shared>,
    headers: HeaderMap,
    Path(receipt_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let rid = rid(&headers);
    let client = state.auth.authenticate(&headers, now_ms())?;
    let receipt_id = Hash32::from_hex(&receipt_id).map_err(|_| ApiError::BadRequest("receipt_id must be 64 hex digits".into()))?;
    let wait_ms = query_int(&q, "wait_ms", 0, 0..=MAX_RECEIPT_WAIT_MS)?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let (first, owner) = receipt_status(&state, &receipt_id, &rid).await?;
    if owner.as_ref().is_some_and(|o| *o != client) {
        return Err(ApiError::Forbidden("this receipt belongs to another client".into()));
    }
    let mut current = first.clone();
    while current["status"] == first["status"] && tokio::time::Instant::now() < deadline {
        let changed = state.tip_changed.notified();
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
        current = receipt_status(&state, &receipt_id, &rid).await?.0;
    }
    Ok(Json(current))
}

async fn chain(
    axum::extract::State(state): axum::extract::State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let rid = rid(&headers);
    let limit = query_int(&q, "limit", 50, 1..=CHAIN_PAGE_MAX)? as u32;
    let from = query_int(&q, "from", 0, 0..=MAX_INDEX)?;
    let reply: BlocksReply = state.sync(&SyncQuery::Blocks { locator: vec![], from, limit }, &rid).await?;
    Ok(Json(json!({ "blocks": reply.blocks, "tip": reply.tip, "node_id": state.me() })))
}

async fn metrics_view(axum::extract::State(state): axum::extract::State<Shared>) -> impl IntoResponse {
    let cluster: Result<String, _> =
        state.bus.request(subjects::METRICS_CLUSTER.to_owned(), &(), Duration::from_secs(1), &RequestId::new()).await;
    let mut text = match cluster {
        Ok(t) => t,
        Err(e) => format!("# cluster view unavailable: {e}\n"),
    };
    text.push_str(&uwl_telemetry::render(&state.metrics.registry));
    ([("content-type", "text/plain; version=0.0.4")], text)
}

async fn health(axum::extract::State(state): axum::extract::State<Shared>) -> impl IntoResponse {
    let rid = RequestId::new();
    let nats = state.bus.is_connected();
    let sync = state.sync::<TipReply>(&SyncQuery::Tip, &rid).await;
    let miner = state.miner::<MinerStats>(&MinerQuery::Stats, &rid).await;
    let ready = nats && sync.is_ok() && (miner.is_ok() || !state.validator);
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" }, "node_id": state.me(), "nats": nats,
        "sync": sync.is_ok(), "miner": miner.is_ok(), "strategy": format!("{:?}", state.settings.strategy).to_lowercase(),
        "tip_index": sync.ok().map(|t| t.tip.index),
    });
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}
