//! Self-verifying API keys: `ak1.<payload>.<signature>` signed by the
//! network's issuer key. Checking one costs a signature verification and no
//! network round trip, so authentication works on a node cut off from the
//! others. Keys seen valid are remembered (a bounded set), so a worker's
//! steady stream of requests costs one verification, not one each. Each
//! authenticated client has a request rate (per instance), keyed on its id:
//! spelling the header differently does not buy a new allowance.

use crate::error::ApiError;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
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

/// Checks API keys against the issuer key, then the client's request rate.
pub struct Authenticator {
    issuer: PublicKey,
    /// Token -> client id, for tokens whose signature verified.
    verified: Mutex<HashMap<String, String>>,
    /// Requests per authenticated client (however its header is spelled).
    limiter: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `per_second` requests a second for each client, `burst` at once.
    pub fn new(issuer: PublicKey, per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let limiter = RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst));
        Self { issuer, verified: Mutex::new(HashMap::new()), limiter }
    }

    /// The client a request's `Authorization: Bearer <api_key>` names, if
    /// it is within its rate (else 429 with how long to wait).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let client = self.client(headers)?;
        self.limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited { retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
        })?;
        Ok(client)
    }

    /// Forgets the rate state of clients idle long enough to be full again.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }

    fn client(&self, headers: &HeaderMap) -> Result<String, ApiError> {
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
