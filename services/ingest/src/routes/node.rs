//! The node's own pages: `GET /chain`, `/metrics`, `/health`, the dashboard.

use crate::error::ApiError;
use crate::http::{query_int, rid};
use crate::state::Shared;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::Json;
use std::collections::HashMap;
use std::time::Duration;
use uwl_api::{ChainPage, ErrorBody, Live, NodeHealth};
use uwl_bus::proto::{BlocksQuery, ClusterView, MinerStatsQuery, TipQuery};
use uwl_bus::RequestId;

/// Most blocks in one `GET /chain` page.
const CHAIN_PAGE_MAX: u64 = 500;
/// The highest block index a store can hold (SQLite's signed 64-bit integers).
const MAX_INDEX: u64 = i64::MAX as u64;

#[utoipa::path(get, path = "/chain", tag = "node",
    params(("from" = Option<u64>, Query, description = "first block index (0)", minimum = 0, maximum = 9223372036854775807_u64),
        ("limit" = Option<u32>, Query, description = "blocks, 1 to 500 (50)", minimum = 1, maximum = 500)),
    responses((status = 200, body = ChainPage), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn chain(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Result<Json<ChainPage>, ApiError> {
    let rid = rid(&headers);
    let limit = query_int(&q, "limit", 50, 1..=CHAIN_PAGE_MAX)? as u32;
    let from = query_int(&q, "from", 0, 0..=MAX_INDEX)?;
    let reply = state.ask("this node's chain", BlocksQuery { locator: vec![], from, limit }, &rid).await?;
    Ok(Json(ChainPage { blocks: reply.blocks, tip: reply.tip, node_id: state.me().to_owned() }))
}

#[utoipa::path(get, path = "/livez", tag = "node", description = "The instance answers (no dependency checked).",
    responses((status = 200, body = Live)))]
pub(crate) async fn livez() -> Json<Live> {
    Json(Live { status: "ok".into() })
}

/// The cluster view (from the metrics service) and this instance's metrics.
pub(crate) async fn metrics_view(State(state): State<Shared>) -> impl IntoResponse {
    let cluster = state.bus.ask("", ClusterView {}, Duration::from_secs(1), &RequestId::new()).await;
    let mut text = match cluster {
        Ok(t) => t,
        Err(e) => format!("# cluster view unavailable: {e}\n"),
    };
    text.push_str(&uwl_runtime::render(&state.metrics.registry));
    ([("content-type", "text/plain; version=0.0.4")], text)
}

#[utoipa::path(get, path = "/health", tag = "node",
    responses((status = 200, description = "ready", body = NodeHealth), (status = 429, body = ErrorBody),
        (status = 503, description = "not ready", body = NodeHealth)))]
pub(crate) async fn health(State(state): State<Shared>) -> impl IntoResponse {
    let rid = RequestId::new();
    let nats = state.bus.is_connected();
    let sync = state.ask("sync", TipQuery {}, &rid).await;
    let miner = state.ask("miner", MinerStatsQuery {}, &rid).await;
    let ready = nats && sync.is_ok() && (miner.is_ok() || !state.validator);
    let body = NodeHealth {
        status: if ready { "ok" } else { "unavailable" }.into(),
        node_id: state.me().to_owned(),
        nats,
        sync: sync.is_ok(),
        miner: miner.is_ok(),
        strategy: format!("{:?}", state.settings.strategy).to_lowercase(),
        tip_index: sync.ok().map(|t| t.tip.index),
    };
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}

/// The dashboard keeps an API key in the browser's storage: its page may
/// run only its own scripts (and its Web Worker), talk only to this origin,
/// and not be framed.
const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard: static assets built into the binary.
pub(crate) async fn dashboard() -> impl IntoResponse {
    ([("content-security-policy", DASHBOARD_CSP)], Html(include_str!("../../static/index.html")))
}

pub(crate) async fn static_file(Path(file): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let (ctype, body) = match file.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", include_str!("../../static/app.js")),
        "worker.js" => ("text/javascript; charset=utf-8", include_str!("../../static/worker.js")),
        "style.css" => ("text/css; charset=utf-8", include_str!("../../static/style.css")),
        _ => return Err(ApiError::NotFound("no such asset".into())),
    };
    Ok(([("content-type", ctype), ("cache-control", "no-cache")], body))
}
