//! Receivables end to end: a sale invoiced through the whole flow, then finance records its
//! payments through the API against the emulator; the invoice's account as DynamoDB holds it.

use aws_sdk_dynamodb::types::AttributeValue;
use e2e_tests::caller;
use e2e_tests::desk::desk;
use serde_json::{Value, json};

fn payment(amount: &str, method: &str, reference: &str) -> Value {
    json!({"amount": amount, "currency": "PEN", "method": method, "reference": reference,
           "paid_at": "2026-11-30T10:00:00-05:00"})
}

/// Minor units: `"179.80"` → 17980.
fn minor(amount: &str) -> i64 {
    let (units, cents) = amount.split_once('.').unwrap_or((amount, "0"));
    units.parse::<i64>().expect("units") * 100 + format!("{cents:0<2}")[..2].parse::<i64>().expect("cents")
}

#[tokio::test]
async fn finance_records_partial_payments_until_the_invoice_is_paid() {
    let d = desk().await;
    let (id, _) = d.ready_presale(20).await;
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let invoice = d.wait_invoice(&sale_id).await;
    let invoice_id = invoice["invoice_id"].as_str().expect("id").to_owned();
    let total = invoice["totals"]["total"]["amount"].as_str().expect("total").to_owned();
    let finance = caller("fin-1", "finance", &[&d.client]);
    let path = format!("/invoices/{invoice_id}/payments");
    let post = |body: Value, key: Option<&str>| {
        let mut request = d.env.as_caller(&finance, "POST", &path).json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        d.env.send(request)
    };

    let first = post(payment("50.00", "TRANSFER", "OP-77001"), Some("pay-1")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.body["collection_status"], "PARTIALLY_PAID");
    let replay = post(payment("50.00", "TRANSFER", "OP-77001"), Some("pay-1")).await;
    assert_eq!(
        (replay.status, &replay.body),
        (201, &first.body),
        "the key replays the answer"
    );
    let again = post(payment("50.00", "TRANSFER", "OP-77001"), None).await;
    assert_eq!((again.status, again.problem()), (409, "payment-already-recorded"));

    let over = post(payment(&total, "CARD", "AUTH-1"), None).await;
    assert_eq!(over.status, 422, "{:?}", over.body);
    assert_eq!(
        (
            over.body["errors"][0]["field"].as_str(),
            over.body["errors"][0]["code"].as_str()
        ),
        (Some("amount"), Some("overpayment"))
    );

    let rest = first.body["outstanding"]["amount"]
        .as_str()
        .expect("outstanding")
        .to_owned();
    assert_eq!(minor(&rest), minor(&total) - 5_000);
    let last = post(payment(&rest, "WALLET", "YAPE-991"), None).await;
    assert_eq!(last.status, 201, "{:?}", last.body);
    assert_eq!(last.body["collection_status"], "PAID");

    // What DynamoDB holds: two payments in the invoice's partition, the running total, the status.
    let table = d.env.table("InvoicesTable");
    let pk = format!("INVOICE#{}#{invoice_id}", d.client);
    let items = d
        .env
        .dynamodb
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk))
        .consistent_read(true)
        .send()
        .await
        .expect("query")
        .items
        .unwrap_or_default();
    let sks: Vec<&str> = items
        .iter()
        .filter_map(|i| i.get("sk")?.as_s().ok().map(String::as_str))
        .collect();
    assert!(
        sks.contains(&"PAYMENT#TRANSFER#OP-77001") && sks.contains(&"PAYMENT#WALLET#YAPE-991"),
        "{sks:?}"
    );
    assert_eq!(sks.iter().filter(|sk| sk.starts_with("PAYMENT#")).count(), 2);
    let meta = items
        .iter()
        .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("META"))
        .expect("the invoice");
    assert_eq!(
        meta.get("paid_minor").and_then(|v| v.as_n().ok()).map(String::as_str),
        Some(minor(&total).to_string().as_str())
    );
    assert_eq!(
        meta.get("collection_status")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("PAID")
    );

    let agent = d
        .env
        .send(
            d.env
                .as_caller(&d.agent, "POST", &path)
                .json(&payment("1.00", "CARD", "X")),
        )
        .await;
    assert_eq!(agent.status, 403, "an agent records no payment");
}
