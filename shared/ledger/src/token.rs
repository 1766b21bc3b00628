//! Self-verifying signed tokens: `<prefix>.<base64url(canonical json)>.<base64url(signature)>`.
//! Contracts and API keys are tokens: checking one needs only the issuer
//! public keys the genesis lists, no look-up.

use crate::genesis::{NodeKey, PublicKey};
use crate::hash::{canonical_json, Signature64};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signature does not verify under any issuer key of the genesis")]
    BadSignature,
}

fn signed_message(prefix: &str, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(prefix.len() + 1 + payload.len());
    m.extend_from_slice(prefix.as_bytes());
    m.push(0);
    m.extend_from_slice(payload);
    m
}

/// Signs `value` as a token starting with `prefix` (which also separates
/// domains: a token of one prefix never opens as another).
pub fn seal<T: Serialize>(issuer: &NodeKey, prefix: &str, value: &T) -> String {
    let payload = canonical_json(value);
    let sig = issuer.sign(&signed_message(prefix, &payload));
    format!("{prefix}.{}.{}", B64.encode(&payload), B64.encode(sig.0))
}

/// Checks a token's prefix and its signature under one of `issuers`, and
/// decodes its value. Returns the value and the key that signed it.
pub fn open<T: DeserializeOwned>(issuers: &[PublicKey], prefix: &str, token: &str) -> Result<(T, PublicKey), TokenError> {
    let mut parts = token.split('.');
    let (Some(p), Some(payload), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    if p != prefix {
        return Err(TokenError::Malformed);
    }
    let payload = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
    let sig: [u8; 64] = B64.decode(sig).ok().and_then(|s| s.try_into().ok()).ok_or(TokenError::Malformed)?;
    let message = signed_message(prefix, &payload);
    let signer = issuers.iter().find(|k| k.verify(&message, &Signature64(sig))).ok_or(TokenError::BadSignature)?;
    let value = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    Ok((value, *signer))
}
