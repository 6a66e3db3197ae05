//! fulfillment-dispatch: each `SaleConfirmed` on the sales queue becomes exactly one shipment
//! (packages, courier, shipping cost, pickup date, tracking reference) and one
//! `InvoiceRequested` for billing, through an outbox: never lost, never sent twice for one
//! shipment.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use backoffice_domain::Clock;
use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::events::{InvoiceRequested, OutboxMessage, SaleConfirmed, ShipmentId};
use backoffice_domain::fulfillment::{self, FulfillmentError};
use backoffice_domain::shipment::Shipment;
use backoffice_domain::wire::{self, WireError};
use backoffice_edge::queue;
use backoffice_edge::relay::{self, Publisher, SweepReport};
use backoffice_store::StoreError;
use backoffice_store::config::FulfillmentDirectory;
use backoffice_store::outbox::Outbox;
use backoffice_store::shipments::{Created, ShipmentCreate};
use serde_json::json;

/// Who writes the shipments' audit records.
pub const ACTOR: &str = "fulfillment-dispatch";

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
    Poison(#[from] WireError),
    /// The campaign has no fulfillment configuration: kept, retried, then dead-lettered until
    /// operations configure couriers, zones, rates and a calendar for it.
    #[error("campaign {0} has no fulfillment configuration")]
    NotConfigured(String),
    /// The campaign's shipping configuration cannot plan this sale (a SKU without shipping
    /// data, no rate for the zone…): kept, retried, then dead-lettered for whoever fixes it.
    #[error("cannot plan the shipment: {0}")]
    Plan(#[from] FulfillmentError),
    #[error("cannot seal the invoice request: {0}")]
    Seal(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, PartialEq)]
pub enum Dispatched {
    Scheduled(ShipmentId),
    AlreadyScheduled(ShipmentId),
}

impl<S, F, Q, K> Dispatch<S, F, Q, K>
where
    S: ShipmentCreate + Outbox,
    F: FulfillmentDirectory,
    Q: Publisher,
    K: Clock,
{
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        queue::each_message(event, |body| async move { self.process(&body).await }).await
    }

    pub async fn process(&self, body: &str) -> Result<Dispatched, DispatchError> {
        let incoming = wire::open::<SaleConfirmed>(body)?;
        let sale = incoming.body;
        // Messages sent before correlation ids existed fall back to the pre-sale's id.
        let correlation_id = incoming.correlation_id.unwrap_or_else(|| sale.presale_id.to_string());
        let now = self.clock.now();
        let (specs, config) = self.campaigns.fulfillment(&sale.campaign_id).await?;
        let config = config.ok_or_else(|| DispatchError::NotConfigured(sale.campaign_id.clone()))?;
        let plan = fulfillment::plan_shipment(&sale, &specs, &config, now)?;
        let shipment = Shipment::scheduled(&sale, plan, now);
        let audit = AuditEntry::new(
            &shipment.shipment_id,
            1,
            now,
            &Actor::system(ACTOR),
            "SCHEDULED",
            "SCHEDULED",
        )
        .details(json!({
            "courier": shipment.plan.courier_id,
            "pickup_date": shipment.plan.pickup_date.to_string(),
            "correlation_id": correlation_id,
        }))
        .seal(GENESIS_HASH);
        let outbox = OutboxMessage::seal(&InvoiceRequested::for_shipment(&sale, &shipment), &correlation_id, now)?;
        match self.shipments.create(&shipment, &audit, &outbox).await? {
            Created::Created => {
                tracing::info!(sale_id = %sale.sale_id, shipment_id = %shipment.shipment_id, courier = %shipment.plan.courier_id, "shipment scheduled");
                metrics::counter!("ShipmentsScheduled").increment(1);
                relay::send(&self.shipments, &self.publisher, &outbox).await;
                Ok(Dispatched::Scheduled(shipment.shipment_id))
            }
            Created::AlreadyExists => {
                // A redelivery: the first delivery's invoice request is in the outbox already.
                tracing::info!(sale_id = %sale.sale_id, "already dispatched");
                Ok(Dispatched::AlreadyScheduled(shipment.shipment_id))
            }
        }
    }

    /// Re-send invoice requests whose first send failed (scheduled every minute).
    pub async fn sweep(&self, deadline: time::OffsetDateTime) -> Result<SweepReport, StoreError> {
        relay::sweep(&self.shipments, &self.publisher, &self.clock, deadline).await
    }
}

#[cfg(test)]
mod tests;
