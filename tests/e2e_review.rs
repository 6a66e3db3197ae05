//! Validation end to end: a pre-sale with its recording is claimed, viewed (playback link),
//! approved by a validator who is not its agent, and becomes exactly one sale, one shipment
//! and one invoice; claims race safely; the audit chain verifies and detects tampering.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use e2e_tests::desk::{Desk, desk};
use e2e_tests::{Caller, Reply, caller, send_concurrently, unique};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recorded_presale_is_claimed_reviewed_and_approved_into_exactly_one_sale() {
    let d = desk().await;
    let (id, bytes) = d.ready_presale(75).await;

    // The agent, even with a validator token, never gets their own pre-sale.
    let own = d
        .post(&caller("agent-7", "validator", &[&d.client]), "/reviews/next", None)
        .await;
    assert_eq!(own.status, 204, "{:?}", own.body);
    let val = d.validator("val-1");
    let claimed = d.post(&val, "/reviews/next", None).await;
    assert_eq!(
        (claimed.status, claimed.body["presale"]["id"].as_str()),
        (200, Some(id.as_str())),
        "{:?}",
        claimed.body
    );
    let version = claimed.body["presale"]["version"].as_u64().expect("version");

    let view = d
        .env
        .send(d.env.as_caller(&val, "GET", &format!("/presales/{id}/review-view")))
        .await;
    assert_eq!(view.status, 200, "{:?}", view.body);
    assert!(
        view.body["recording"]["audio"]["duration_ms"]
            .as_u64()
            .is_some_and(|ms| ms >= 74_000)
    );
    let url = view.body["playback"]["url"].as_str().expect("presigned url");
    let played = reqwest::get(url).await.expect("playback").bytes().await.expect("bytes");
    assert_eq!(
        hex::encode(Sha256::digest(&played)),
        hex::encode(Sha256::digest(&bytes)),
        "the link plays exactly the bound recording"
    );

    let bad = d
        .post(
            &val,
            &format!("/presales/{id}/review"),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!((bad.status, bad.body["field"].as_str()), (422, Some("version")));
    let unknown = d
        .post(
            &val,
            &format!("/presales/{id}/review"),
            Some(json!({"decision": "maybe", "version": version})),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.body["field"].as_str()),
        (422, Some("decision"))
    );
    let other = d
        .post(
            &d.validator("val-2"),
            &format!("/presales/{id}/review"),
            Some(json!({"decision": "approve", "version": version})),
        )
        .await;
    assert_eq!(other.status, 409, "only the claim holder decides");

    let approve = json!({"decision": "approve", "version": version, "override_reason": "revisado"});
    let approved = d
        .post(&val, &format!("/presales/{id}/review"), Some(approve.clone()))
        .await;
    assert_eq!(
        (approved.status, approved.body["status"].as_str()),
        (200, Some("APPROVED")),
        "{:?}",
        approved.body
    );
    let repeated = d.post(&val, &format!("/presales/{id}/review"), Some(approve)).await;
    assert_eq!(
        (repeated.status, repeated.body["current"]["status"].as_str()),
        (409, Some("APPROVED"))
    );

    // The sale is dispatched: one shipment, then one invoice.
    let sale_id = format!("S-{id}");
    let shipment = d.wait_shipment(&sale_id).await;
    assert_eq!(
        shipment.get("status").and_then(|v| v.as_s().ok()).map(String::as_str),
        Some("SCHEDULED")
    );
    d.sweep().await;
    // The very SaleConfirmed the outbox sent, delivered three more times at once (SQS and
    // retries do that), to three instances of fulfillment-dispatch: each processes it.
    let sale_confirmed = d.outbox_body("PresalesTable", &sale_id).await;
    let redeliveries = send_concurrently(
        (0..3)
            .map(|_| {
                d.env
                    .deliver_sqs("FulfillmentDispatchFunction", "SalesQueue", &sale_confirmed)
            })
            .collect(),
    )
    .await;
    for redelivery in &redeliveries {
        assert_eq!(
            (redelivery.status, &redelivery.body),
            (200, &json!({"batchItemFailures": []})),
            "a redelivery is processed, not failed"
        );
    }
    d.env.drain("SalesQueue").await;
    d.env.drain("BillingQueue").await;
    d.wait_invoice(&sale_id).await;
    assert_eq!(
        d.env.invoices_of_client(&d.client).await.len(),
        1,
        "exactly one invoice for the sale"
    );

    let audit = d
        .env
        .send(d.env.as_caller(
            &caller("sup-1", "supervisor", &[&d.client]),
            "GET",
            &format!("/presales/{id}/audit"),
        ))
        .await;
    let actions: Vec<&str> = audit.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["CREATED", "RECORDING_ATTACHED", "CLAIMED", "APPROVED"]);
    assert_eq!(audit.body["verification"]["verified"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_hand_out_the_same_presale() {
    let d = desk().await;
    let mut ids = HashSet::new();
    for _ in 0..4 {
        ids.insert(d.ready_presale(8).await.0);
    }
    let validators: Vec<Caller> = (0..6).map(|i| d.validator(&format!("val-{i}"))).collect();
    let claims = send_concurrently(
        validators
            .iter()
            .map(|v| d.env.as_caller(v, "POST", "/reviews/next"))
            .collect(),
    )
    .await;
    let granted: Vec<String> = claims
        .iter()
        .filter(|r| r.status == 200)
        .filter_map(|r| r.body["presale"]["id"].as_str().map(str::to_owned))
        .collect();
    let unique_granted: HashSet<&String> = granted.iter().collect();
    assert_eq!(
        granted.len(),
        unique_granted.len(),
        "a pre-sale was handed out twice: {granted:?}"
    );
    assert_eq!(
        unique_granted.len(),
        4,
        "every pre-sale claimed once: {:?}",
        claims.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(claims.iter().all(|r| r.status == 200 || r.status == 204));
    assert!(unique_granted.iter().all(|id| ids.contains(*id)));
}

#[tokio::test]
async fn a_tampered_audit_record_is_detected_and_roles_are_enforced() {
    let d = desk().await;
    let (id, _) = d.ready_presale(8).await;
    let supervisor = caller("sup-1", "supervisor", &[&d.client]);
    let clean = d
        .env
        .send(d.env.as_caller(&supervisor, "GET", &format!("/presales/{id}/audit")))
        .await;
    assert_eq!(clean.body["verification"]["verified"], true);

    // Someone with table access rewrites who created the pre-sale.
    d.env
        .dynamodb
        .update_item()
        .table_name(d.env.table("PresalesTable"))
        .key("pk", AttributeValue::S(format!("PRESALE#{id}")))
        .key("sk", AttributeValue::S("AUDIT#0000000001".into()))
        .update_expression("SET actor = :x")
        .expression_attribute_values(":x", AttributeValue::S("someone-else".into()))
        .send()
        .await
        .expect("tamper");
    let tampered = d
        .env
        .send(d.env.as_caller(&supervisor, "GET", &format!("/presales/{id}/audit")))
        .await;
    assert_eq!(
        (
            tampered.body["verification"]["verified"].as_bool(),
            tampered.body["verification"]["broken_at"].as_u64()
        ),
        (Some(false), Some(1))
    );

    let stranger = caller("val-9", "validator", &[&unique("other")]);
    assert_eq!(
        d.env
            .send(d.env.as_caller(&stranger, "GET", &format!("/presales/{id}/audit")))
            .await
            .status,
        404
    );
    assert_eq!(
        d.env
            .send(d.env.as_caller(&d.agent, "GET", &format!("/presales/{id}/audit")))
            .await
            .status,
        403
    );
    let metrics = d
        .env
        .send(d.env.as_caller(
            &d.validator("val-1"),
            "GET",
            &format!("/reviews/metrics?campaign={}", d.campaign),
        ))
        .await;
    assert_eq!(metrics.status, 403);
    let metrics = d
        .env
        .send(d.env.as_caller(
            &supervisor,
            "GET",
            &format!("/reviews/metrics?campaign={}&day=yesterday", d.campaign),
        ))
        .await;
    assert_eq!((metrics.status, metrics.body["field"].as_str()), (400, Some("day")));
    let garbage = d
        .env
        .send(
            d.env
                .as_caller(&d.validator("val-1"), "POST", &format!("/presales/{id}/review"))
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    assert_eq!(garbage.status, 400);
}

#[tokio::test]
async fn a_poison_sale_message_goes_to_the_dead_letter_queue_without_blocking_its_batch() {
    let d = desk().await;
    let sales = d.env.resource("SalesQueue").reference.clone();
    let dlq = d.env.resource("SalesDLQ").reference.clone();
    let marker = unique("poison");
    d.env
        .sqs
        .send_message()
        .queue_url(&sales)
        .message_body(format!("{{\"type\":\"SaleConfirmed\",\"body\":\"{marker}\"}}"))
        .send()
        .await
        .expect("send");
    let started = Instant::now();
    loop {
        let output = d
            .env
            .sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        if output
            .messages()
            .iter()
            .any(|m| m.body().is_some_and(|b| b.contains(&marker)))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the poison message never reached the DLQ"
        );
    }
}

/// Sign and send a courier event for `shipment`.
async fn courier_event(d: &Desk, courier: &str, secret: &str, shipment: &str, body: &Value, signed_at: i64) -> Reply {
    let raw = body.to_string();
    let path = format!("/shipments/{shipment}/events");
    let signature = backoffice_edge::http::webhook::sign(secret.as_bytes(), signed_at, "POST", &path, raw.as_bytes())
        .expect("sign");
    d.env
        .send(
            d.env
                .request("POST", &format!("/shipments/{shipment}/events"))
                .header("content-type", "application/json")
                .header("x-courier-id", courier)
                .header("x-courier-signature", signature)
                .body(raw),
        )
        .await
}

#[tokio::test]
async fn a_courier_takes_the_shipment_to_delivered_and_forged_events_change_nothing() {
    let d = desk().await;
    let (id, _) = d.ready_presale(8).await;
    let val = d.validator("val-1");
    let claimed = d.post(&val, "/reviews/next", None).await;
    let version = claimed.body["presale"]["version"].as_u64().expect("version");
    let approved = d
        .post(
            &val,
            &format!("/presales/{id}/review"),
            Some(json!({"decision": "approve", "version": version, "override_reason": "revisado"})),
        )
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let shipment_id = format!("SH-S-{id}");
    let item = d.wait_shipment(&format!("S-{id}")).await;
    let courier = item
        .get("plan")
        .and_then(|p| p.as_m().ok())
        .and_then(|p| p.get("courier_id"))
        .and_then(|c| c.as_s().ok())
        .cloned()
        .expect("courier");
    let secret = d
        .env
        .info
        .courier_secrets
        .get(&courier)
        .cloned()
        .expect("the stack has this courier's secret");
    let now = time::OffsetDateTime::now_utc();
    let at = |minutes: i64| {
        (now - time::Duration::minutes(minutes))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let event = |event_id: &str, kind: &str, minutes_ago: i64| json!({"event_id": event_id, "type": kind, "occurred_at": at(minutes_ago)});

    // Refused before anything is read: forged, replayed, unsigned, unknown courier.
    let forged = courier_event(
        &d,
        &courier,
        "not-the-secret",
        &shipment_id,
        &event("e0", "DELIVERED", 1),
        now.unix_timestamp(),
    )
    .await;
    let replayed = courier_event(
        &d,
        &courier,
        &secret,
        &shipment_id,
        &event("e0", "DELIVERED", 1),
        now.unix_timestamp() - 3600,
    )
    .await;
    let unknown = courier_event(
        &d,
        "dhl",
        &secret,
        &shipment_id,
        &event("e0", "DELIVERED", 1),
        now.unix_timestamp(),
    )
    .await;
    let unsigned = d
        .env
        .send(
            d.env
                .request("POST", &format!("/shipments/{shipment_id}/events"))
                .header("x-courier-id", &courier)
                .json(&event("e0", "DELIVERED", 1)),
        )
        .await;
    assert_eq!(
        [forged.status, replayed.status, unknown.status, unsigned.status],
        [401; 4]
    );
    let supervisor = caller("sup-1", "supervisor", &[&d.client]);
    let read = d
        .env
        .send(
            d.env
                .as_caller(&supervisor, "GET", &format!("/shipments/{shipment_id}")),
        )
        .await;
    assert_eq!(
        (
            read.body["shipment"]["status"].as_str(),
            read.body["events"].as_array().map(Vec::len)
        ),
        (Some("SCHEDULED"), Some(0)),
        "forged events changed nothing"
    );

    for (event_id, kind, minutes_ago) in [
        ("e1", "PICKED_UP", 30),
        ("e2", "IN_TRANSIT", 20),
        ("e3", "DELIVERED", 5),
    ] {
        let reply = courier_event(
            &d,
            &courier,
            &secret,
            &shipment_id,
            &event(event_id, kind, minutes_ago),
            now.unix_timestamp(),
        )
        .await;
        assert_eq!(
            (reply.status, reply.body["status"].as_str()),
            (200, Some(kind)),
            "{:?}",
            reply.body
        );
    }
    // Late and repeated events: recorded or ignored, never moving a delivered shipment back.
    let late = courier_event(
        &d,
        &courier,
        &secret,
        &shipment_id,
        &event("e4", "IN_TRANSIT", 10),
        now.unix_timestamp(),
    )
    .await;
    assert_eq!(
        (
            late.status,
            late.body["status"].as_str(),
            late.body["applied"].as_bool()
        ),
        (200, Some("DELIVERED"), Some(false))
    );
    let again = courier_event(
        &d,
        &courier,
        &secret,
        &shipment_id,
        &event("e3", "DELIVERED", 5),
        now.unix_timestamp(),
    )
    .await;
    assert_eq!((again.status, again.body["duplicate"].as_bool()), (200, Some(true)));
    let failed = courier_event(
        &d,
        &courier,
        &secret,
        &shipment_id,
        &json!({"event_id": "e5", "type": "FAILED_ATTEMPT", "occurred_at": at(1)}),
        now.unix_timestamp(),
    )
    .await;
    assert_eq!(failed.status, 422, "a failed attempt needs a reason");

    let read = d
        .env
        .send(
            d.env
                .as_caller(&supervisor, "GET", &format!("/shipments/{shipment_id}")),
        )
        .await;
    assert_eq!(read.body["shipment"]["status"], "DELIVERED");
    assert_eq!(read.body["events"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        d.env
            .send(d.env.as_caller(&d.agent, "GET", &format!("/shipments/{shipment_id}")))
            .await
            .status,
        200,
        "the sale's agent"
    );
    assert_eq!(
        d.env
            .send(d.env.as_caller(
                &caller("agent-8", "agent", &[&d.client]),
                "GET",
                &format!("/shipments/{shipment_id}")
            ))
            .await
            .status,
        404
    );
}

/// Issue 12: a validator rejecting with the same reason twice got a 500 (DynamoDB refuses an
/// update that names one counter twice) and nothing was decided.
#[tokio::test]
async fn a_reason_given_twice_is_a_422_and_the_rejection_then_goes_through() {
    let d = desk().await;
    let (id, _) = d.ready_presale(65).await;
    let val = d.validator("val-dup");
    let claimed = d.post(&val, "/reviews/next", None).await;
    assert_eq!(claimed.status, 200, "{:?}", claimed.body);
    let version = claimed.body["presale"]["version"].as_u64().expect("version");
    let twice = json!({"decision": "reject", "version": version, "reasons": ["NO_CONSENT", "NO_CONSENT"]});
    let refused = d.post(&val, &format!("/presales/{id}/review"), Some(twice)).await;
    assert_eq!(
        (
            refused.status,
            refused.body["errors"][0]["field"].as_str(),
            refused.body["errors"][0]["code"].as_str()
        ),
        (422, Some("reasons[1]"), Some("duplicate_reason")),
        "{:?}",
        refused.body
    );
    let once = json!({"decision": "reject", "version": version, "reasons": ["NO_CONSENT", "DATA_MISMATCH"]});
    let rejected = d.post(&val, &format!("/presales/{id}/review"), Some(once)).await;
    assert_eq!(
        (rejected.status, rejected.body["status"].as_str()),
        (200, Some("REJECTED")),
        "{:?}",
        rejected.body
    );
}

/// The review queue against the emulator's index: 25 live claims do not hide the waiting work
/// from the 26th validator, every pre-sale is claimed once, and a validator holds one claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimed_items_never_starve_the_queue_and_a_validator_holds_one_claim() {
    use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
    use backoffice_domain::presale::{PresaleAction, PresaleStatus};
    use backoffice_domain::testing::{campaign_catalog, registered_presale};
    use backoffice_store::presales::{DynamoPresaleStore, PresaleWrite};

    let d = desk().await;
    let store = DynamoPresaleStore::new(d.env.dynamodb.clone(), d.env.table("PresalesTable"));
    let catalog = campaign_catalog(&d.campaign, &d.client);
    let now = time::OffsetDateTime::now_utc() - time::Duration::minutes(30);
    let mut ids = HashSet::new();
    for n in 0..32 {
        let mut p = registered_presale(&catalog, &format!("starve-{n}"), None, now);
        let created = AuditEntry::presale(&p, now, &Actor::new("agent-7", "agent"), "CREATED").seal(GENESIS_HASH);
        store.create(&p, &created).await.expect("create");
        p.transition(PresaleAction::AttachRecording, now).expect("attach");
        p.risk_score = Some(50);
        let attached = AuditEntry::presale(&p, now, &Actor::system("recording-ingest"), "RECORDING_ATTACHED")
            .from_status(PresaleStatus::PendingRecording)
            .seal(&created.hash);
        store
            .save(&p, 1, PresaleStatus::PendingRecording, &attached)
            .await
            .expect("ready");
        ids.insert(p.id.to_string());
    }

    // 25 validators hold claims first; then five more ask, all at once.
    let validators: Vec<Caller> = (1..=30).map(|v| d.validator(&format!("val-{v}"))).collect();
    let mut claimed = HashSet::new();
    for v in &validators[..25] {
        let reply = d.post(v, "/reviews/next", None).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        claimed.insert(reply.body["presale"]["id"].as_str().expect("id").to_owned());
    }
    let late: Vec<Reply> = send_concurrently(
        validators[25..]
            .iter()
            .map(|v| d.env.as_caller(v, "POST", "/reviews/next"))
            .collect(),
    )
    .await;
    for reply in &late {
        assert_eq!(
            reply.status, 200,
            "the 26th validator onwards gets work: {:?}",
            reply.body
        );
        claimed.insert(reply.body["presale"]["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(claimed.len(), 30, "thirty validators, thirty different pre-sales");

    // A validator asking four times at once takes exactly one pre-sale.
    let eager = d.validator("val-31");
    let racing: Vec<Reply> = send_concurrently(
        (0..4)
            .map(|_| d.env.as_caller(&eager, "POST", "/reviews/next"))
            .collect(),
    )
    .await;
    let held: HashSet<&str> = racing
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{:?}", r.body);
            r.body["presale"]["id"].as_str().expect("id")
        })
        .collect();
    assert_eq!(
        held.len(),
        1,
        "one claim per validator, even under concurrent requests: {held:?}"
    );
    claimed.extend(held.iter().map(|id| (*id).to_owned()));
    let claims = d
        .env
        .partition("PresalesTable", &format!("VALIDATOR#{}", eager.sub))
        .await;
    assert_eq!(claims.len(), 1, "one claim item per validator");

    let last = d.post(&d.validator("val-32"), "/reviews/next", None).await;
    assert_eq!(
        last.status, 200,
        "the other one still waits for someone: {:?}",
        last.body
    );
    claimed.insert(last.body["presale"]["id"].as_str().expect("id").to_owned());
    assert_eq!(claimed, ids, "every pre-sale claimed exactly once");
    assert_eq!(d.post(&d.validator("val-33"), "/reviews/next", None).await.status, 204);
}

/// A campaign whose configuration partition holds 24 disposition-catalog versions (well over
/// DynamoDB's 1 MB query page, and sorted before the SKU and fulfillment items) still prices a
/// registration and dispatches its sale: configuration reads page to the end.
#[tokio::test]
async fn a_campaign_with_24_catalog_versions_still_registers_and_dispatches() {
    let d = desk().await;
    let admin = caller("admin-1", "admin", &[&d.client]);
    let mut published = 0;
    for version in 1..=24u32 {
        // About 55 KB a version, under the 64 KB body limit.
        let extra: Vec<Value> = (0..250)
            .map(|n| {
                json!({"code": format!("WRONG_PARTY_V{version}_{n:03}"), "label": format!("Tercero {n} de la versión {version}: {}", "x".repeat(160)), "family": "NON_EFFECTIVE"})
            })
            .collect();
        let nodes = json!([
            {"code": "SALE", "label": "Acepta", "family": "EFFECTIVE", "flags": {"sale": true, "final": true}},
            {"code": "NO_ANSWER", "label": "No contesta", "family": "NO_CONTACT"},
            {"code": "OTHERS", "label": "Otros", "children": extra},
        ]);
        let put = d
            .env
            .send(
                d.env
                    .as_caller(&admin, "PUT", &format!("/campaigns/{}/dispositions", d.campaign))
                    .json(&json!({"based_on_version": version - 1, "nodes": nodes})),
            )
            .await;
        assert_eq!(put.status, 200, "version {version}: {:?}", put.body);
        published = put.body["version"].as_u64().expect("version");
    }
    assert_eq!(published, 24);
    // One query page of the campaign's partition ends before its SKU items.
    let first_page = d
        .env
        .dynamodb
        .query()
        .table_name(d.env.table("ConfigTable"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("CAMPAIGN#{}", d.campaign)))
        .send()
        .await
        .expect("query");
    assert!(
        first_page.last_evaluated_key.is_some(),
        "the partition spans more than one page"
    );
    assert!(
        !first_page.items().iter().any(|item| item
            .get("sk")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|sk| sk.starts_with("SKU#"))),
        "the SKUs are beyond the first page"
    );

    let (id, _) = d.ready_presale(30).await;
    let presale = d
        .env
        .send(d.env.as_caller(&d.agent, "GET", &format!("/presales/{id}")))
        .await;
    assert_eq!(
        presale.body["total"],
        json!({"amount": "169.89", "currency": "PEN"}),
        "{:?}",
        presale.body
    );
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let shipment = d.wait_shipment(&sale_id).await;
    assert_eq!(
        shipment.get("status").and_then(|v| v.as_s().ok()).map(String::as_str),
        Some("SCHEDULED")
    );
}

/// The audit chain covers the data: an approved pre-sale whose total is edited in the table
/// (records untouched) fails verification at its last record, and every change through the API
/// keeps it verified, from registration to approval.
#[tokio::test]
async fn an_approved_total_edited_in_the_table_is_detected() {
    let d = desk().await;
    let (id, _) = d.ready_presale(30).await;
    d.approve(&d.validator("val-1"), &id).await;
    let supervisor = caller("sup-1", "supervisor", &[&d.client]);
    let audit = async |d: &Desk| {
        d.env
            .send(d.env.as_caller(&supervisor, "GET", &format!("/presales/{id}/audit")))
            .await
    };
    let clean = audit(&d).await;
    assert_eq!(clean.body["verification"]["verified"], true, "{:?}", clean.body);
    let records = clean.body["records"].as_array().expect("records");
    assert!(
        records.iter().all(|r| r["state_hash"].is_string()),
        "every record hashes the state"
    );
    let last_seq = records.last().and_then(|r| r["seq"].as_u64()).expect("seq");

    d.env
        .dynamodb
        .update_item()
        .table_name(d.env.table("PresalesTable"))
        .key("pk", AttributeValue::S(format!("PRESALE#{id}")))
        .key("sk", AttributeValue::S("META".into()))
        .update_expression("SET #total.#amount = :cheap")
        .expression_attribute_names("#total", "total")
        .expression_attribute_names("#amount", "amount")
        .expression_attribute_values(":cheap", AttributeValue::S("1.00".into()))
        .send()
        .await
        .expect("tamper with the total");
    let tampered = audit(&d).await;
    assert_eq!(
        (
            tampered.body["verification"]["verified"].as_bool(),
            tampered.body["verification"]["broken_at"].as_u64()
        ),
        (Some(false), Some(last_seq)),
        "{:?}",
        tampered.body["verification"]
    );
}

#[tokio::test]
async fn a_chain_rewritten_from_the_genesis_is_caught_by_its_locked_anchor() {
    let d = desk().await;
    let (id, _) = d.ready_presale(30).await;
    d.approve(&d.validator("val-1"), &id).await;
    let supervisor = caller("sup-1", "supervisor", &[&d.client]);
    let audit = async |d: &Desk| {
        d.env
            .send(d.env.as_caller(&supervisor, "GET", &format!("/presales/{id}/audit")))
            .await
    };
    let clean = audit(&d).await;
    assert_eq!(
        (
            clean.body["verification"]["verified"].as_bool(),
            clean.body["verification"]["anchors"].as_u64()
        ),
        (Some(true), Some(1)),
        "{:?}",
        clean.body["verification"]
    );

    // The anchor is in the Object Lock bucket, and S3 refuses to delete it.
    let bucket = d.env.table("AuditAnchorsBucket");
    let versions = d
        .env
        .s3
        .list_object_versions()
        .bucket(&bucket)
        .prefix(format!("audit-anchors/{id}/"))
        .send()
        .await
        .expect("list anchors");
    let anchor = versions.versions().first().expect("one anchor").clone();
    let deleted = d
        .env
        .s3
        .delete_object()
        .bucket(&bucket)
        .key(anchor.key().expect("key"))
        .set_version_id(anchor.version_id().map(str::to_owned))
        .send()
        .await;
    assert!(deleted.is_err(), "a locked anchor was deleted");

    // Someone with write access to the table rewrites the whole chain consistently: another
    // actor on the first record, every hash recomputed from the genesis, the head moved.
    let table = d.env.table("PresalesTable");
    let items = d
        .env
        .dynamodb
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :audit)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("PRESALE#{id}")))
        .expression_attribute_values(":audit", AttributeValue::S("AUDIT#".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("read the chain")
        .items
        .unwrap_or_default();
    let mut prev = backoffice_domain::audit::GENESIS_HASH.to_owned();
    for item in items {
        let mut record: backoffice_domain::audit::AuditRecord =
            serde_dynamo::from_item(item.clone()).expect("an audit record");
        if record.seq == 1 {
            record.actor = "someone-else".into();
        }
        record.prev_hash = prev.clone();
        record.hash = record.compute_hash();
        prev = record.hash.clone();
        d.env
            .dynamodb
            .update_item()
            .table_name(&table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .update_expression("SET actor = :actor, prev_hash = :prev, #hash = :hash")
            .expression_attribute_names("#hash", "hash")
            .expression_attribute_values(":actor", AttributeValue::S(record.actor.clone()))
            .expression_attribute_values(":prev", AttributeValue::S(record.prev_hash.clone()))
            .expression_attribute_values(":hash", AttributeValue::S(record.hash.clone()))
            .send()
            .await
            .expect("rewrite a record");
    }
    d.env
        .dynamodb
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("PRESALE#{id}")))
        .key("sk", AttributeValue::S("META".into()))
        .update_expression("SET audit_head = :head")
        .expression_attribute_values(":head", AttributeValue::S(prev))
        .send()
        .await
        .expect("move the head");
    let rewritten = audit(&d).await;
    let verification = &rewritten.body["verification"];
    assert_eq!(verification["verified"], false, "{verification:?}");
    assert!(
        verification["problem"]
            .as_str()
            .is_some_and(|p| p.contains("rewritten")),
        "{verification:?}"
    );
}

/// Issue 18, the API side of the console: it is served by the stack (gzip, CSP, nosniff), its
/// dev sign-in mints a token the API accepts, and the review screen's calls work: the waveform
/// and versions in the view, a playback recorded once in the audit without a new version, the
/// lease renewed, and a stale decision's 409 saying who decided.
#[tokio::test]
async fn the_console_is_served_and_its_review_screen_calls_work_end_to_end() {
    let d = desk().await;
    let api = &d.env.info.api_url;
    let http = &d.env.http;

    // The page, compressed, with its policy; config.json says how to sign in locally.
    let page = http
        .get(format!("{api}/console"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("the console");
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(header("content-encoding"), "gzip");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let csp = header("content-security-policy");
    assert!(csp.starts_with("default-src 'self'; script-src 'self';"), "{csp}");
    assert!(
        csp.contains("media-src 'self' ") && csp.contains(&d.env.info.endpoint_url),
        "{csp}"
    );
    let etag = header("etag");
    let body = page.bytes().await.expect("body");
    assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip stream");
    let again = http
        .get(format!("{api}/console/index.html"))
        .header("accept-encoding", "gzip")
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("revalidation");
    assert_eq!(again.status(), 304);
    let config = d.env.send(d.env.request("GET", "/console/config.json")).await;
    assert_eq!(config.status, 200);
    assert_eq!(config.body["auth"]["mode"], "dev");
    let missing = d.env.send(d.env.request("GET", "/console/nope.js")).await;
    assert_eq!((missing.status, missing.problem()), (404, "not-found"));

    // The dev sign-in: the token it mints is the profile's; a made-up role is refused.
    let minted = d
        .env
        .send(d.env.request("POST", "/_local/token").json(&json!({
            "role": "validator", "sub": format!("val-c.{}", d.client), "clients": [d.client]})))
        .await;
    assert_eq!(minted.status, 200, "{:?}", minted.body);
    let token = minted.body["token"].as_str().expect("token").to_owned();
    let refused = d
        .env
        .send(d.env.request("POST", "/_local/token").json(&json!({"role": "root"})))
        .await;
    assert_eq!(refused.status, 400);

    let (id, bytes) = d.ready_presale(20).await;
    let as_console = |method: &str, path: &str| d.env.request(method, path).bearer_auth(&token);
    let claimed = d.env.send(as_console("POST", "/reviews/next")).await;
    assert_eq!(
        claimed.body["presale"]["id"].as_str(),
        Some(id.as_str()),
        "{:?}",
        claimed.body
    );
    let version = claimed.body["presale"]["version"].as_u64().expect("version");
    assert!(claimed.body["lease_until"].as_str().is_some_and(|l| l.ends_with('Z')));

    let view = d
        .env
        .send(as_console("GET", &format!("/presales/{id}/review-view")))
        .await;
    assert_eq!(view.status, 200, "{:?}", view.body);
    let sha = hex::encode(Sha256::digest(&bytes));
    assert_eq!(view.body["recording"]["sha256"], sha.as_str());
    assert_eq!(
        view.body["recording"]["peaks"]["values"].as_array().map(Vec::len),
        Some(400),
        "20 s in 50 ms buckets"
    );
    assert!(view.body["recording"]["marks"].is_array());
    assert_eq!(view.body["versions"][0]["sha256"], sha.as_str());
    let version_url = view.body["versions"][0]["playback_url"]
        .as_str()
        .expect("a version's link");
    let version_bytes = reqwest::get(version_url)
        .await
        .expect("plays")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(
        hex::encode(Sha256::digest(&version_bytes)),
        sha,
        "each version's link plays that version"
    );
    assert_eq!(view.body["lease_until"], claimed.body["lease_until"]);

    // A playback: recorded once (the retry answers the same), a note in the audit, no new version.
    let started = time::OffsetDateTime::now_utc() - time::Duration::seconds(30);
    let playback = json!({"playback_id": unique("play"), "sha256": sha, "listened_ms": 20_000,
        "started_at": started.format(&time::format_description::well_known::Rfc3339).expect("format")});
    let first = d
        .env
        .send(as_console("POST", &format!("/presales/{id}/playbacks")).json(&playback))
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let retry = d
        .env
        .send(as_console("POST", &format!("/presales/{id}/playbacks")).json(&playback))
        .await;
    assert_eq!((retry.status, &retry.body), (200, &first.body));
    let renewed = d.env.send(as_console("POST", &format!("/reviews/{id}/renew"))).await;
    assert_eq!(
        (
            renewed.status,
            renewed.body["renewed"].as_bool(),
            renewed.body["version"].as_u64()
        ),
        (200, Some(false), Some(version)),
        "{:?}",
        renewed.body
    );
    let audit = d.env.send(as_console("GET", &format!("/presales/{id}/audit"))).await;
    let plays: Vec<&Value> = audit.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] == "PLAYED")
        .collect();
    assert_eq!(plays.len(), 1, "{:?}", audit.body);
    assert_eq!(plays[0]["details"]["listened_ms"], 20_000);
    assert_eq!(plays[0]["actor"], format!("val-c.{}", d.client));
    assert_eq!(
        audit.body["verification"]["verified"], true,
        "{:?}",
        audit.body["verification"]
    );

    // The decision on the version claimed still holds; the same decision again says who decided.
    let decision = json!({"decision": "approve", "version": version, "override_reason": "revisado en consola"});
    let decided = d
        .env
        .send(as_console("POST", &format!("/presales/{id}/review")).json(&decision))
        .await;
    assert_eq!(decided.status, 200, "{:?}", decided.body);
    let stale = d
        .env
        .send(as_console("POST", &format!("/presales/{id}/review")).json(&decision))
        .await;
    assert_eq!(stale.status, 409, "{:?}", stale.body);
    assert_eq!(stale.body["current"]["status"], "APPROVED");
    assert_eq!(stale.body["current"]["decided_by"], format!("val-c.{}", d.client));
    let audit = d.env.send(as_console("GET", &format!("/presales/{id}/audit"))).await;
    assert_eq!(
        audit.body["verification"]["verified"], true,
        "{:?}",
        audit.body["verification"]
    );
}

/// Playbacks posted while the validator decides (the console sends one when the audio stops,
/// which may be the moment the decision key is pressed): the decision on the version claimed
/// goes through, every note lands on one unbroken chain, and none is recorded twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn playbacks_racing_a_decision_never_fork_the_chain_or_make_it_stale() {
    let d = desk().await;
    let (id, bytes) = d.ready_presale(12).await;
    let val = d.validator("val-race");
    let claimed = d.post(&val, "/reviews/next", None).await;
    assert_eq!(
        claimed.body["presale"]["id"].as_str(),
        Some(id.as_str()),
        "{:?}",
        claimed.body
    );
    let version = claimed.body["presale"]["version"].as_u64().expect("version");
    let sha = hex::encode(Sha256::digest(&bytes));
    let started = (time::OffsetDateTime::now_utc() - time::Duration::seconds(20))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let plays: Vec<Value> = (0..4)
        .map(|n| json!({"playback_id": unique("race"), "sha256": sha, "started_at": started, "listened_ms": 1_000 * (n + 1)}))
        .collect();
    let mut requests: Vec<reqwest::RequestBuilder> = plays
        .iter()
        .map(|p| {
            d.env
                .as_caller(&val, "POST", &format!("/presales/{id}/playbacks"))
                .json(p)
        })
        .collect();
    requests.push(
        d.env
            .as_caller(&val, "POST", &format!("/presales/{id}/review"))
            .json(&json!({"decision": "approve", "version": version, "override_reason": "escuchado"})),
    );
    let replies = send_concurrently(requests).await;
    let decided = replies.last().expect("the decision");
    assert_eq!(decided.status, 200, "{:?}", decided.body);
    let recorded = replies[..plays.len()].iter().filter(|r| r.status == 201).count();
    for reply in &replies[..plays.len()] {
        assert!(matches!(reply.status, 201 | 409), "{} {:?}", reply.status, reply.body);
    }
    // What was refused as busy is sent again, as the console does: recorded once.
    for (play, reply) in plays.iter().zip(&replies) {
        if reply.status == 409 {
            let again = d
                .env
                .send(
                    d.env
                        .as_caller(&val, "POST", &format!("/presales/{id}/playbacks"))
                        .json(play),
                )
                .await;
            assert_eq!(again.status, 201, "{:?}", again.body);
        }
    }
    let audit = d
        .env
        .send(d.env.as_caller(&val, "GET", &format!("/presales/{id}/audit")))
        .await;
    assert_eq!(audit.body["verification"]["verified"], true, "{:?}", audit.body);
    let records = audit.body["records"].as_array().expect("records");
    let played = records.iter().filter(|r| r["action"] == "PLAYED").count();
    let approved = records.iter().filter(|r| r["action"] == "APPROVED").count();
    assert_eq!((played, approved), (plays.len(), 1), "{recorded} recorded at first");
}

/// The review queue against DynamoDB (one query per claim, issue 14): a client's waiting
/// pre-sales come first, then claims whose lease ended, earliest first; a live claim is never
/// offered, and claims never hide waiting work from a short page.
#[tokio::test]
async fn one_query_offers_waiting_presales_first_then_lapsed_claims_never_live_ones() {
    use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
    use backoffice_domain::presale::PresaleAction;
    use backoffice_domain::review;
    use backoffice_domain::testing::{campaign_catalog, registered_presale};
    use backoffice_store::presales::{DynamoPresaleStore, PresaleWrite, ReviewQueue};

    let d = desk().await;
    let store = DynamoPresaleStore::new(d.env.dynamodb.clone(), d.env.table("PresalesTable"));
    let client = unique("cli-queue");
    let catalog = campaign_catalog(&d.campaign, &client);
    let now = time::OffsetDateTime::now_utc();
    let ready = |call: &str, risk: u8, claimed_until: Option<time::OffsetDateTime>| {
        let at = now - time::Duration::hours(1);
        let mut presale = registered_presale(&catalog, &unique(call), None, at);
        presale.transition(PresaleAction::AttachRecording, at).expect("ready");
        presale.risk_score = Some(risk);
        if let Some(until) = claimed_until {
            review::claim(
                &mut presale,
                "val-q",
                until - time::Duration::minutes(10),
                time::Duration::minutes(10),
            )
            .expect("claim");
        }
        presale
    };
    let waiting = ready("call-waiting", 10, None);
    let lapsed = ready("call-lapsed", 90, Some(now - time::Duration::minutes(1)));
    let live = ready("call-live", 90, Some(now + time::Duration::minutes(5)));
    for presale in [&waiting, &lapsed, &live] {
        let audit = AuditEntry::presale(presale, now, &Actor::new("agent-7", "agent"), "CREATED").seal(GENESIS_HASH);
        store.create(presale, &audit).await.expect("create");
    }
    let ids = |entries: Vec<backoffice_store::presales::QueueEntry>| {
        entries
            .into_iter()
            .map(|e| e.presale_id.to_string())
            .collect::<Vec<_>>()
    };
    let offered = ids(store.review_queue(&client, now, 25).await.expect("queue"));
    assert_eq!(offered, vec![waiting.id.to_string(), lapsed.id.to_string()]);
    let short = ids(store.review_queue(&client, now, 1).await.expect("queue"));
    assert_eq!(short, vec![waiting.id.to_string()], "a claim never hides waiting work");
    let later = ids(store
        .review_queue(&client, now + time::Duration::minutes(6), 25)
        .await
        .expect("queue"));
    assert_eq!(later.len(), 3, "the live claim lapses in turn: {later:?}");
}
