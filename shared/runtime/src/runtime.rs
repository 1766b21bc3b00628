//! The service skeleton: see [`Runtime`].

use crate::{serve_admin, CommonSettings, Health};
use anyhow::Context;
use prometheus::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uwl_bus::{Bus, Role};

/// One service process: its bus connection, its bound admin address, and
/// its named background tasks in two phases: request loops (stopped first,
/// answering what they took) and workers (stopped once every request loop
/// has ended, so work a request handed them is still done).
///
/// Built in two steps like every service: [`Runtime::start`] (in a
/// service's `build`: connect, bind) then [`Runtime::run`] (in its `run`:
/// serve until shutdown). A task that ends before shutdown, with an error
/// or a panic, stops the whole service with that error (the orchestrator
/// restarts it) instead of leaving a process that looks alive and no
/// longer does its job.
#[derive(Debug)]
pub struct Runtime {
    service: &'static str,
    node_id: String,
    bus: Bus,
    admin: tokio::net::TcpListener,
    requests: Phase,
    workers: Phase,
    /// The data directory whose file system's free space `/metrics` reports.
    data_dir: Option<std::path::PathBuf>,
}

/// Tasks stopped together by one token.
#[derive(Debug, Default)]
struct Phase {
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
    stop: CancellationToken,
}

impl Phase {
    fn spawn<E: Into<anyhow::Error>>(&mut self, name: &'static str, task: impl Future<Output = Result<(), E>> + Send + 'static) {
        self.tasks.spawn(async move { (name, task.await.map_err(Into::into)) });
    }

    /// Stops the phase and waits for its tasks; the first failure is kept.
    async fn stop(&mut self, service: &str, failure: &mut Option<anyhow::Error>) {
        self.stop.cancel();
        while let Some(ended) = self.tasks.join_next().await {
            if let Err(e) = Runtime::ended(service, ended) {
                failure.get_or_insert(e);
            }
        }
    }
}

impl Runtime {
    /// Connects the service of `role` on `common.node_id` to its site's NATS server and
    /// binds its admin address (port 0 picks a free one).
    pub async fn start(role: Role, common: &CommonSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(!common.node_id.is_empty(), "NODE_ID must not be empty");
        let service = role.name();
        let bus = Bus::connect(&common.nats_url, &common.login(role)).await?;
        let admin = tokio::net::TcpListener::bind(common.admin_addr).await.with_context(|| format!("binding ADMIN_ADDR {}", common.admin_addr))?;
        Ok(Self { service, node_id: common.node_id.clone(), bus, admin, requests: Phase::default(), workers: Phase::default(), data_dir: None })
    }

    /// Reports the free space of `dir`'s file system in `/metrics` (a
    /// service that keeps a store there).
    pub fn report_disk(&mut self, dir: &std::path::Path) {
        self.data_dir = Some(dir.to_owned());
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The bound admin address (`/metrics`, `/health`).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The token request loops stop on (first phase of shutdown).
    pub fn stopping(&self) -> CancellationToken {
        self.requests.stop.clone()
    }

    /// The token workers stop on (second phase, after every request loop ended).
    pub fn workers_stopping(&self) -> CancellationToken {
        self.workers.stop.clone()
    }

    /// Runs request loop `name` (stopped first), supervised (see [`Runtime`]).
    pub fn spawn<E: Into<anyhow::Error>>(&mut self, name: &'static str, task: impl Future<Output = Result<(), E>> + Send + 'static) {
        self.requests.spawn(name, task);
    }

    /// Runs worker `name` (stopped after the request loops), supervised.
    pub fn spawn_worker<E: Into<anyhow::Error>>(&mut self, name: &'static str, task: impl Future<Output = Result<(), E>> + Send + 'static) {
        self.workers.spawn(name, task);
    }

    /// Serves the admin server (health: the bus's liveness and `ready`'s
    /// verdict and detail) until `shutdown`, then stops in two phases: every
    /// task stops taking work and finishes what it has (serve loops answer
    /// the requests in flight), then the bus drains (publications and
    /// replies flushed). A task that ends on its own first stops the service.
    pub async fn run<F>(mut self, registry: Registry, ready: F, shutdown: CancellationToken) -> anyhow::Result<()>
    where
        F: Fn() -> (bool, serde_json::Value) + Send + Sync + 'static,
    {
        let (bus, service) = (self.bus.clone(), self.service);
        registry.register(Box::new(crate::host::HostMetrics::new(bus.clone(), self.data_dir.clone())?))?;
        let health = Arc::new(move || {
            let nats = bus.is_connected();
            let (ok, mut detail) = ready();
            if let Some(d) = detail.as_object_mut() {
                d.insert("service".into(), service.into());
                d.insert("nats".into(), nats.into());
            }
            Health { ready: nats && ok, detail }
        });
        let admin_stop = CancellationToken::new();
        tracing::info!(service, node = %self.node_id, admin = %self.admin_addr(), "ready");
        let admin = serve_admin(self.admin, registry, health, admin_stop.clone());
        let mut failure = None;
        let early = tokio::select! {
            _ = shutdown.cancelled() => None,
            Some(ended) = self.requests.tasks.join_next() => Some(ended),
            Some(ended) = self.workers.tasks.join_next() => Some(ended),
        };
        if let Some(ended) = early {
            let e = Self::ended(service, ended).err().unwrap_or_else(|| anyhow::anyhow!("{service}: a task ended before shutdown"));
            tracing::error!(service, error = %format!("{e:#}"), "stopping the service");
            failure = Some(e);
        }
        self.requests.stop(service, &mut failure).await;
        self.workers.stop(service, &mut failure).await;
        self.bus.drain().await;
        admin_stop.cancel();
        if let Err(e) = admin.await {
            tracing::warn!(error = %e, "admin server task failed");
        }
        tracing::info!(service, "stopped");
        failure.map_or(Ok(()), Err)
    }

    /// Judges a task that ended: before shutdown that is a failure whatever
    /// it returned; after shutdown only its error is.
    fn ended(service: &str, ended: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>) -> anyhow::Result<()> {
        match ended {
            Ok((name, Ok(()))) => {
                tracing::debug!(service, task = name, "task ended");
                Ok(())
            }
            Ok((name, Err(e))) => {
                tracing::error!(service, task = name, error = %format!("{e:#}"), "task failed");
                Err(e.context(format!("{service} task {name}")))
            }
            Err(e) => {
                tracing::error!(service, error = %e, "task panicked");
                Err(anyhow::anyhow!("{service}: a task panicked: {e}"))
            }
        }
    }
}
