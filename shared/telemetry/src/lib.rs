//! `uwl-telemetry`: what every service sets up the same way: `tracing`
//! output (text, coloured on a terminal only, or JSON with
//! `LOG_FORMAT=json`; filter from `RUST_LOG`) and
//! the admin HTTP server with the service's own `/metrics` (its explicit
//! Prometheus registry) and `/health` (readiness, 200 or 503). It also
//! sets the allocator of every binary that links it: mimalloc (glibc malloc
//! was ~10% of the cluster's CPU under load; bench/README.md).

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use prometheus::{Encoder, Registry, TextEncoder};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Installs the global subscriber once (later calls are no-ops, so tests
/// that start several services in one process can all call it).
pub fn init_tracing() {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json");
    let _ = if json {
        fmt().with_env_filter(filter).json().with_current_span(true).try_init()
    } else {
        // colours only on a terminal: not in `docker logs` or files
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        fmt().with_env_filter(filter).with_ansi(ansi).try_init()
    };
}

/// A readiness report: `ready` picks 200 or 503, `detail` is the body.
#[derive(Debug, Clone)]
pub struct Health {
    pub ready: bool,
    pub detail: serde_json::Value,
}

pub type HealthFn = Arc<dyn Fn() -> Health + Send + Sync>;

#[derive(Clone)]
struct AdminState {
    registry: Registry,
    health: HealthFn,
}

/// Prometheus text of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], render(&s.registry))
}

async fn health(State(s): State<AdminState>) -> impl IntoResponse {
    let h = (s.health)();
    let code = if h.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(h.detail))
}

/// Binds `addr` (port 0 picks one) and serves `/metrics` and `/health`
/// until `shutdown`. Returns the bound address.
pub async fn serve_admin(
    addr: SocketAddr,
    registry: Registry,
    health_fn: HealthFn,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(AdminState { registry, health: health_fn });
    tokio::spawn(async move {
        let res = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "admin server stopped");
        }
    });
    Ok(bound)
}

/// Settings every node service takes.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonSettings {
    /// This node's id: a validator's `node_id` in the genesis file, or a follower's name.
    #[arg(long, env = "NODE_ID")]
    pub node_id: String,
    /// This site's NATS server (a node's services talk to their own site only).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Admin HTTP address serving this service's /metrics and /health.
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9100")]
    pub admin_addr: SocketAddr,
}

/// A registry whose metrics are prefixed `uwl_` and labelled with the node.
pub fn registry(node_id: &str) -> Registry {
    let labels = std::iter::once(("node".to_owned(), node_id.to_owned())).collect();
    Registry::new_custom(Some("uwl".to_owned()), Some(labels)).unwrap_or_default()
}

/// A token cancelled on SIGINT or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}
