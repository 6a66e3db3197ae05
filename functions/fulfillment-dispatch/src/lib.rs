//! fulfillment-dispatch: each `SaleConfirmed` on the sales queue becomes exactly one shipment
//! (packages, courier, shipping cost, pickup date, tracking reference) and one
//! `InvoiceRequested` for billing, through an outbox: never lost, never sent twice for one
//! shipment.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use backoffice_domain::Clock;
use backoffice_domain::audit::{AuditEntry, GENESIS_HASH};
use backoffice_domain::fulfillment::{self, FulfillmentError};
use backoffice_domain::review::SaleConfirmed;
use backoffice_domain::shipment::{InvoiceRequested, Shipment};
use backoffice_edge::relay::{Publisher, envelope};
use backoffice_edge::queue;
use backoffice_store::shipments::{Created, ShipmentStore};
use backoffice_store::{FulfillmentDirectory, OutboxMessage, StoreError};
use serde_json::json;

pub struct Dispatch<S, F, Q, K> {
    pub shipments: S,
    pub campaigns: F,
    pub publisher: Q,
    pub clock: K,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Not a SaleConfirmed we can read: retrying cannot help, the DLQ keeps it for a person.
    #[error("poison message: {0}")]
    Poison(String),
    /// The campaign's shipping configuration cannot plan this sale (a SKU without shipping
    /// data, no rate for the zone…): kept, retried, then dead-lettered for whoever fixes it.
    #[error("cannot plan the shipment: {0}")]
    Plan(#[from] FulfillmentError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, PartialEq)]
pub enum Dispatched {
    Scheduled(String),
    AlreadyScheduled(String),
}

impl<S, F, Q, K> Dispatch<S, F, Q, K>
where
    S: ShipmentStore,
    F: FulfillmentDirectory,
    Q: Publisher,
    K: Clock,
{
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        queue::each_message(event, |body| async move { self.process(&body).await }).await
    }

    pub async fn process(&self, body: &str) -> Result<Dispatched, DispatchError> {
        let incoming = queue::open::<SaleConfirmed>(body, "SaleConfirmed").map_err(DispatchError::Poison)?;
        let sale = incoming.body;
        let correlation_id = incoming.correlation_id.unwrap_or_else(|| sale.sale_id.clone());
        let now = self.clock.now();
        let (specs, config) = self.campaigns.fulfillment(&sale.campaign_id).await?;
        let config = config.unwrap_or_default();
        let plan = fulfillment::plan_shipment(&sale, &specs, &config, now)?;
        let shipment = Shipment::scheduled(&sale, plan, now);
        let audit = AuditEntry {
            subject: shipment.shipment_id.clone(),
            seq: 1,
            at: now,
            actor: "fulfillment-dispatch".into(),
            role: "system".into(),
            action: "SCHEDULED".into(),
            from_status: None,
            to_status: "SCHEDULED".into(),
            reasons: vec![],
            details: json!({"courier": shipment.plan.courier_id, "pickup_date": shipment.plan.pickup_date.to_string(), "correlation_id": correlation_id}),
        }
        .seal(GENESIS_HASH);
        let request = InvoiceRequested::for_shipment(&sale, &shipment);
        let message_id = uuid::Uuid::now_v7().to_string();
        let outbox = OutboxMessage {
            body: envelope("InvoiceRequested", &message_id, &correlation_id, now, &request),
            message_id,
            destination: "billing".into(),
            created_at_ns: i64::try_from(now.unix_timestamp_nanos()).unwrap_or(i64::MAX),
        };
        match self.shipments.create(&shipment, &audit, &outbox).await? {
            Created::Created => {
                tracing::info!(sale_id = %sale.sale_id, shipment_id = %shipment.shipment_id, courier = %shipment.plan.courier_id, "shipment scheduled");
                self.send(&outbox).await;
                Ok(Dispatched::Scheduled(shipment.shipment_id))
            }
            Created::AlreadyExists => {
                // A redelivery: the first delivery's invoice request is in the outbox already.
                tracing::info!(sale_id = %sale.sale_id, "already dispatched");
                Ok(Dispatched::AlreadyScheduled(shipment.shipment_id))
            }
        }
    }

    async fn send(&self, message: &OutboxMessage) -> bool {
        match self.publisher.publish(message).await {
            Ok(()) => {
                if let Err(e) = self.shipments.mark_sent(&message.message_id).await {
                    tracing::warn!(message_id = %message.message_id, error = %e, "sent, but not marked sent");
                }
                true
            }
            Err(e) => {
                tracing::warn!(message_id = %message.message_id, error = %e, "send failed; the sweep will retry");
                false
            }
        }
    }

    /// Re-send invoice requests whose first send failed (scheduled every minute).
    pub async fn sweep(&self) -> Result<serde_json::Value, StoreError> {
        let (mut sent, mut failed) = (0, 0);
        for message in self.shipments.pending_outbox(100).await? {
            if self.send(&message).await {
                sent += 1;
            } else {
                failed += 1;
            }
        }
        Ok(json!({"sent": sent, "failed": failed}))
    }
}
