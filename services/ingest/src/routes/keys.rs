//! Keys and tasks: `POST /register`, `POST /renew_key`, `GET /get_task`.

use crate::auth::new_client_id;
use crate::error::ApiError;
use crate::http::now_ms;
use crate::state::{Ingest, Shared};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use std::collections::HashMap;
use uwl_api::{ApiKey, ErrorBody, KeyIssued, Kind, Task};
use uwl_ledger::{Contract, TaskSpec};

#[utoipa::path(post, path = "/register", tag = "keys",
    description = "A new client id and its API key (no key needed; limited per address).",
    responses((status = 200, body = KeyIssued), (status = 429, description = "too many registrations from this address", body = ErrorBody)))]
pub(crate) async fn register(State(state): State<Shared>) -> Json<KeyIssued> {
    issue_key(&state, new_client_id())
}

/// `POST /renew_key`: a valid key buys a new one for the same client.
#[utoipa::path(post, path = "/renew_key", tag = "keys", security(("api_key" = [])),
    description = "A new key for the same client, valid from now (renew before the old one expires).",
    responses((status = 200, body = KeyIssued), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn renew_key(State(state): State<Shared>, headers: HeaderMap) -> Result<Json<KeyIssued>, ApiError> {
    let client_id = state.auth.authenticate(&headers, now_ms())?;
    Ok(issue_key(&state, client_id))
}

/// A new key for `client_id`, issued now.
fn issue_key(state: &Ingest, client_id: String) -> Json<KeyIssued> {
    let issued_at = now_ms();
    let api_key = ApiKey { client_id: client_id.clone(), issued_at }.seal(&state.issuer);
    Json(KeyIssued { client_id, api_key, issued_at, expires_at: state.auth.expires_at(issued_at) })
}

#[utoipa::path(get, path = "/get_task", tag = "work", security(("api_key" = [])),
    params(("kind" = Kind, Query, description = "matmul or hash")),
    responses((status = 200, body = Task), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn get_task(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Result<Json<Task>, ApiError> {
    let client_id = state.auth.authenticate(&headers, now_ms())?;
    let kind: Kind = q
        .get("kind")
        .ok_or_else(|| ApiError::BadRequest("kind is required: matmul or hash".into()))?
        .parse()
        .map_err(|e: uwl_tasks::UnknownKind| ApiError::BadRequest(e.to_string()))?;
    let s = &state.settings;
    let (spec, reward) = match kind {
        Kind::Matmul => (TaskSpec::Matmul { n: s.matmul_n }, s.reward_matmul),
        Kind::Hash => (TaskSpec::Hash { difficulty_bits: s.hash_difficulty_bits }, s.reward_hash),
    };
    let expires_at = now_ms() + s.task_ttl.as_millis() as u64;
    let contract = Contract { spec, seed: rand::random(), client_id, reward, expires_at };
    Ok(Json(uwl_tasks::task(&contract, contract.seal(&state.issuer))))
}
