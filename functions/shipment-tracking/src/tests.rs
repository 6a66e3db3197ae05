//! Handler tests with in-memory adapters: the courier webhook's authentication, its effects and
//! its idempotency, and who may read a shipment.

use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::events::{InvoiceRequested, OutboxMessage, SaleConfirmed, SaleId};
use backoffice_domain::fulfillment::plan_shipment;
use backoffice_domain::money::{Currency, Money};
use backoffice_domain::presale::LineItem;
use backoffice_domain::shipment::Shipment;
use backoffice_domain::testing::{FixedClock, customer, fulfillment_config, presale_id, shipping_specs};
use backoffice_edge::testing::{ApiEvent, MemoryPublisher, Reply};
use backoffice_store::shipments::{MemoryShipmentStore, ShipmentCreate};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use std::collections::HashMap;

/// The instant every test of this module runs at.
const NOW: OffsetDateTime = datetime!(2026-11-24 15:00 UTC);
const SECRET: &str = "urbano-webhook-secret";

type Service = Tracking<MemoryShipmentStore, FixedClock, HashMap<String, Vec<String>>, MemoryPublisher>;

/// The sale of agent-7 (client acme) the shipments of these tests carry.
fn sale() -> SaleConfirmed {
    let pen = Currency::parse("PEN").expect("PEN");
    SaleConfirmed {
        sale_id: SaleId::of(&presale_id("track-1")),
        presale_id: presale_id("track-1"),
        client_id: "acme".into(),
        campaign_id: "c1".into(),
        agent_id: "agent-7".into(),
        validator_id: "val-1".into(),
        customer: customer(),
        shipping_address: customer().address,
        items: vec![LineItem {
            sku: "ROUTER".into(),
            name: "Router".into(),
            quantity: 1,
            unit_price: Money::from_minor(1999, pen),
            line_total: Money::from_minor(1999, pen),
        }],
        total: Money::from_minor(1999, pen),
        confirmed_at: NOW,
    }
}

/// A Lima sale of agent-7 (client acme), shipped by urbano.
async fn service() -> (Service, Shipment) {
    let sale = sale();
    let specs = shipping_specs()
        .into_iter()
        .map(|spec| (spec.sku.clone(), spec))
        .collect();
    let plan = plan_shipment(&sale, &specs, &fulfillment_config(), NOW).expect("planned");
    let shipment = Shipment::scheduled(&sale, plan, NOW);
    let audit = AuditEntry::new(
        &shipment.shipment_id,
        1,
        NOW,
        &Actor::system("test"),
        "SCHEDULED",
        "SCHEDULED",
    )
    .seal(GENESIS_HASH);
    let outbox = OutboxMessage::seal(&InvoiceRequested::for_shipment(&sale, &shipment), "c", NOW).expect("sealed");
    let shipments = MemoryShipmentStore::default();
    shipments.create(&shipment, &audit, &outbox).await.expect("created");
    let service = Tracking {
        shipments,
        clock: FixedClock::at(NOW),
        secrets: HashMap::from([("urbano".to_owned(), vec![SECRET.to_owned()])]),
        publisher: MemoryPublisher::default(),
    };
    (service, shipment)
}

fn event(id: &str, kind: &str, at: &str) -> String {
    json!({"event_id": id, "type": kind, "occurred_at": at}).to_string()
}

/// The courier's webhook call, signed with `secret` at `signed_at`.
async fn post<C: CourierSecrets>(
    s: &Tracking<MemoryShipmentStore, FixedClock, C, MemoryPublisher>,
    shipment: &str,
    courier: &str,
    secret: &str,
    signed_at: i64,
    body: &str,
) -> Reply {
    let path = format!("/shipments/{shipment}/events");
    let signature = webhook::sign(secret.as_bytes(), signed_at, "POST", &path, body.as_bytes()).expect("signed");
    let request = ApiEvent::new("POST /shipments/{id}/events")
        .anonymous()
        .param("id", shipment)
        .header(webhook::SENDER_HEADER, courier)
        .header(webhook::SIGNATURE_HEADER, &signature)
        .raw(body)
        .build();
    Reply::from(s.handle(request, &Invocation::ending_after(NOW, 10)).await)
}

async fn read(s: &Service, shipment: &str, who: (&str, &str, &str)) -> Reply {
    let request = ApiEvent::new("GET /shipments/{id}")
        .param("id", shipment)
        .who(who.0, who.1, who.2)
        .build();
    Reply::from(s.handle(request, &Invocation::ending_after(NOW, 10)).await)
}

#[tokio::test]
async fn a_signed_event_moves_the_shipment_once_and_is_audited() {
    let (s, shipment) = service().await;
    let id = shipment.shipment_id.as_str();
    let now = NOW.unix_timestamp();
    let picked = event("ev-1", "PICKED_UP", "2026-11-24T14:00:00Z");
    let first = post(&s, id, "urbano", SECRET, now, &picked).await;
    assert_eq!(
        (first.status, &first.body["status"], &first.body["applied"]),
        (200, &json!("PICKED_UP"), &json!(true))
    );
    let again = post(&s, id, "urbano", SECRET, now, &picked).await;
    assert_eq!((again.status, &again.body["duplicate"]), (200, &json!(true)));

    let delivered = event("ev-2", "DELIVERED", "2026-11-24T14:30:00Z");
    assert_eq!(post(&s, id, "urbano", SECRET, now, &delivered).await.status, 200);
    // An older event after delivery is history, not a move back.
    let late = event("ev-3", "IN_TRANSIT", "2026-11-24T13:00:00Z");
    let history = post(&s, id, "urbano", SECRET, now, &late).await;
    assert_eq!((history.status, &history.body["applied"]), (200, &json!(false)));

    let stored = s.shipments.load(id).await.expect("load").expect("exists");
    assert_eq!(
        stored.shipment.status,
        backoffice_domain::shipment::ShipmentStatus::Delivered
    );
    assert_eq!(stored.shipment.version, 4, "scheduled + three recorded events");
    let events = s.shipments.events(id).await.expect("events");
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&"ev-1") && ids.contains(&"ev-2") && ids.contains(&"ev-3"));
}

#[tokio::test]
async fn unsigned_forged_stale_or_foreign_calls_change_nothing() {
    let (s, shipment) = service().await;
    let id = shipment.shipment_id.as_str();
    let now = NOW.unix_timestamp();
    let body = event("ev-1", "DELIVERED", "2026-11-24T14:00:00Z");
    let refused: Vec<u16> = vec![
        post(&s, id, "urbano", "not-the-secret", now, &body).await.status,
        post(&s, id, "urbano", SECRET, now - webhook::TOLERANCE_SECS - 1, &body)
            .await
            .status,
        post(&s, id, "olva", SECRET, now, &body).await.status,
    ];
    assert_eq!(refused, vec![401, 401, 401]);
    let unsigned = ApiEvent::new("POST /shipments/{id}/events")
        .anonymous()
        .param("id", id)
        .header(webhook::SENDER_HEADER, "urbano")
        .raw(&body)
        .build();
    assert_eq!(
        Reply::from(s.handle(unsigned, &Invocation::ending_after(NOW, 10)).await).status,
        401
    );
    let unknown = post(
        &s,
        "SH-S-00000000-0000-7000-8000-000000000000",
        "urbano",
        SECRET,
        now,
        &body,
    )
    .await;
    assert_eq!((unknown.status, unknown.problem()), (404, "not-found"));
    let broken = post(&s, id, "urbano", SECRET, now, "{\"event_id\": 1}").await;
    assert!(broken.status == 400 || broken.status == 422, "{}", broken.text);
    let failed_without_reason = post(
        &s,
        id,
        "urbano",
        SECRET,
        now,
        &event("ev-9", "FAILED_ATTEMPT", "2026-11-24T14:00:00Z"),
    )
    .await;
    assert_eq!(failed_without_reason.status, 422);
    let stored = s.shipments.load(id).await.expect("load").expect("exists");
    assert_eq!(
        (
            stored.shipment.version,
            s.shipments.events(id).await.expect("events").len()
        ),
        (1, 0)
    );
}

#[tokio::test]
async fn a_shipment_is_read_by_its_agent_and_the_back_office_of_its_client_only() {
    let (s, shipment) = service().await;
    let id = shipment.shipment_id.as_str();
    let allowed = [
        ("sup-1", "supervisor", "acme"),
        ("fin-1", "finance", "acme"),
        ("agent-7", "agent", "acme"),
    ];
    for who in allowed {
        let reply = read(&s, id, who).await;
        assert_eq!(reply.status, 200, "{who:?}");
        assert_eq!(reply.body["shipment"]["shipment_id"], Value::from(id));
    }
    let hidden = [
        ("agent-8", "agent", "acme"),
        ("sup-2", "supervisor", "globex"),
        ("val-1", "validator", "acme"),
    ];
    for who in hidden {
        assert_eq!(read(&s, id, who).await.status, 404, "{who:?}");
    }
}

#[tokio::test]
async fn a_captured_event_cannot_be_replayed_against_another_shipment() {
    let (s, shipment) = service().await;
    let body = event("ev-1", "DELIVERED", "2026-11-24T14:00:00Z");
    // Signed for this shipment…
    let path = format!("/shipments/{}/events", shipment.shipment_id);
    let signature =
        webhook::sign(SECRET.as_bytes(), NOW.unix_timestamp(), "POST", &path, body.as_bytes()).expect("signed");
    // …and sent to another one.
    let other = "SH-S-00000000-0000-7000-8000-000000000000";
    let replayed = ApiEvent::new("POST /shipments/{id}/events")
        .anonymous()
        .param("id", other)
        .header(webhook::SENDER_HEADER, "urbano")
        .header(webhook::SIGNATURE_HEADER, &signature)
        .raw(&body)
        .build();
    assert_eq!(
        Reply::from(s.handle(replayed, &Invocation::ending_after(NOW, 10)).await).status,
        401
    );
}

#[tokio::test]
async fn a_courier_rotating_its_secret_is_accepted_with_either() {
    let (mut s, shipment) = service().await;
    s.secrets = courier_secrets(&format!(
        r#"{{"urbano": ["{SECRET}", "the-next-one"], "olva": "olva-secret"}}"#
    ))
    .expect("secrets");
    let id = shipment.shipment_id.as_str();
    let now = NOW.unix_timestamp();
    let picked = event("ev-1", "PICKED_UP", "2026-11-24T14:00:00Z");
    assert_eq!(post(&s, id, "urbano", SECRET, now, &picked).await.status, 200);
    let transit = event("ev-2", "IN_TRANSIT", "2026-11-24T14:10:00Z");
    assert_eq!(post(&s, id, "urbano", "the-next-one", now, &transit).await.status, 200);
    assert_eq!(s.secrets["olva"], vec!["olva-secret".to_owned()]);
}

#[tokio::test]
async fn an_event_id_is_unique_per_courier_not_per_shipment() {
    let (s, shipment) = service().await;
    // A second shipment of the same courier.
    let mut other = shipment.clone();
    other.shipment_id = backoffice_domain::events::ShipmentId::of(&SaleId::of(&presale_id("track-2")));
    let audit = AuditEntry::new(
        &other.shipment_id,
        1,
        NOW,
        &Actor::system("test"),
        "SCHEDULED",
        "SCHEDULED",
    )
    .seal(GENESIS_HASH);
    let outbox = OutboxMessage::seal(&InvoiceRequested::for_shipment(&sale(), &other), "c", NOW).expect("sealed");
    s.shipments.create(&other, &audit, &outbox).await.expect("created");
    let now = NOW.unix_timestamp();
    let picked = event("ev-77", "PICKED_UP", "2026-11-24T14:00:00Z");
    assert_eq!(
        post(&s, shipment.shipment_id.as_str(), "urbano", SECRET, now, &picked)
            .await
            .status,
        200
    );
    let again = post(&s, shipment.shipment_id.as_str(), "urbano", SECRET, now, &picked).await;
    assert_eq!(
        (again.status, again.body["duplicate"].as_bool()),
        (200, Some(true)),
        "same shipment: a duplicate"
    );
    let reused = post(&s, other.shipment_id.as_str(), "urbano", SECRET, now, &picked).await;
    assert_eq!(
        (reused.status, reused.problem()),
        (409, "event-id-reused"),
        "{:?}",
        reused.body
    );
    let events = s.shipments.events(other.shipment_id.as_str()).await.expect("events");
    assert!(events.is_empty(), "nothing recorded on the other shipment");
}

/// A source whose value the test changes, as an operator rotating the secret would.
#[derive(Clone, Default)]
struct Rotating(std::sync::Arc<std::sync::Mutex<String>>);

#[async_trait::async_trait]
impl backoffice_edge::secrets::SecretSource for Rotating {
    async fn secret_string(&self, _id: &str) -> Result<String, SecretError> {
        Ok(self.0.lock().map(|v| v.clone()).unwrap_or_default())
    }
}

#[tokio::test]
async fn secrets_are_read_at_run_time_and_a_rotation_is_picked_up_without_a_restart() {
    let (s, shipment) = service().await;
    let source = Rotating::default();
    *source.0.lock().expect("lock") = format!(r#"{{"urbano": "{SECRET}"}}"#);
    let s = Tracking {
        shipments: s.shipments,
        clock: s.clock,
        secrets: ManagedCourierSecrets {
            secret: CachedSecret::new(source.clone(), FixedClock::at(NOW), "couriers"),
        },
        publisher: s.publisher,
    };
    let id = shipment.shipment_id.as_str();
    let now = NOW.unix_timestamp();
    let picked = event("ev-1", "PICKED_UP", "2026-11-24T14:00:00Z");
    assert_eq!(post(&s, id, "urbano", SECRET, now, &picked).await.status, 200);
    // The operator rotates urbano to a new secret; a minute later urbano signs with it.
    *source.0.lock().expect("lock") = r#"{"urbano": "rotated-secret"}"#.to_owned();
    s.secrets.secret.clock().advance(time::Duration::minutes(1));
    let transit = event("ev-2", "IN_TRANSIT", "2026-11-24T14:10:00Z");
    assert_eq!(
        post(&s, id, "urbano", "rotated-secret", now, &transit).await.status,
        200,
        "no redeploy"
    );
    let delivered = event("ev-3", "DELIVERED", "2026-11-24T15:10:00Z");
    assert_eq!(
        post(&s, id, "urbano", SECRET, now, &delivered).await.status,
        401,
        "the old one is gone"
    );
}

#[tokio::test]
async fn a_return_and_cash_collected_reach_billing_once_when_they_move_the_shipment() {
    let now = NOW.unix_timestamp();
    // Returned: one ShipmentReturned; a resend of the event, or a later report, sends nothing.
    let (s, shipment) = service().await;
    let id = shipment.shipment_id.as_str();
    let returned = event("ev-r", "RETURNED", "2026-11-24T14:00:00Z");
    assert_eq!(post(&s, id, "urbano", SECRET, now, &returned).await.status, 200);
    assert_eq!(post(&s, id, "urbano", SECRET, now, &returned).await.status, 200);
    let late = event("ev-d", "DELIVERED", "2026-11-24T14:30:00Z");
    assert_eq!(post(&s, id, "urbano", SECRET, now, &late).await.status, 200);
    let sent = s.publisher.sent_json();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["type"], "ShipmentReturned");
    assert_eq!(sent[0]["body"]["sale_id"], shipment.sale_id.to_string());

    // Delivered with cash collected: one CashCollected with the amount.
    let (s, shipment) = service().await;
    let id = shipment.shipment_id.as_str();
    let cod = json!({"event_id": "ev-c", "type": "DELIVERED", "occurred_at": "2026-11-24T14:00:00Z",
                     "collected": {"amount": "19.99", "currency": "PEN"}})
    .to_string();
    assert_eq!(post(&s, id, "urbano", SECRET, now, &cod).await.status, 200);
    let sent = s.publisher.sent_json();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "CashCollected");
    assert_eq!(sent[0]["body"]["amount"]["amount"], "19.99");

    // Cash is collected on delivery only, and is more than nothing.
    let (s, shipment) = service().await;
    let id = shipment.shipment_id.as_str();
    for bad in [
        json!({"event_id": "ev-x", "type": "IN_TRANSIT", "occurred_at": "2026-11-24T14:00:00Z",
               "collected": {"amount": "19.99", "currency": "PEN"}}),
        json!({"event_id": "ev-y", "type": "DELIVERED", "occurred_at": "2026-11-24T14:00:00Z",
               "collected": {"amount": "0.00", "currency": "PEN"}}),
    ] {
        let reply = post(&s, id, "urbano", SECRET, now, &bad.to_string()).await;
        assert_eq!(reply.status, 422, "{}", reply.body);
    }
    assert!(s.publisher.sent().is_empty());
}
