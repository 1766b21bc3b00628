//! Self-verifying API keys: `ak1.<payload>.<signature>` signed by the
//! network's issuer key. Checking one costs a signature verification and no
//! network round trip, so authentication works on a node cut off from the
//! others. Keys seen valid are remembered (a bounded set), so a worker's
//! steady stream of requests costs one verification, not one each.

use crate::error::ApiError;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use uwl_ledger::{NodeKey, PublicKey};

/// Verified keys remembered at most (then forgotten all at once).
const VERIFIED_MAX: usize = 10_000;

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

/// Checks API keys against the issuer key.
#[derive(Debug)]
pub struct Authenticator {
    issuer: PublicKey,
    /// Token -> client id, for tokens whose signature verified.
    verified: Mutex<HashMap<String, String>>,
}

impl Authenticator {
    pub fn new(issuer: PublicKey) -> Self {
        Self { issuer, verified: Mutex::new(HashMap::new()) }
    }

    /// The client a request's `Authorization: Bearer <api_key>` names.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let token = bearer(headers)?;
        if let Some(client) = self.verified.lock().unwrap_or_else(PoisonError::into_inner).get(token) {
            return Ok(client.clone());
        }
        let key: ApiKey =
            uwl_tasks::open(&self.issuer, API_KEY_PREFIX, token).map_err(|_| ApiError::Unauthorized("invalid API key".into()))?;
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(token.to_owned(), key.client_id.clone());
        Ok(key.client_id)
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <api_key>".into()))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("Authorization must be Bearer <api_key>".into()))?;
    Ok(token)
}
