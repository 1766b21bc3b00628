//! Self-verifying API keys: `ak1.<payload>.<signature>` signed by the
//! network's issuer key. Checking one costs a signature verification and no
//! network round trip, so authentication works on a node cut off from the
//! others.

use crate::error::ApiError;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use uwl_ledger::{NodeKey, PublicKey};

const API_KEY_PREFIX: &str = "ak1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub client_id: String,
    pub issued_at: u64,
}

impl ApiKey {
    pub fn seal(&self, issuer: &NodeKey) -> String {
        uwl_tasks::seal(issuer, API_KEY_PREFIX, self)
    }
}

/// A fresh client id: 16 random bytes, hex.
pub fn new_client_id() -> String {
    format!("c{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// The client a request's `Authorization: Bearer <api_key>` names.
pub fn authenticate(headers: &HeaderMap, issuer: &PublicKey) -> Result<String, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <api_key>".into()))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("Authorization must be Bearer <api_key>".into()))?;
    let key: ApiKey = uwl_tasks::open(issuer, API_KEY_PREFIX, token)
        .map_err(|_| ApiError::Unauthorized("invalid API key".into()))?;
    Ok(key.client_id)
}
