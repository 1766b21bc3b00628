//! `uwl-ingest`: the node's public HTTP API, stateless, any number of
//! instances per node behind nginx.
//!
//! Authentication uses self-verifying API keys and tasks are self-describing
//! signed contracts, both under an issuer key the genesis lists, so no request
//! needs a look-up to authenticate or to check a task. A submission is
//! checked in the documented order (401, 400/413, 403, 400, 200/409, 410,
//! 422), then placed per the block strategy: to this node's miner when it is
//! the leader, else forwarded to the leader's miner under a timeout, with a
//! fallback to this node's miner (option C) or a 503 (option A, followers).
//!
//! Files: `settings` (flags), `state` (what requests share), `http` (router,
//! layers, query decoding), `routes/` (handlers by resource), `placement`
//! (leader, forward, fallback), `blocks` (waiting for a pair's block),
//! `auth` (keys, rate limits), `batch` (coalesced bus requests), `error`,
//! `openapi` (the API's document, from the handlers' types).

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod auth;
mod batch;
mod blocks;
mod error;
mod http;
mod mempools;
mod metrics;
pub mod openapi;
mod placement;
mod routes;
mod settings;
mod state;

pub use auth::new_client_id;
pub use error::ApiError;
pub use placement::Strategy;
pub use routes::receipt::MAX_RECEIPT_WAIT_MS;
pub use settings::Settings;

use anyhow::Context;
use futures::StreamExt;
use metrics::Metrics;
use state::{Ingest, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uwl_bus::proto::{IngestReport, NewBlock, TipAnnouncement};
use uwl_bus::{BusError, RequestId};
use uwl_ledger::{Genesis, NodeKey};
use uwl_runtime::Runtime;

/// An ingest instance, built (keys loaded, bus connected, HTTP and admin
/// addresses bound: port 0 picks free ones), ready to run.
#[derive(Debug)]
pub struct App {
    rt: Runtime,
    listener: tokio::net::TcpListener,
    state: Shared,
}

/// Loads keys and genesis, connects to NATS and binds the HTTP address.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    settings.validate()?;
    let genesis = Genesis::load(&settings.genesis_file)?;
    let issuer = read_issuer_key(&settings.issuer_key_file)?;
    let rt = Runtime::start(uwl_bus::Role::Ingest, &settings.common).await?;
    let metrics = Metrics::new(rt.node_id())?;
    let listener = listen(settings.http_addr).with_context(|| format!("binding {}", settings.http_addr))?;
    let state = Arc::new(Ingest::new(settings, genesis, issuer, rt.bus().clone(), metrics)?);
    Ok(App { rt, listener, state })
}

/// Connections the kernel queues for accepting. The default (128) overflowed
/// when nginx opened hundreds of connections at once to a restarted
/// instance (its keep-alive pool empty): the dropped handshakes timed out,
/// and nginx took the instance out as if it were dead.
const LISTEN_BACKLOG: u32 = 4_096;

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The issuer key must exist: every ingest of the network shares it.
fn read_issuer_key(path: &std::path::Path) -> anyhow::Result<NodeKey> {
    anyhow::ensure!(path.exists(), "issuer key {} not found (the deployment generates it once)", path.display());
    Ok(NodeKey::load_or_generate(path, "issuer")?)
}

impl App {
    /// The bound HTTP API address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.rt.admin_addr()
    }

    /// Serves until `shutdown`, finishing requests in flight.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { mut rt, listener, state } = self;
        info!(http = %listener.local_addr()?, strategy = ?state.settings.strategy, "ingest listening");
        let (stop, workers) = (rt.stopping(), rt.workers_stopping());
        let router = http::router(state.clone());
        rt.spawn("http", async move { axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await });
        rt.spawn_worker("hear tips", hear_tips(state.clone(), workers.clone()));
        rt.spawn_worker("hear new blocks", hear_new_blocks(state.clone(), workers.clone()));
        rt.spawn_worker("report", report_loop(state.clone(), workers));
        let registry = state.metrics.registry.clone();
        rt.run(registry, || (true, serde_json::json!({})), shutdown).await
    }
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run(shutdown).await
}

/// Tip announcements feed the tip view and wake block waits and long-polls.
async fn hear_tips(state: Shared, stop: CancellationToken) -> Result<(), BusError> {
    let mut tips = state.bus.subscribe::<TipAnnouncement>(uwl_bus::subjects::ANY_NODE).await?;
    loop {
        let ann = tokio::select! { _ = stop.cancelled() => break, a = tips.next() => match a { Some(a) => a, None => break } };
        if state.tips.heard(&ann.node_id, ann.tip) {
            state.tip_changed.notify_waiters();
        }
    }
    Ok(())
}

/// Every node's new blocks wake the submissions waiting for their pairs.
async fn hear_new_blocks(state: Shared, stop: CancellationToken) -> Result<(), BusError> {
    let mut blocks = state.bus.subscribe::<NewBlock>(uwl_bus::subjects::ANY_NODE).await?;
    loop {
        let b = tokio::select! { _ = stop.cancelled() => break, b = blocks.next() => match b { Some(b) => b, None => break } };
        state.confirmations.landed(&b);
    }
    Ok(())
}

/// Forward counters go to the cluster view; idle clients' rate limiters are dropped.
async fn report_loop(state: Shared, stop: CancellationToken) -> Result<(), BusError> {
    let instance = format!("{}/{}", state.me(), RequestId::new().0);
    let mut timer = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! { _ = stop.cancelled() => break, _ = timer.tick() => {} }
        state.auth.forget_idle();
        let forwards = ["ok", "timeout", "no_responders", "error", "remote", "fallback_local"]
            .iter()
            .map(|r| (r.to_string(), state.metrics.forwards.with_label_values(&[r]).get()))
            .collect();
        let report = IngestReport { instance: instance.clone(), node_id: state.me().to_owned(), forwards };
        if let Err(e) = state.bus.publish(state.me(), &report).await {
            warn!(%e, "forward counters not reported");
        }
    }
    Ok(())
}
