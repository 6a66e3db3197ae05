//! A confirmed sale's shipment, and the invoice request it sends to accounting.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::fulfillment::ShipmentPlan;
use super::money::Money;
use super::presale::{Address, LineItem};
use super::review::SaleConfirmed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShipmentStatus {
    Scheduled,
    PickedUp,
    InTransit,
    FailedAttempt,
    Delivered,
    Returned,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub shipment_id: String,
    pub sale_id: String,
    pub presale_id: String,
    pub client_id: String,
    pub campaign_id: String,
    pub agent_id: String,
    pub recipient: String,
    pub address: Address,
    pub plan: ShipmentPlan,
    pub status: ShipmentStatus,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Shipment {
    pub fn scheduled(sale: &SaleConfirmed, plan: ShipmentPlan, now: OffsetDateTime) -> Shipment {
        let recipient = sale
            .customer
            .get("full_name")
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_owned();
        Shipment {
            shipment_id: plan.shipment_id.clone(),
            sale_id: sale.sale_id.clone(),
            presale_id: sale.presale_id.clone(),
            client_id: sale.client_id.clone(),
            campaign_id: sale.campaign_id.clone(),
            agent_id: sale.agent_id.clone(),
            recipient,
            address: sale.shipping_address.clone(),
            plan,
            status: ShipmentStatus::Scheduled,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// The shipping line accounting invoices with the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippingLine {
    pub description: String,
    pub amount: Money,
}

/// Everything invoicing needs: the sale's items at their catalog prices, plus shipping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceRequested {
    pub sale_id: String,
    pub shipment_id: String,
    pub presale_id: String,
    pub client_id: String,
    pub campaign_id: String,
    pub customer: serde_json::Value,
    pub items: Vec<LineItem>,
    pub shipping: ShippingLine,
    pub tracking_reference: String,
}

impl InvoiceRequested {
    pub fn for_shipment(sale: &SaleConfirmed, shipment: &Shipment) -> InvoiceRequested {
        InvoiceRequested {
            sale_id: sale.sale_id.clone(),
            shipment_id: shipment.shipment_id.clone(),
            presale_id: sale.presale_id.clone(),
            client_id: sale.client_id.clone(),
            campaign_id: sale.campaign_id.clone(),
            customer: sale.customer.clone(),
            items: sale.items.clone(),
            shipping: ShippingLine {
                description: format!(
                    "Envío {} ({}, {} bulto(s))",
                    shipment.plan.courier_id,
                    shipment.plan.zone,
                    shipment.plan.packages.len()
                ),
                amount: shipment.plan.shipping_cost,
            },
            tracking_reference: shipment.plan.tracking_reference.clone(),
        }
    }
}

/// What couriers report through their webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrackingEventKind {
    PickedUp,
    InTransit,
    FailedAttempt,
    Delivered,
    Returned,
}

impl TrackingEventKind {
    fn status(self) -> ShipmentStatus {
        match self {
            Self::PickedUp => ShipmentStatus::PickedUp,
            Self::InTransit => ShipmentStatus::InTransit,
            Self::FailedAttempt => ShipmentStatus::FailedAttempt,
            Self::Delivered => ShipmentStatus::Delivered,
            Self::Returned => ShipmentStatus::Returned,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingEvent {
    /// The courier's id of this event: a resend is recognised and ignored.
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: TrackingEventKind,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The status moved.
    Moved { from: ShipmentStatus },
    /// Kept in the history only: older than the event that set the current status, or the
    /// shipment already ended (DELIVERED, RETURNED never move back).
    HistoryOnly,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackingError {
    #[error("a FAILED_ATTEMPT needs a reason")]
    ReasonRequired,
    #[error("event_id is 1 to 128 characters")]
    InvalidEventId,
}

impl Shipment {
    /// Apply a courier event. Events may arrive late or twice: the status follows the latest
    /// event by its own time, and final statuses are final.
    pub fn apply(
        &mut self,
        event: &TrackingEvent,
        last_event_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<Applied, TrackingError> {
        if event.event_id.trim().is_empty() || event.event_id.len() > 128 {
            return Err(TrackingError::InvalidEventId);
        }
        if event.kind == TrackingEventKind::FailedAttempt && event.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            return Err(TrackingError::ReasonRequired);
        }
        let terminal = matches!(self.status, ShipmentStatus::Delivered | ShipmentStatus::Returned);
        let older = last_event_at.is_some_and(|last| event.occurred_at < last);
        self.version += 1;
        self.updated_at = now;
        if terminal || older {
            return Ok(Applied::HistoryOnly);
        }
        let from = self.status;
        self.status = event.kind.status();
        Ok(Applied::Moved { from })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn event(id: &str, kind: TrackingEventKind, at: OffsetDateTime) -> TrackingEvent {
        TrackingEvent {
            event_id: id.into(),
            kind,
            occurred_at: at,
            reason: None,
            location: None,
        }
    }

    fn shipment() -> Shipment {
        let plan: ShipmentPlan = serde_json::from_value(serde_json::json!({
            "shipment_id": "SH-S-1", "sale_id": "S-1", "courier_id": "olva", "zone": "NATIONAL", "packages": [],
            "shipping_cost": {"amount": "12.00", "currency": "PEN"}, "pickup_date": "2026-11-24", "tracking_reference": "OLVA-X"
        }))
        .expect("plan");
        let address = Address {
            line1: "x".into(),
            line2: None,
            district: "d".into(),
            province: "p".into(),
            region: "r".into(),
            postal_code: None,
            country: "PE".into(),
            reference: None,
        };
        let now = datetime!(2026-11-23 15:00 UTC);
        Shipment {
            shipment_id: "SH-S-1".into(),
            sale_id: "S-1".into(),
            presale_id: "1".into(),
            client_id: "acme".into(),
            campaign_id: "c1".into(),
            agent_id: "agent-7".into(),
            recipient: "Ana".into(),
            address,
            plan,
            status: ShipmentStatus::Scheduled,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn the_status_follows_the_latest_event_and_final_statuses_stay() {
        let t = |h: u8| datetime!(2026-11-24 00:00 UTC) + time::Duration::hours(i64::from(h));
        let mut s = shipment();
        assert_eq!(
            s.apply(&event("1", TrackingEventKind::PickedUp, t(1)), None, t(1)),
            Ok(Applied::Moved {
                from: ShipmentStatus::Scheduled
            })
        );
        assert_eq!(
            s.apply(&event("2", TrackingEventKind::InTransit, t(3)), Some(t(1)), t(3)),
            Ok(Applied::Moved {
                from: ShipmentStatus::PickedUp
            })
        );
        assert_eq!(
            s.apply(&event("3", TrackingEventKind::PickedUp, t(2)), Some(t(3)), t(4)),
            Ok(Applied::HistoryOnly),
            "late"
        );
        assert_eq!(s.status, ShipmentStatus::InTransit);
        assert_eq!(
            s.apply(&event("4", TrackingEventKind::Delivered, t(5)), Some(t(3)), t(5)),
            Ok(Applied::Moved {
                from: ShipmentStatus::InTransit
            })
        );
        assert_eq!(
            s.apply(&event("5", TrackingEventKind::Returned, t(6)), Some(t(5)), t(6)),
            Ok(Applied::HistoryOnly),
            "delivered is final"
        );
        assert_eq!((s.status, s.version), (ShipmentStatus::Delivered, 6));
    }

    #[test]
    fn failed_attempts_need_a_reason() {
        let mut s = shipment();
        let at = datetime!(2026-11-24 10:00 UTC);
        assert_eq!(
            s.apply(&event("1", TrackingEventKind::FailedAttempt, at), None, at),
            Err(TrackingError::ReasonRequired)
        );
        let mut with_reason = event("1", TrackingEventKind::FailedAttempt, at);
        with_reason.reason = Some("cliente ausente".into());
        assert!(s.apply(&with_reason, None, at).is_ok());
        assert_eq!(s.status, ShipmentStatus::FailedAttempt);
    }
}
