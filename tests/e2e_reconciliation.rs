//! Reconciliation against the emulator, through the local gateway: approved sales written
//! through the store an hour and more ago, one without a shipment, one shipped but never
//! invoiced, one shipped and invoiced. The scheduled function (invoked as the schedule would)
//! reports exactly the first two, by id, in its result and in its log, and publishes the counts
//! as an EMF line.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::presale::{Presale, PresaleStatus};
use backoffice_domain::review::{Decision, DecisionKind};
use backoffice_domain::testing::{campaign_catalog, registered_presale};
use backoffice_store::presales::{DynamoPresaleStore, PresaleWrite};
use e2e_tests::{TestEnv, env, unique};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

/// A pre-sale of `client` registered `created_ago` before now and approved `approved_ago`
/// before now, stored as presale-review stores an approval.
async fn approved_sale(env: &TestEnv, client: &str, created_ago: Duration, approved_ago: Duration) -> Presale {
    let store = DynamoPresaleStore::new(env.dynamodb.clone(), env.table("PresalesTable"));
    let catalog = campaign_catalog(&unique("recon-camp"), client);
    let now = OffsetDateTime::now_utc();
    let mut presale = registered_presale(&catalog, &unique("call"), None, now - created_ago);
    presale.status = PresaleStatus::Approved;
    presale.decision = Some(Decision {
        kind: DecisionKind::Approve,
        by: "val-9".into(),
        at: now - approved_ago,
        reasons: vec![],
        comment: None,
        override_reason: None,
        review_secs: 60,
    });
    presale.updated_at = now - approved_ago;
    let audit = AuditEntry::presale(
        &presale,
        now - approved_ago,
        &Actor::new("val-9", "validator"),
        "APPROVED",
    )
    .seal(GENESIS_HASH);
    store
        .create(&presale, &audit)
        .await
        .expect("store the approved pre-sale");
    presale
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// An item as the shipments and invoices stores key them (the reconciliation reads only keys
/// and the shipment's creation time).
async fn put(env: &TestEnv, table: &str, item: Value) {
    let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(item).expect("item");
    env.dynamodb
        .put_item()
        .table_name(env.table(table))
        .set_item(Some(item))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put into {table}: {e:?}"));
}

/// Invoke the function as its schedule does; its result.
async fn reconcile(env: &TestEnv) -> Value {
    let reply = env
        .send(
            env.request("POST", "/_local/functions/ReconciliationFunction/invoke")
                .json(&json!({"source": "aws.scheduler"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// The JSON lines the function's processes wrote.
fn log_lines(env: &TestEnv) -> Vec<Value> {
    let path = env.info.log_dir.join("ReconciliationFunction.log");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test]
async fn approved_sales_without_a_shipment_or_an_invoice_are_reported_by_id() {
    let env = env().await;
    let client = unique("recon");
    let now = OffsetDateTime::now_utc();

    let unshipped = approved_sale(&env, &client, Duration::hours(2), Duration::minutes(90)).await;
    let unbilled = approved_sale(&env, &client, Duration::hours(3), Duration::hours(2)).await;
    let done = approved_sale(&env, &client, Duration::hours(3), Duration::hours(2)).await;
    let recent = approved_sale(&env, &client, Duration::minutes(20), Duration::minutes(10)).await;
    for sale in [&unbilled, &done] {
        put(
            &env,
            "ShipmentsTable",
            json!({"pk": format!("SHIPMENT#SH-S-{}", sale.id), "sk": "META",
                   "created_at": rfc3339(now - Duration::minutes(100)), "client_id": client}),
        )
        .await;
    }
    put(
        &env,
        "InvoicesTable",
        json!({"pk": format!("SALE#S-{}", done.id), "sk": "INVOICE", "invoice_id": "B001-00000001", "client_id": client}),
    )
    .await;

    let result = reconcile(&env).await;
    assert!(result["checked"].as_u64().is_some_and(|n| n >= 3), "{result}");

    // Every finding is logged, whatever else the stack holds; the result lists the oldest 100.
    let ours: Vec<Value> = log_lines(&env)
        .into_iter()
        .filter(|line| line["client_id"] == client.as_str())
        .collect();
    let found: Vec<(String, String)> = ours
        .iter()
        .map(|line| {
            assert_eq!(line["level"], "WARN", "{line}");
            (
                line["check"].as_str().unwrap_or_default().to_owned(),
                line["presale_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("shipped_without_invoice".to_owned(), unbilled.id.to_string()),
            ("approved_without_shipment".to_owned(), unshipped.id.to_string()),
        ],
        "only the late ones, oldest wait first: {ours:?}"
    );
    let unbilled_line = ours
        .iter()
        .find(|l| l["check"] == "shipped_without_invoice")
        .expect("line");
    assert_eq!(unbilled_line["shipment_id"], format!("SH-S-{}", unbilled.id));
    assert_eq!(unbilled_line["sale_id"], format!("S-{}", unbilled.id));
    let text = serde_json::to_string(&ours).expect("json");
    for never in [
        recent.id.to_string(),
        done.id.to_string(),
        "45678912".to_owned(),
        "Ana".to_owned(),
    ] {
        assert!(!text.contains(&never), "{never} must not be reported or logged: {text}");
    }

    let listed: Vec<&Value> = result["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["client_id"] == client.as_str())
        .collect();
    if result["not_listed"] == 0 {
        assert_eq!(listed.len(), 2, "{result}");
    }
    for finding in listed {
        let id = finding["presale_id"].as_str().expect("id");
        assert!(id == unshipped.id.as_str() || id == unbilled.id.as_str(), "{finding}");
    }
    assert!(
        result["approved_without_shipment"].as_u64().is_some_and(|n| n >= 1),
        "{result}"
    );
    assert!(
        result["shipped_without_invoice"].as_u64().is_some_and(|n| n >= 1),
        "{result}"
    );

    // The counts went out as an Embedded Metric Format document, on a line of its own (beside
    // the invocation's own metrics document).
    let emf = log_lines(&env)
        .into_iter()
        .rev()
        .find(|line| line.get("_aws").is_some() && line.get("ApprovedSalesWithoutShipment").is_some())
        .expect("an EMF line");
    let directive = &emf["_aws"]["CloudWatchMetrics"][0];
    assert!(
        directive["Namespace"]
            .as_str()
            .is_some_and(|ns| ns.starts_with("Backoffice/")),
        "{emf}"
    );
    assert!(
        emf["ApprovedSalesWithoutShipment"].as_u64().is_some_and(|n| n >= 1),
        "{emf}"
    );
    assert!(emf["ShipmentsWithoutInvoice"].as_u64().is_some_and(|n| n >= 1), "{emf}");
}
