//! The HTTP surface: the router, its layers (request ids, tracing, panics,
//! body limit, admission, JSON errors) and the query-string decoding every
//! route shares.

use crate::error::ApiError;
use crate::routes;
use crate::state::Shared;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::collections::HashMap;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use uwl_api::ErrorBody;
use uwl_bus::{RequestId, REQUEST_ID_HEADER};
use uwl_ledger::Hash32;

pub(crate) fn router(state: Shared) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .route("/register", post(routes::keys::register))
        .route("/renew_key", post(routes::keys::renew_key))
        .route("/get_task", get(routes::keys::get_task))
        .route("/submit_work", post(routes::submit::submit_work))
        .route("/get_balance", get(routes::balance::get_balance))
        .route("/orphaned_tx", get(routes::balance::orphaned_tx))
        .route("/receipt/{receipt_id}", get(routes::receipt::receipt))
        .route("/chain", get(routes::node::chain))
        .route("/metrics", get(routes::node::metrics_view))
        .route("/health", get(routes::node::health))
        .route("/", get(routes::node::dashboard))
        .route("/static/{file}", get(routes::node::static_file))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), admission));
    Router::new()
        .route("/livez", get(routes::node::livez))
        .route("/openapi.json", get(openapi))
        .merge(api)
        .layer(middleware::map_response(json_errors))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            let body = ErrorBody { error: uwl_api::ErrorCode::Internal, message: "internal error".into(), receipt_id: None };
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
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
async fn admission(State(state): State<Shared>, req: Request, next: Next) -> Response {
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

async fn openapi() -> Result<Json<serde_json::Value>, ApiError> {
    crate::openapi::document().map(Json).map_err(|e| ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
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

/// The request id the client sent (checked), or a new one.
pub(crate) fn rid(headers: &HeaderMap) -> RequestId {
    headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).and_then(RequestId::parse).unwrap_or_default()
}

/// The integer query parameter `key` (`default` when absent): anything that
/// is not an integer in `range` is a 400 naming the range, never passed on.
pub(crate) fn query_int(q: &HashMap<String, String>, key: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, ApiError> {
    let Some(v) = q.get(key) else { return Ok(default) };
    v.parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| ApiError::BadRequest(format!("{key} must be an integer from {} to {}", range.start(), range.end())))
}

/// A list's cursor (`cursor`, `pending_cursor`, `orphaned_cursor`): the
/// receipt id a page ended at, as `next_*cursor` gave it.
pub(crate) fn query_cursor(q: &HashMap<String, String>, key: &str) -> Result<Option<Hash32>, ApiError> {
    q.get(key)
        .map(|v| Hash32::from_hex(v).map_err(|_| ApiError::BadRequest(format!("{key} must be a cursor a previous page returned (64 hex digits)"))))
        .transpose()
}

/// The cursor of the next page, when there is one.
pub(crate) fn next_cursor(more: bool, last: Option<Hash32>) -> Option<Hash32> {
    last.filter(|_| more)
}

pub(crate) fn now_ms() -> u64 {
    uwl_ledger::Clock::now_ms(&uwl_ledger::SystemClock)
}
