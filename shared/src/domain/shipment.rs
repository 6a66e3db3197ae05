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
        let recipient = sale.customer.get("full_name").and_then(|n| n.as_str()).unwrap_or_default().to_owned();
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
                description: format!("Envío {} ({}, {} bulto(s))", shipment.plan.courier_id, shipment.plan.zone, shipment.plan.packages.len()),
                amount: shipment.plan.shipping_cost,
            },
            tracking_reference: shipment.plan.tracking_reference.clone(),
        }
    }
}
