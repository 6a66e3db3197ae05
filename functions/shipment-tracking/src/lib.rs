//! shipment-tracking: `POST /shipments/{id}/events` is the couriers' webhook (HMAC-signed, no
//! JWT); `GET /shipments/{id}` shows a shipment with its event history to supervisors, finance
//! and the sale's agent.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use backoffice_domain::Clock;
use backoffice_domain::audit::{Actor, AuditEntry};
use backoffice_domain::events::billing_event_of;
use backoffice_domain::principal::Role;
use backoffice_domain::shipment::{Applied, TrackingEvent};
use backoffice_domain::validation::Invalid;
use backoffice_edge::http::{ApiError, ApiRequest, ApiResponse, Invocation, respond, webhook};
use backoffice_edge::relay::{self, Publisher};
use backoffice_edge::secrets::{CachedSecret, SecretError, SecretSource};
use backoffice_store::StoreError;
use backoffice_store::outbox::Outbox;
use backoffice_store::shipments::{EventRecorded, ShipmentTracking};
use serde_json::json;

/// `{"courier": "secret"}` or `{"courier": ["current", "next"]}`, as `COURIER_SECRETS` holds them.
pub fn courier_secrets(raw: &str) -> Result<HashMap<String, Vec<String>>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Secrets {
        One(String),
        Several(Vec<String>),
    }
    let parsed: HashMap<String, Secrets> = serde_json::from_str(raw)?;
    Ok(parsed
        .into_iter()
        .map(|(courier, secrets)| match secrets {
            Secrets::One(secret) => (courier, vec![secret]),
            Secrets::Several(secrets) => (courier, secrets),
        })
        .collect())
}

/// The couriers' webhook secrets, by courier id.
#[async_trait]
pub trait CourierSecrets: Send + Sync {
    /// The courier's secrets (the current one, and the next while it rotates); empty for an
    /// unknown courier. `fresh` asks past any cache: a signature did not verify, and the courier
    /// may have rotated.
    async fn secrets_of(&self, courier: &str, fresh: bool) -> Result<Vec<String>, SecretError>;
}

/// A fixed table (handler tests).
#[async_trait]
impl CourierSecrets for HashMap<String, Vec<String>> {
    async fn secrets_of(&self, courier: &str, _fresh: bool) -> Result<Vec<String>, SecretError> {
        Ok(self.get(courier).cloned().unwrap_or_default())
    }
}

/// One secret (Secrets Manager on AWS) holding every courier's secrets as JSON, read at run
/// time and cached.
pub struct ManagedCourierSecrets<S, K> {
    pub secret: CachedSecret<S, K>,
}

#[async_trait]
impl<S: SecretSource, K: Clock> CourierSecrets for ManagedCourierSecrets<S, K> {
    async fn secrets_of(&self, courier: &str, fresh: bool) -> Result<Vec<String>, SecretError> {
        let raw = self.secret.get(fresh).await?;
        let table = courier_secrets(&raw).map_err(|e| SecretError {
            id: "courier secrets".into(),
            detail: format!("not a JSON map of courier → secret(s): {e}"),
        })?;
        Ok(table.get(courier).cloned().unwrap_or_default())
    }
}

pub const ROUTES: &[&str] = &["POST /shipments/{id}/events", "GET /shipments/{id}"];

/// Events are small; anything larger is not a courier's event.
const EVENT_BODY_LIMIT: usize = 16 * 1024;

pub struct Tracking<S, K, C, P> {
    pub shipments: S,
    pub clock: K,
    pub secrets: C,
    /// The billing queue: returns and cash collected on delivery.
    pub publisher: P,
}

impl<S: ShipmentTracking + Outbox, K: Clock, C: CourierSecrets, P: Publisher> Tracking<S, K, C, P> {
    pub async fn handle(&self, event: ApiGatewayV2httpRequest, invocation: &Invocation) -> ApiGatewayV2httpResponse {
        respond(event, invocation, async |request: &ApiRequest| {
            self.route(request).await
        })
        .await
    }

    async fn route(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        match request.route_key.as_str() {
            "POST /shipments/{id}/events" => self.webhook(request).await,
            "GET /shipments/{id}" => self.read(request).await,
            other => Err(ApiError::NotFound(format!("no route {other}"))),
        }
    }

    async fn webhook(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        // Authenticate before reading anything: sender, signature over the raw body, freshness.
        let courier = request.header(webhook::SENDER_HEADER).unwrap_or_default().to_owned();
        let unauthorized = || ApiError::Unauthorized("unknown courier or invalid signature".into());
        let unavailable = |e: SecretError| {
            tracing::error!(error = %e, "courier secrets unavailable");
            ApiError::Unavailable("cannot check signatures right now; resend the event".into())
        };
        let body = request.body.as_deref().unwrap_or_default();
        if body.len() > EVENT_BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge {
                limit: EVENT_BODY_LIMIT,
            });
        }
        let now = self.clock.now();
        let verify = |secrets: &[String]| {
            webhook::verify(
                secrets,
                request.header(webhook::SIGNATURE_HEADER),
                &request.method,
                &request.path,
                body,
                now.unix_timestamp(),
            )
        };
        let cached = self.secrets.secrets_of(&courier, false).await.map_err(unavailable)?;
        if let Err(e) = verify(&cached) {
            // The courier may have rotated to a secret newer than the cache: read again once.
            let fresh = self.secrets.secrets_of(&courier, true).await.map_err(unavailable)?;
            if fresh == cached || verify(&fresh).is_err() {
                tracing::warn!(courier = %courier, reason = %e, "webhook refused");
                return Err(unauthorized());
            }
        }
        let id = request.path_param("id")?;
        let not_found = || ApiError::NotFound(format!("no shipment {id} for courier {courier}"));
        let mut stored = self.shipments.load(id).await?.ok_or_else(not_found)?;
        if stored.shipment.plan.courier_id != courier {
            return Err(not_found());
        }
        let event: TrackingEvent = request.json_body(EVENT_BODY_LIMIT)?;
        let expected_version = stored.shipment.version;
        let from = stored.shipment.status;
        let applied = stored
            .shipment
            .apply(&event, stored.last_event_at, now)
            .map_err(|e| ApiError::Validation(vec![Invalid::new("invalid_event", e.to_string()).at("")]))?;
        if matches!(applied, Applied::Moved { .. }) {
            stored.last_event_at = Some(event.occurred_at);
        }
        let shipment = &stored.shipment;
        // A return credits the invoice, cash collected pays it: committed with the event, sent
        // after (the relay's sweep sends what a crash left behind).
        let billing = billing_event_of(shipment, &event, matches!(applied, Applied::Moved { .. }))
            .map(|b| b.seal(request.correlation_id(), now))
            .transpose()
            .map_err(|e| ApiError::Internal(format!("billing message: {e}")))?;
        let action = format!("{:?}", event.kind).to_uppercase();
        let audit = AuditEntry::new(&shipment.shipment_id, shipment.version, now, &Actor::new(&courier, "courier"), &action, format!("{:?}", shipment.status))
            .from_status(format!("{from:?}"))
            .reasons(event.reason.iter().cloned().collect())
            .details(json!({"event_id": event.event_id, "occurred_at": event.occurred_at.to_string(), "applied": matches!(applied, Applied::Moved { .. })}))
            .seal(&stored.audit_head);
        match self
            .shipments
            .record_event(&stored, expected_version, &event, &audit, billing.as_ref())
            .await
        {
            Ok(EventRecorded::Recorded) => {
                if let Some(message) = &billing {
                    relay::send(&self.shipments, &self.publisher, message).await;
                }
                Ok(ApiResponse::json(
                    200,
                    &json!({"status": stored.shipment.status, "applied": matches!(applied, Applied::Moved { .. })}),
                ))
            }
            Ok(EventRecorded::Duplicate) => Ok(ApiResponse::json(200, &json!({"status": from, "duplicate": true}))),
            Ok(EventRecorded::IdTaken) => Err(ApiError::Conflict {
                slug: "event-id-reused",
                detail: format!(
                    "event {} was already reported for another shipment; event ids are unique per courier",
                    event.event_id
                ),
                current: None,
            }),
            // Two events of one shipment at the same moment: the courier retries.
            Err(StoreError::Conflict(_)) => Err(ApiError::Unavailable(
                "the shipment changed meanwhile; resend the event".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn read(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let principal = request.principal()?;
        let id = request.path_param("id")?;
        let not_found = || ApiError::NotFound(format!("no shipment {id}"));
        let stored = self.shipments.load(id).await?.ok_or_else(not_found)?;
        let shipment = &stored.shipment;
        let allowed = principal.acts_for(&shipment.client_id)
            && (principal.is_any(&[Role::Supervisor, Role::Finance, Role::Admin])
                || (principal.is(Role::Agent) && principal.user_id == shipment.agent_id));
        if !allowed {
            return Err(not_found());
        }
        let events = self.shipments.events(id).await?;
        Ok(ApiResponse::json(200, &json!({"shipment": shipment, "events": events})))
    }
}

#[cfg(test)]
mod tests;
