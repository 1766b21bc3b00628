//! Self-verifying API keys: `ak1.<payload>.<signature>` signed by an
//! issuer key the genesis lists (the one in use or a retired one). Checking one costs a signature verification and no
//! network round trip, so authentication works on a node cut off from the
//! others. A key expires `KEY_TTL_MS` after it was issued (its `issued_at`,
//! inside the signed payload) and can be renewed before then. Keys seen
//! valid are remembered (a bounded set), so a worker's
//! steady stream of requests costs one verification, not one each. Each
//! authenticated client has a request rate (per instance), keyed on its id:
//! spelling the header differently does not buy a new allowance.

use crate::error::ApiError;
use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use uwl_api::ApiKey;
use uwl_ledger::PublicKey;

/// Verified keys remembered at most (then forgotten all at once).
const VERIFIED_MAX: usize = 10_000;

/// A fresh client id: 16 random bytes, hex.
pub fn new_client_id() -> String {
    format!("c{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// Checks API keys against the issuer keys, then the client's request rate.
pub(crate) struct Authenticator {
    issuers: Vec<PublicKey>,
    /// Token -> (client id, expiry), for tokens whose signature verified.
    verified: Mutex<HashMap<String, (String, u64)>>,
    /// How long a key is valid after it was issued (ms).
    ttl_ms: u64,
    /// Requests per authenticated client (however its header is spelled).
    limiter: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("issuers", &self.issuers).finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Keys valid `ttl_ms` after issue; `per_second` requests a second for
    /// each client, `burst` at once.
    pub(crate) fn new(issuers: Vec<PublicKey>, ttl_ms: u64, per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let limiter = RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst));
        Self { issuers, verified: Mutex::new(HashMap::new()), ttl_ms, limiter }
    }

    /// When a key issued at `issued_at` expires.
    pub(crate) fn expires_at(&self, issued_at: u64) -> u64 {
        issued_at.saturating_add(self.ttl_ms)
    }

    /// The client a request's `Authorization: Bearer <api_key>` names, if
    /// the key has not expired at `now_ms` (else 401 saying so) and the
    /// client is within its rate (else 429 with how long to wait).
    pub(crate) fn authenticate(&self, headers: &HeaderMap, now_ms: u64) -> Result<String, ApiError> {
        let (client, expires_at) = self.client(headers)?;
        if now_ms >= expires_at {
            return Err(ApiError::Unauthorized(format!(
                "API key expired at {expires_at} (ms since the epoch): renew keys before they expire (POST /renew_key), or register again"
            )));
        }
        self.limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited { retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
        })?;
        Ok(client)
    }

    /// Forgets the rate state of clients idle long enough to be full again.
    pub(crate) fn forget_idle(&self) {
        self.limiter.retain_recent();
    }

    /// The client and expiry of a key whose signature verifies.
    fn client(&self, headers: &HeaderMap) -> Result<(String, u64), ApiError> {
        let token = bearer(headers)?;
        if let Some(known) = self.verified.lock().unwrap_or_else(PoisonError::into_inner).get(token) {
            return Ok(known.clone());
        }
        let key = ApiKey::open(&self.issuers, token).map_err(|_| ApiError::Unauthorized("invalid API key".into()))?;
        let known = (key.client_id, self.expires_at(key.issued_at));
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(token.to_owned(), known.clone());
        Ok(known)
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
