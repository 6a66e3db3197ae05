//! Receivables end to end: a sale invoiced through the whole flow, then finance records its
//! payments through the API against the emulator; the invoice's account as DynamoDB holds it.

use aws_sdk_dynamodb::types::AttributeValue;
use e2e_tests::desk::desk;
use e2e_tests::{caller, unique};
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

/// `GET /invoices/{id}` as finance.
async fn file(d: &e2e_tests::desk::Desk, invoice_id: &str) -> Value {
    let finance = caller("fin-1", "finance", &[&d.client]);
    let reply = d
        .env
        .send(d.env.as_caller(&finance, "GET", &format!("/invoices/{invoice_id}")))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// The invoice's file once `done` holds of it.
async fn wait_file(d: &e2e_tests::desk::Desk, invoice_id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    loop {
        let body = file(d, invoice_id).await;
        if done(&body) {
            return body;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "{invoice_id}: {what} never happened: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
}

fn amount(v: &Value) -> i64 {
    minor(v["amount"].as_str().expect("an amount"))
}

fn rfc3339_minutes_ago(minutes: i64) -> String {
    (time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// The "done when": a sale to an invoice, a partial and a final payment with a partial
/// credit note between them; a returned shipment credited in full; cash collected on delivery;
/// and an ageing that reconciles with issued − credited − paid, to the cent.
#[tokio::test]
async fn payments_credit_notes_a_return_and_cash_on_delivery_reconcile_with_the_ageing() {
    let d = desk().await;
    let finance = caller("fin-1", "finance", &[&d.client]);
    let val = d.validator("val-1");
    let mut sales = Vec::new();
    for _ in 0..3 {
        let (id, _) = d.ready_presale(12).await;
        sales.push(d.approve(&val, &id).await);
    }
    let mut invoices = Vec::new();
    for sale in &sales {
        let invoice = d.wait_invoice(sale).await;
        invoices.push(invoice["invoice_id"].as_str().expect("id").to_owned());
    }
    let (paid, returned, collected) = (&invoices[0], &invoices[1], &invoices[2]);

    // 1. A partial payment, a partial credit note (one unit of line 1), then the rest.
    let pay = |invoice: &str, body: Value| {
        d.env.send(
            d.env
                .as_caller(&finance, "POST", &format!("/invoices/{invoice}/payments"))
                .json(&body),
        )
    };
    let first = pay(paid, payment("30.00", "TRANSFER", "OP-1")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let credit = |invoice: &str, body: Value, key: &str| {
        d.env.send(
            d.env
                .as_caller(&finance, "POST", &format!("/invoices/{invoice}/credit-notes"))
                .header("Idempotency-Key", key)
                .json(&body),
        )
    };
    let one_unit =
        json!({"reason": "07", "description": "Devolución de una unidad", "lines": [{"line": 1, "quantity": 1}]});
    let asked = credit(paid, one_unit.clone(), "cn-1").await;
    assert_eq!(asked.status, 202, "{:?}", asked.body);
    let retried = credit(paid, one_unit, "cn-1").await;
    assert_eq!(
        (retried.status, &retried.body),
        (202, &asked.body),
        "a retry asks for nothing new"
    );
    let noted = wait_file(&d, paid, "the partial credit note, printed and e-mailed", |f| {
        f["credit_notes"][0]["electronic_status"] == "ACCEPTED" && f["credit_notes"][0]["email_status"] == "SENT"
    })
    .await;
    assert_eq!(noted["credit_notes"].as_array().map(Vec::len), Some(1));
    let note_pdf = noted["credit_notes"][0]["links"]["pdf"]
        .as_str()
        .expect("the note's PDF link");
    let pdf = reqwest::get(note_pdf).await.expect("download the note's PDF");
    assert_eq!(pdf.status(), 200);
    assert!(pdf.bytes().await.expect("pdf").starts_with(b"%PDF"));
    assert_eq!(noted["collection_status"], "PARTIALLY_PAID");
    assert_eq!(
        amount(&noted["outstanding"]),
        amount(&noted["total"]) - amount(&noted["credited"]) - 3_000
    );
    assert!(
        noted["links"]["pdf"]
            .as_str()
            .is_some_and(|l| l.contains("X-Amz-Signature")),
        "{noted}"
    );
    let xml = reqwest::get(noted["links"]["xml"].as_str().expect("xml link"))
        .await
        .expect("download");
    assert_eq!(xml.status(), 200);
    assert!(xml.text().await.expect("xml").contains("<ds:Signature"));
    let rest = noted["outstanding"]["amount"].as_str().expect("rest").to_owned();
    let last = pay(paid, payment(&rest, "WALLET", "YAPE-1")).await;
    assert_eq!(
        (last.status, &last.body["collection_status"]),
        (201, &json!("PAID")),
        "{:?}",
        last.body
    );
    let nothing_owed = credit(paid, json!({"reason": "01", "description": "Anulación"}), "cn-2").await;
    assert_eq!(
        nothing_owed.status, 422,
        "a paid invoice takes no credit note: {:?}",
        nothing_owed.body
    );

    // 2. The courier returns the second sale's shipment (twice): one total credit note.
    let back = json!({"event_id": unique("ret"), "type": "RETURNED", "occurred_at": rfc3339_minutes_ago(1)});
    for _ in 0..2 {
        let reply = d.courier_report(&sales[1], &back).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let credited = wait_file(&d, returned, "the return's credit note", |f| {
        f["collection_status"] == "CREDITED" && f["credit_notes"][0]["electronic_status"] == "ACCEPTED"
    })
    .await;
    assert_eq!(credited["credit_notes"].as_array().map(Vec::len), Some(1));
    assert_eq!(credited["credit_notes"][0]["reason"], "06");
    assert_eq!(amount(&credited["outstanding"]), 0);

    // 3. The third is delivered with 10.00 collected in cash: a payment, recorded once.
    let delivered = json!({"event_id": unique("dlv"), "type": "DELIVERED", "occurred_at": rfc3339_minutes_ago(1),
                           "collected": {"amount": "10.00", "currency": "PEN"}});
    for _ in 0..2 {
        assert_eq!(d.courier_report(&sales[2], &delivered).await.status, 200);
    }
    let cod = wait_file(&d, collected, "the cash payment", |f| {
        f["payments"].as_array().is_some_and(|p| !p.is_empty())
    })
    .await;
    assert_eq!(cod["payments"].as_array().map(Vec::len), Some(1));
    assert_eq!(cod["payments"][0]["method"], "CASH_ON_DELIVERY");
    assert_eq!(cod["collection_status"], "PARTIALLY_PAID");

    // 4. The ageing: only the third is open; every bucket adds up; and it equals issued −
    //    credited − paid over the client's invoices, from each invoice's own file.
    let mut issued_minus = 0;
    for invoice in &invoices {
        let f = file(&d, invoice).await;
        issued_minus += amount(&f["total"]) - amount(&f["credited"]) - amount(&f["paid"]);
    }
    let ageing = d.env.send(d.env.as_caller(&finance, "GET", "/receivables/aging")).await;
    assert_eq!(ageing.status, 200, "{:?}", ageing.body);
    assert_eq!(ageing.body["open_invoices"], 1, "{}", ageing.body);
    let pen = &ageing.body["currencies"][0];
    let buckets = ["not_due", "days_1_30", "days_31_60", "days_61_90", "over_90"];
    let total = amount(&pen["total"]["total"]);
    assert_eq!(buckets.iter().map(|b| amount(&pen["total"][*b])).sum::<i64>(), total);
    assert_eq!(total, issued_minus);
    assert_eq!(total, amount(&cod["outstanding"]));
    assert_eq!(
        amount(&pen["total"]["not_due"]),
        total,
        "issued today: nothing is past due"
    );
    let by_buyer: i64 = pen["by_buyer"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| amount(&b["total"]))
        .sum();
    assert_eq!(by_buyer, total);

    // Nothing is overdue yet.
    let overdue = d
        .env
        .send(d.env.as_caller(&finance, "GET", "/invoices?overdue=true"))
        .await;
    assert_eq!(overdue.status, 200, "{:?}", overdue.body);
    assert_eq!(overdue.body["items"].as_array().map(Vec::len), Some(0));
}
