//! `Idempotency-Key` for POST routes, as the Lambda Powertools do it: a record per key with
//! IN_PROGRESS/COMPLETE status, an in-progress lock that expires with the invocation deadline, a
//! fingerprint that refuses the same key with another body, and the first response replayed.

use std::future::Future;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use backoffice_domain::principal::Principal;
use backoffice_store::idempotency::{IdempotencyBegin, IdempotencyStore};

use super::request::DEFAULT_BODY_LIMIT;
use super::{ApiError, ApiRequest, ApiResponse};

pub const HEADER: &str = "idempotency-key";
/// How long a completed response is replayed.
pub const RETENTION_SECS: i64 = 24 * 3600;

/// Canonical fingerprint of a request: route plus body, with JSON bodies re-serialized so that
/// key order and whitespace do not matter.
pub fn fingerprint(request: &ApiRequest) -> String {
    let body = request.body.as_deref().unwrap_or_default();
    // Never parse more than a handler would accept: an oversized body is hashed as bytes (and
    // then refused with a 413 by the handler).
    let canonical = (body.len() <= DEFAULT_BODY_LIMIT)
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten()
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_else(|| body.to_vec());
    let mut hasher = Sha256::new();
    hasher.update(request.route_key.as_bytes());
    hasher.update([0]);
    hasher.update(request.path.as_bytes());
    hasher.update([0]);
    hasher.update(&canonical);
    hex::encode(hasher.finalize())
}

fn validate_key(raw: &str) -> Result<&str, ApiError> {
    let key = raw.trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::InvalidParameter {
            field: "Idempotency-Key".into(),
            detail: "Idempotency-Key is 1 to 255 visible ASCII characters (a UUID is a good choice)".into(),
        });
    }
    Ok(key)
}

/// The caller's authority: a stored answer is replayed only to a caller with the same role and
/// clients, so a token for another client can never read it back (the handler's own tenant
/// checks would not run on a replay).
fn authority(principal: &Principal) -> String {
    let mut clients: Vec<&str> = principal.clients.iter().map(String::as_str).collect();
    clients.sort_unstable();
    clients.dedup();
    let digest = Sha256::digest(format!("{}\n{}", principal.role, clients.join("\n")).as_bytes());
    hex::encode(&digest[..8])
}

/// Run `handler` at most once per (route, caller, caller's authority, key). Without the header
/// the request simply runs. 5xx answers release the key so the client can retry; everything
/// else is kept.
pub async fn run<S, F, Fut>(
    store: &S,
    request: &ApiRequest,
    principal: &Principal,
    now: OffsetDateTime,
    deadline: OffsetDateTime,
    handler: F,
) -> Result<ApiResponse, ApiError>
where
    S: IdempotencyStore + ?Sized,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<ApiResponse, ApiError>>,
{
    let Some(raw) = request.header(HEADER) else {
        return handler().await;
    };
    let key = format!(
        "{}#{}#{}#{}",
        request.route_key,
        principal.user_id,
        authority(principal),
        validate_key(raw)?
    );
    let fingerprint = fingerprint(request);
    let now_s = now.unix_timestamp();
    let lock_until = deadline.unix_timestamp().max(now_s + 1);
    let expires_at = now_s + RETENTION_SECS;
    match store.begin(&key, &fingerprint, now_s, lock_until, expires_at).await? {
        IdempotencyBegin::Started => {}
        IdempotencyBegin::Completed {
            fingerprint: stored, ..
        }
        | IdempotencyBegin::InProgress { fingerprint: stored }
            if stored != fingerprint =>
        {
            return Err(ApiError::IdempotencyKeyReused);
        }
        IdempotencyBegin::InProgress { .. } => return Err(ApiError::IdempotencyInProgress),
        IdempotencyBegin::Completed { response_json, .. } => {
            let response: ApiResponse = serde_json::from_str(&response_json)
                .map_err(|e| ApiError::Internal(format!("stored idempotent response does not parse: {e}")))?;
            return Ok(response.header("idempotent-replayed", "true"));
        }
    }
    let outcome = handler().await;
    let response = match &outcome {
        Ok(response) => Some(response.clone()),
        Err(error) if error.status() < 500 => Some(error.to_response(Some(&request.path), Some(&request.request_id))),
        Err(_) => None,
    };
    match response {
        Some(response) => {
            let json = serde_json::to_string(&response).map_err(|e| ApiError::Internal(e.to_string()))?;
            if let Err(e) = store.complete(&key, &fingerprint, &json, expires_at).await {
                // The work is done; failing to remember it only weakens a later replay (which
                // the domain's own uniqueness rules still guard), so answer the client.
                tracing::warn!(error = %e, "could not record the idempotent response");
            }
        }
        None => {
            if let Err(e) = store.release(&key).await {
                tracing::warn!(error = %e, "could not release the idempotency key; it frees itself at the deadline");
            }
        }
    }
    outcome
}
