//! The messages between functions, typed end to end: producers and consumers compile against
//! these structs, so a renamed field breaks the build, not production. Each event knows its
//! envelope `type` and the queue it travels on; [`crate::wire`] holds the envelope itself.
//!
//! The ids derived from a pre-sale are built here and nowhere else: one pre-sale is at most one
//! sale ([`SaleId::of`]), one sale at most one shipment ([`ShipmentId::of`]).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::money::Money;
use crate::presale::{Address, Customer, LineItem, Presale, PresaleId};
use crate::shipment::{Shipment, ShippingLine};

/// A message one function sends another.
pub trait Event: Serialize + DeserializeOwned {
    /// The envelope's `type`.
    const TYPE: &'static str;
    /// The queue it travels on: a name each producer maps to a queue URL.
    const QUEUE: &'static str;
}

/// A sale's id: `S-` and its pre-sale's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SaleId(String);

impl SaleId {
    pub fn of(presale: &PresaleId) -> Self {
        Self(format!("S-{presale}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A shipment's id: `SH-` and its sale's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShipmentId(String);

impl ShipmentId {
    pub fn of(sale: &SaleId) -> Self {
        Self(format!("SH-{sale}"))
    }

    /// A shipment id as a courier or a URL gives it; `None` unless it has the shape of one.
    pub fn parse(raw: &str) -> Option<Self> {
        let presale = raw.strip_prefix("SH-S-")?;
        PresaleId::parse(presale).ok().map(|p| Self::of(&SaleId::of(&p)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SaleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ShipmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The event that makes a sale: everything fulfillment and invoicing need, with catalog prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleConfirmed {
    pub sale_id: SaleId,
    pub presale_id: PresaleId,
    pub client_id: String,
    pub campaign_id: String,
    pub agent_id: String,
    pub validator_id: String,
    pub customer: Customer,
    pub shipping_address: Address,
    pub items: Vec<LineItem>,
    pub total: Money,
    #[serde(with = "crate::wire::instant")]
    pub confirmed_at: OffsetDateTime,
}

impl Event for SaleConfirmed {
    const TYPE: &'static str = "SaleConfirmed";
    const QUEUE: &'static str = "sales";
}

impl SaleConfirmed {
    pub fn from_approved(presale: &Presale, validator: &str, now: OffsetDateTime) -> Self {
        SaleConfirmed {
            sale_id: SaleId::of(&presale.id),
            presale_id: presale.id.clone(),
            client_id: presale.client_id.clone(),
            campaign_id: presale.campaign_id.clone(),
            agent_id: presale.agent_id.clone(),
            validator_id: validator.to_owned(),
            customer: presale.customer.clone(),
            shipping_address: presale.customer.address.clone(),
            items: presale.items.clone(),
            total: presale.total,
            confirmed_at: now,
        }
    }
}

/// Everything invoicing needs: the sale's items at their catalog prices, plus shipping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceRequested {
    pub sale_id: SaleId,
    pub shipment_id: ShipmentId,
    pub presale_id: PresaleId,
    pub client_id: String,
    pub campaign_id: String,
    pub customer: Customer,
    pub items: Vec<LineItem>,
    pub shipping: ShippingLine,
    pub tracking_reference: String,
}

impl Event for InvoiceRequested {
    const TYPE: &'static str = "InvoiceRequested";
    const QUEUE: &'static str = "billing";
}

/// A client company's month of services, invoiced by the call center (client-billing →
/// invoice-issue, billing queue; ADR 0028). `request_id` is the billing run's id: one invoice
/// per run, however often it arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInvoiceRequested {
    pub request_id: String,
    /// The call center: its billing profile is the seller.
    pub seller_id: String,
    /// The client company billed: its billing profile is the buyer.
    pub client_id: String,
    /// `YYYY-MM`.
    pub month: String,
    /// The run's evidence CSV in the invoices bucket, attached to the e-mail.
    pub evidence_key: String,
    /// Days from issue to due date, as the contract says.
    pub payment_terms_days: u32,
    /// Prices net of tax, in order (`MonthPricing::invoice_charges`).
    pub lines: Vec<ServiceLine>,
}

/// One charge of a [`ServiceInvoiceRequested`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLine {
    pub description: String,
    pub quantity: u32,
    pub unit_price: Money,
}

impl Event for ServiceInvoiceRequested {
    const TYPE: &'static str = "ServiceInvoiceRequested";
    const QUEUE: &'static str = "billing";
}

/// Credit all of an issued invoice (no `lines`) or some quantities of its lines. `request_id`
/// makes it idempotent: however often it arrives, one credit note per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteRequested {
    pub request_id: String,
    pub client_id: String,
    /// The invoice corrected, `F001-00000042`.
    pub invoice_id: String,
    pub reason: crate::credit_note::CreditNoteReason,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<crate::credit_note::CreditedLine>,
    /// Who asked (a finance user, or the courier integration for a return).
    pub requested_by: String,
}

impl Event for CreditNoteRequested {
    const TYPE: &'static str = "CreditNoteRequested";
    const QUEUE: &'static str = "billing";
}

/// A courier returned a shipment: its invoice is credited in full, once (billing queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentReturned {
    pub shipment_id: ShipmentId,
    pub sale_id: SaleId,
    pub client_id: String,
    pub courier_id: String,
    #[serde(with = "crate::wire::instant")]
    pub returned_at: OffsetDateTime,
}

impl Event for ShipmentReturned {
    const TYPE: &'static str = "ShipmentReturned";
    const QUEUE: &'static str = "billing";
}

/// A courier collected cash on delivery: a payment of the shipment's invoice, once (billing
/// queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashCollected {
    pub shipment_id: ShipmentId,
    pub sale_id: SaleId,
    pub client_id: String,
    pub courier_id: String,
    pub amount: Money,
    #[serde(with = "crate::wire::instant")]
    pub collected_at: OffsetDateTime,
}

impl Event for CashCollected {
    const TYPE: &'static str = "CashCollected";
    const QUEUE: &'static str = "billing";
}

/// Compute (or recompute) one campaign-local day's KPI report (the reports queue): the hourly
/// tick asks for days that changed, an admin's rebuild for a range (`forced`: even if unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KpiDayRequested {
    pub campaign_id: String,
    #[serde(with = "crate::wire::date")]
    pub day: time::Date,
    #[serde(default)]
    pub forced: bool,
    /// Why: `day_ended`, `late_contacts`, `verifications`, `rebuild`.
    pub reason: String,
}

impl Event for KpiDayRequested {
    const TYPE: &'static str = "KpiDayRequested";
    const QUEUE: &'static str = "reports";
}

/// What the courier's event means for billing, if anything: a return or collected cash, when
/// the event moved the shipment to that status (a late or repeated report means nothing new).
pub fn billing_event_of(
    shipment: &Shipment,
    event: &crate::shipment::TrackingEvent,
    moved: bool,
) -> Option<BillingEvent> {
    use crate::shipment::TrackingEventKind;
    if !moved {
        return None;
    }
    match (event.kind, event.collected) {
        (TrackingEventKind::Returned, _) => Some(BillingEvent::Returned(ShipmentReturned {
            shipment_id: shipment.shipment_id.clone(),
            sale_id: shipment.sale_id.clone(),
            client_id: shipment.client_id.clone(),
            courier_id: shipment.plan.courier_id.clone(),
            returned_at: event.occurred_at,
        })),
        (TrackingEventKind::Delivered, Some(amount)) => Some(BillingEvent::Collected(CashCollected {
            shipment_id: shipment.shipment_id.clone(),
            sale_id: shipment.sale_id.clone(),
            client_id: shipment.client_id.clone(),
            courier_id: shipment.plan.courier_id.clone(),
            amount,
            collected_at: event.occurred_at,
        })),
        _ => None,
    }
}

/// The billing consequences of a courier event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingEvent {
    Returned(ShipmentReturned),
    Collected(CashCollected),
}

impl BillingEvent {
    pub fn seal(&self, correlation_id: &str, now: OffsetDateTime) -> Result<OutboxMessage, serde_json::Error> {
        match self {
            BillingEvent::Returned(e) => OutboxMessage::seal(e, correlation_id, now),
            BillingEvent::Collected(e) => OutboxMessage::seal(e, correlation_id, now),
        }
    }
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

/// A sealed event waiting to be sent: committed with its state change (the outbox), sent
/// afterwards, kept until the send is confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub message_id: String,
    /// [`Event::QUEUE`] of the event inside.
    pub destination: String,
    /// The full JSON envelope.
    pub body: String,
    pub created_at_ns: i64,
    /// Failed sends so far (the relay's retry schedule counts them).
    #[serde(default)]
    pub attempts: u32,
}

impl OutboxMessage {
    /// Seal `event` in its envelope under a new, time-ordered message id.
    pub fn seal<E: Event>(event: &E, correlation_id: &str, at: OffsetDateTime) -> Result<Self, serde_json::Error> {
        let message_id = uuid::Uuid::now_v7().to_string();
        Ok(Self {
            body: crate::wire::seal(event, &message_id, correlation_id, at)?,
            message_id,
            destination: E::QUEUE.to_owned(),
            created_at_ns: i64::try_from(at.unix_timestamp_nanos()).unwrap_or(i64::MAX),
            attempts: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{self, WireError};

    /// Messages as the functions wrote them before the bodies were typed (customer as free JSON,
    /// ids as strings, no envelope version): still in the queues and DLQs on deploy day.
    const OLD_SALE_CONFIRMED: &str = r#"{"type":"SaleConfirmed","id":"0193b1a2-0000-7000-8000-000000000001","occurred_at":"2026-11-23T16:00:00Z","correlation_id":"req-1","body":{"sale_id":"S-0193b1a2-1111-7000-8000-000000000001","presale_id":"0193b1a2-1111-7000-8000-000000000001","client_id":"acme","campaign_id":"acme-fibra","agent_id":"agent-7","validator_id":"val-1","customer":{"document":{"type":"DNI","number":"45678912"},"full_name":"María Fernanda Quispe Huamán","phone":"+51987654321","email":"maria.quispe@example.com","address":{"line1":"Jr. Los Pinos 456","district":"Miraflores","province":"Lima","region":"Lima","country":"PE"}},"shipping_address":{"line1":"Jr. Los Pinos 456","district":"Miraflores","province":"Lima","region":"Lima","country":"PE"},"items":[{"sku":"FIB-300","name":"Fibra 300","quantity":1,"unit_price":{"amount":"149.90","currency":"PEN"},"line_total":{"amount":"149.90","currency":"PEN"}}],"total":{"amount":"149.90","currency":"PEN"},"confirmed_at":"2026-11-23T16:00:00Z"}}"#;

    const OLD_INVOICE_REQUESTED: &str = r#"{"type":"InvoiceRequested","id":"0193b1a2-0000-7000-8000-000000000002","occurred_at":"2026-11-23T16:01:00Z","correlation_id":"req-1","body":{"sale_id":"S-0193b1a2-1111-7000-8000-000000000001","shipment_id":"SH-S-0193b1a2-1111-7000-8000-000000000001","presale_id":"0193b1a2-1111-7000-8000-000000000001","client_id":"acme","campaign_id":"acme-fibra","customer":{"document":{"type":"RUC","number":"20100070970"},"full_name":"Comercial Andina S.A.C.","phone":"+5114567890","address":{"line1":"Av. Arequipa 1000","district":"Lince","province":"Lima","region":"Lima","country":"PE"}},"items":[{"sku":"ROUTER","name":"Router","quantity":2,"unit_price":{"amount":"19.99","currency":"PEN"},"line_total":{"amount":"39.98","currency":"PEN"}}],"shipping":{"description":"Envío OLVA (LIMA_METRO, 1 bulto(s))","amount":{"amount":"15.00","currency":"PEN"}},"tracking_reference":"OLVA-1"}}"#;

    #[test]
    fn messages_already_in_the_queues_still_open() {
        let sale = wire::open::<SaleConfirmed>(OLD_SALE_CONFIRMED).unwrap();
        assert_eq!(sale.version, 1);
        assert_eq!(sale.correlation_id.as_deref(), Some("req-1"));
        assert_eq!(sale.body.customer.full_name, "María Fernanda Quispe Huamán");
        assert_eq!(sale.body.sale_id, SaleId::of(&sale.body.presale_id));
        assert_eq!(sale.body.total.to_string(), "PEN 149.90");

        let request = wire::open::<InvoiceRequested>(OLD_INVOICE_REQUESTED).unwrap();
        assert_eq!(request.body.customer.document.number(), "20100070970");
        assert_eq!(request.body.shipment_id, ShipmentId::of(&request.body.sale_id));
        assert_eq!(request.body.customer.email, None);
    }

    #[test]
    fn ids_derive_from_the_presale_in_one_place() {
        let presale = PresaleId::parse("0193b1a2-1111-7000-8000-000000000001").unwrap();
        let sale = SaleId::of(&presale);
        assert_eq!(sale.as_str(), "S-0193b1a2-1111-7000-8000-000000000001");
        assert_eq!(
            ShipmentId::of(&sale).as_str(),
            "SH-S-0193b1a2-1111-7000-8000-000000000001"
        );
        assert_eq!(
            ShipmentId::parse("SH-S-0193b1a2-1111-7000-8000-000000000001"),
            Some(ShipmentId::of(&sale))
        );
        assert_eq!(ShipmentId::parse("SH-S-not-a-uuid"), None);
        assert_eq!(ShipmentId::parse("S-0193b1a2-1111-7000-8000-000000000001"), None);
    }

    #[test]
    fn a_sealed_event_opens_as_itself_and_only_as_itself() {
        let sale = wire::open::<SaleConfirmed>(OLD_SALE_CONFIRMED).unwrap().body;
        let at = sale.confirmed_at;
        let message = OutboxMessage::seal(&sale, "req-1", at).unwrap();
        assert_eq!(message.destination, "sales");
        let opened = wire::open::<SaleConfirmed>(&message.body).unwrap();
        assert_eq!(
            (opened.body, opened.id, opened.version),
            (sale, message.message_id.clone(), wire::ENVELOPE_VERSION)
        );
        assert!(
            matches!(wire::open::<InvoiceRequested>(&message.body), Err(WireError::UnexpectedType(t)) if t == "SaleConfirmed")
        );
    }

    #[test]
    fn a_newer_envelope_or_a_broken_body_is_refused_with_the_reason() {
        let newer = OLD_SALE_CONFIRMED.replacen(
            r#""type":"SaleConfirmed","#,
            r#""type":"SaleConfirmed","version":2,"#,
            1,
        );
        assert!(matches!(
            wire::open::<SaleConfirmed>(&newer),
            Err(WireError::UnknownVersion(2))
        ));
        let broken = OLD_SALE_CONFIRMED.replacen(r#""full_name":"María Fernanda Quispe Huamán","#, "", 1);
        let error = wire::open::<SaleConfirmed>(&broken).unwrap_err();
        assert!(
            matches!(&error, WireError::Body { kind, .. } if kind == "SaleConfirmed"),
            "{error}"
        );
        assert!(matches!(
            wire::open::<SaleConfirmed>("{"),
            Err(WireError::NotAnEnvelope(_))
        ));
    }
}
