//! Dispatch with in-memory adapters: one shipment per sale whatever the deliveries, poison
//! messages isolated, a failed invoice-request send recovered by the sweep.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use backoffice_domain::events::SaleId;
use backoffice_domain::money::{Currency, Money};
use backoffice_domain::presale::{Address, LineItem};
use backoffice_domain::testing::{FixedClock, customer, fulfillment_config, presale_id, shipping_specs};
use backoffice_edge::testing::MemoryPublisher;
use backoffice_store::config::MemoryCampaignDirectory;
use backoffice_store::shipments::{MemoryShipmentStore, ShipmentTracking};
use serde_json::json;
use time::macros::datetime;

use super::*;

/// Campaign c1 with shipping data for its SKUs and, when `configured`, its fulfillment.
fn campaigns(configured: bool) -> MemoryCampaignDirectory {
    MemoryCampaignDirectory::default().with_fulfillment("c1", shipping_specs(), configured.then(fulfillment_config))
}

fn dispatch() -> Dispatch<MemoryShipmentStore, MemoryCampaignDirectory, MemoryPublisher, FixedClock> {
    Dispatch {
        shipments: MemoryShipmentStore::default(),
        campaigns: campaigns(true),
        publisher: MemoryPublisher::default(),
        clock: FixedClock::at(datetime!(2026-11-23 15:00 UTC)),
    }
}

fn sale_id() -> SaleId {
    SaleId::of(&presale_id("1"))
}

fn sale(sku: &str) -> String {
    let pen = Currency::parse("PEN").expect("PEN");
    let item = LineItem {
        sku: sku.into(),
        name: "x".into(),
        quantity: 2,
        unit_price: Money::from_minor(14990, pen),
        line_total: Money::from_minor(29980, pen),
    };
    let sale = SaleConfirmed {
        sale_id: sale_id(),
        presale_id: presale_id("1"),
        client_id: "acme".into(),
        campaign_id: "c1".into(),
        agent_id: "agent-7".into(),
        validator_id: "val-1".into(),
        customer: customer(),
        shipping_address: Address {
            line1: "Av. Sol 1".into(),
            line2: None,
            district: "Miraflores".into(),
            province: "Lima".into(),
            region: "Lima".into(),
            postal_code: Some("15074".into()),
            country: "PE".into(),
            reference: None,
        },
        items: vec![item],
        total: Money::from_minor(29980, pen),
        confirmed_at: datetime!(2026-11-23 15:00 UTC),
    };
    json!({"type": "SaleConfirmed", "id": "m-1", "occurred_at": "2026-11-23T15:00:00Z", "correlation_id": "c-1", "body": sale}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_sale_one_shipment_one_invoice_request_however_often_it_arrives() {
    let d = std::sync::Arc::new(dispatch());
    let message = sale("FIB-300");
    // Eight deliveries at once, on four worker threads, released together.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let deliveries: Vec<_> = (0..8)
        .map(|_| {
            let (d, message, start) = (d.clone(), message.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                d.process(&message).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for delivery in deliveries {
        outcomes.push(delivery.await.expect("delivery task").expect("processed"));
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, Dispatched::Scheduled(_)))
            .count(),
        1
    );
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Dispatched::Scheduled(_) | Dispatched::AlreadyScheduled(_))),
        "{outcomes:?}"
    );
    assert_eq!(
        d.process(&sale("FIB-300")).await.expect("again"),
        Dispatched::AlreadyScheduled(ShipmentId::of(&sale_id()))
    );
    let shipment = d
        .shipments
        .get(ShipmentId::of(&sale_id()).as_str())
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (shipment.plan.courier_id.as_str(), shipment.plan.packages.len()),
        ("urbano", 1)
    );
    assert!(!shipment.plan.shipping_cost.is_zero());
    let sent = d.publisher.sent_json();
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(
        (request["type"].as_str(), request["correlation_id"].as_str()),
        (Some("InvoiceRequested"), Some("c-1"))
    );
    assert_eq!(
        request["body"]["shipping"]["amount"],
        json!(shipment.plan.shipping_cost)
    );
}

#[tokio::test]
async fn a_poison_message_fails_alone_and_a_failed_send_is_swept() {
    let d = dispatch();
    d.publisher.set_down(true);
    let mut event = SqsEvent::default();
    event.records = [
        ("m-bad", "{not json".to_owned()),
        ("m-sku", sale("UNKNOWN")),
        ("m-good", sale("FIB-300")),
    ]
    .into_iter()
    .map(|(id, body)| {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body);
        m
    })
    .collect();
    let response = d.handle(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m-bad", "m-sku"]);
    assert!(d.publisher.sent().is_empty());
    d.publisher.set_down(false);
    let deadline = d.clock.now() + time::Duration::minutes(15);
    assert_eq!(
        d.sweep(deadline).await.expect("sweep"),
        SweepReport {
            sent: 1,
            ..SweepReport::default()
        }
    );
    assert_eq!(d.sweep(deadline).await.expect("sweep"), SweepReport::default());
}

#[tokio::test]
async fn a_campaign_without_fulfillment_configuration_is_an_explicit_error() {
    let mut d = dispatch();
    d.campaigns = campaigns(false);
    let error = d
        .process(&sale("FIB-300"))
        .await
        .expect_err("no configuration, no shipment");
    assert!(
        matches!(&error, DispatchError::NotConfigured(campaign) if campaign == "c1"),
        "{error}"
    );
    assert!(d.publisher.sent().is_empty());
}
