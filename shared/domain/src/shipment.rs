//! A confirmed sale's shipment, and the invoice request it sends to accounting.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::fulfillment::ShipmentPlan;
use super::money::Money;
use super::presale::{Address, PresaleId};
use crate::events::{SaleConfirmed, SaleId, ShipmentId};

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
    pub shipment_id: ShipmentId,
    pub sale_id: SaleId,
    pub presale_id: PresaleId,
    pub client_id: String,
    pub campaign_id: String,
    pub agent_id: String,
    pub recipient: String,
    pub address: Address,
    pub plan: ShipmentPlan,
    pub status: ShipmentStatus,
    pub version: u64,
    #[serde(with = "crate::wire::instant")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::wire::instant")]
    pub updated_at: OffsetDateTime,
}

impl Shipment {
    pub fn scheduled(sale: &SaleConfirmed, plan: ShipmentPlan, now: OffsetDateTime) -> Shipment {
        Shipment {
            shipment_id: plan.shipment_id.clone(),
            sale_id: sale.sale_id.clone(),
            presale_id: sale.presale_id.clone(),
            client_id: sale.client_id.clone(),
            campaign_id: sale.campaign_id.clone(),
            agent_id: sale.agent_id.clone(),
            recipient: sale.customer.full_name.clone(),
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
    #[serde(with = "crate::wire::instant")]
    pub occurred_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Cash on delivery: what the courier collected, reported with DELIVERED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collected: Option<Money>,
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
    /// Beyond the clocks' tolerance: it would pin the status against every real event after it.
    #[error("occurred_at is in the future")]
    InTheFuture,
    /// Money changes hands on delivery only, and is more than nothing.
    #[error("collected is a positive amount reported with DELIVERED")]
    InvalidCollection,
}

/// How far ahead of our clock a courier's clock may run.
pub const CLOCK_TOLERANCE: time::Duration = time::Duration::minutes(5);

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
        if event.occurred_at > now + CLOCK_TOLERANCE {
            return Err(TrackingError::InTheFuture);
        }
        if event.kind == TrackingEventKind::FailedAttempt && event.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            return Err(TrackingError::ReasonRequired);
        }
        if let Some(collected) = &event.collected
            && (event.kind != TrackingEventKind::Delivered || collected.amount_minor() <= 0)
        {
            return Err(TrackingError::InvalidCollection);
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
            collected: None,
        }
    }

    fn shipment() -> Shipment {
        let plan: ShipmentPlan = serde_json::from_value(serde_json::json!({
            "shipment_id": "SH-S-0192aa3c-7d1e-7b4f-9c3a-5e8f1d2c4b6a", "sale_id": "S-0192aa3c-7d1e-7b4f-9c3a-5e8f1d2c4b6a", "courier_id": "olva", "zone": "NATIONAL", "packages": [],
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
            shipment_id: plan.shipment_id.clone(),
            sale_id: plan.sale_id.clone(),
            presale_id: crate::testing::presale_id("1"),
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
    fn an_event_from_the_future_is_refused_and_changes_nothing() {
        let mut s = shipment();
        let now = datetime!(2026-11-24 15:00 UTC);
        let ahead = event("ev-9", TrackingEventKind::Delivered, now + time::Duration::days(30));
        assert_eq!(s.apply(&ahead, None, now), Err(TrackingError::InTheFuture));
        assert_eq!((s.status, s.version), (ShipmentStatus::Scheduled, 1));
        let skewed = event("ev-10", TrackingEventKind::PickedUp, now + time::Duration::minutes(4));
        assert!(
            s.apply(&skewed, None, now).is_ok(),
            "a courier's clock a little ahead is fine"
        );
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
