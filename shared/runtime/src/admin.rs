//! The admin HTTP server every service runs: its own `/metrics` (its
//! explicit Prometheus registry) and `/health` (readiness, 200 or 503).

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use prometheus::{Encoder, Registry, TextEncoder};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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

/// Prometheus text of `registry` (a metric that fails to encode is
/// logged and left out, never the whole page).
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut buf) {
        tracing::error!(error = %e, "metrics do not encode");
    }
    String::from_utf8_lossy(&buf).into_owned()
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], render(&s.registry))
}

async fn health_page(State(s): State<AdminState>) -> impl IntoResponse {
    let h = (s.health)();
    let code = if h.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(h.detail))
}

/// Serves `/metrics` and `/health` on `listener` until `shutdown`.
pub fn serve_admin(listener: tokio::net::TcpListener, registry: Registry, health: HealthFn, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health_page))
        .with_state(AdminState { registry, health });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::warn!(error = %e, "admin server stopped");
        }
    })
}

/// A registry whose metrics are prefixed `uwl_` and labelled with the node.
pub fn registry(node_id: &str) -> Registry {
    let labels = std::iter::once(("node".to_owned(), node_id.to_owned())).collect();
    Registry::new_custom(Some("uwl".to_owned()), Some(labels)).expect("a constant prefix and one label are a valid registry")
}

