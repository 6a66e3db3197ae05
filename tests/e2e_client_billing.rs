//! Client billing end to end (issue 17): a client company with two campaigns under different
//! models (per verified sale; per effective contact and talk hour); two consecutive monthly
//! closes through the API, a late contact billed by the second, the evidence CSV read back and
//! summed here, the closes idempotent, and this month's preview showing today's verified sales.
//!
//! Against a running stack: `BACKOFFICE_STACK=$PWD/.local/<profile>/stack.json cargo test -p
//! e2e-tests --test e2e_client_billing`.

use aws_sdk_dynamodb::types::AttributeValue;
use e2e_tests::desk::desk;
use e2e_tests::{Caller, TestEnv, caller};
use serde_json::{Value, json};
use time::{Date, Duration, OffsetDateTime, UtcOffset};

const LIMA: UtcOffset = match UtcOffset::from_hms(-5, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("a valid offset"),
};

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn lima(day: Date, hour: u8) -> OffsetDateTime {
    day.with_hms(hour, 0, 0).expect("a time").assume_offset(LIMA)
}

fn month_of(day: Date) -> String {
    format!("{:04}-{:02}", day.year(), u8::from(day.month()))
}

/// The first day of the month before `day`'s.
fn month_before(day: Date) -> Date {
    day.replace_day(1)
        .ok()
        .and_then(|first| first.previous_day())
        .and_then(|last| last.replace_day(1).ok())
        .expect("a month")
}

/// Per verified sale in the sales campaign; per effective contact and talk hour in the other.
fn contract(client: &str, sales: &str, service: &str) -> Value {
    let pen = |amount: &str| json!({"unit_price": {"amount": amount, "currency": "PEN"}});
    json!({
        "client_id": client,
        "versions": [{
            "version": 1, "valid_from": "2026-01-01", "currency": "PEN", "payment_terms_days": 30,
            "campaigns": {
                sales: {"verified_sale": {"price": pen("30.00")}},
                service: {"effective_contact": pen("1.50"), "talk_hour": pen("12.00")}
            }
        }]
    })
}

async fn set_contract(env: &TestEnv, client: &str, contract: &Value) {
    let map: std::collections::HashMap<String, AttributeValue> =
        serde_dynamo::to_item(contract.clone()).expect("a contract item");
    env.dynamodb
        .update_item()
        .table_name(env.table("ConfigTable"))
        .key("pk", AttributeValue::S(format!("CLIENT#{client}")))
        .key("sk", AttributeValue::S("CONFIG".into()))
        .update_expression("SET #c = :c")
        .expression_attribute_names("#c", "contract")
        .expression_attribute_values(":c", AttributeValue::M(map))
        .send()
        .await
        .expect("contract set");
}

/// One contact of the service campaign; its talk seconds.
async fn contact(
    env: &TestEnv,
    agent: &Caller,
    campaign: &str,
    external: &str,
    code: &str,
    at: OffsetDateTime,
    talk: u32,
) {
    let body = json!({
        "channel": "call", "direction": "outbound", "external_id": external,
        "customer_key": format!("phone:+5198{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000),
        "campaign_id": campaign, "disposition": code,
        "started_at": rfc3339(at), "ended_at": rfc3339(at + Duration::minutes(60)),
        "talk_seconds": talk,
    });
    let reply = env.send(env.as_caller(agent, "POST", "/contacts").json(&body)).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

/// The evidence CSV behind a run's link, as rows of (column → value).
async fn evidence(env: &TestEnv, run: &Value) -> Vec<std::collections::BTreeMap<String, String>> {
    let url = run["evidence_url"].as_str().expect("an evidence link");
    let text = env
        .http
        .get(url)
        .send()
        .await
        .expect("downloaded")
        .text()
        .await
        .expect("text");
    let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().expect("a header").iter().map(str::to_owned).collect();
    reader
        .records()
        .map(|record| {
            let record = record.expect("a row");
            header.iter().cloned().zip(record.iter().map(str::to_owned)).collect()
        })
        .collect()
}

/// Σ of the `importe` column, in céntimos.
fn cents(rows: &[std::collections::BTreeMap<String, String>]) -> i64 {
    rows.iter()
        .map(|row| {
            let (whole, fraction) = row["importe"].split_once('.').expect("a decimal amount");
            let sign = if whole.starts_with('-') { -1 } else { 1 };
            sign * (whole.trim_start_matches('-').parse::<i64>().expect("digits") * 100
                + fraction.parse::<i64>().expect("digits"))
        })
        .sum()
}

fn as_cents(amount: &Value) -> i64 {
    let raw = amount.as_str().expect("an amount");
    let (whole, fraction) = raw.split_once('.').expect("a decimal amount");
    whole.parse::<i64>().expect("digits") * 100 + fraction.parse::<i64>().expect("digits")
}

#[tokio::test]
async fn two_consecutive_months_close_with_a_late_contact_and_evidence_that_adds_up() {
    let desk = desk().await;
    let env = &desk.env;
    let client = desk.client.clone();
    let sales_campaign = desk.campaign.clone();
    let service = format!("{}-svc", desk.campaign);
    env.seed_campaign(&client, &service).await;
    set_contract(env, &client, &contract(&client, &sales_campaign, &service)).await;
    let admin = caller("admin-1", "admin", &[&client]);
    let finance = caller("fin-1", "finance", &[&client]);
    let agent = caller("agent-7", "agent", &[&client]);

    let today = OffsetDateTime::now_utc().to_offset(LIMA).date();
    let last = month_before(today);
    let before_last = month_before(last);
    let (first_month, second_month) = (month_of(before_last), month_of(last));

    // The first month: two effective contacts (20 and 40 min of talk) and one not effective.
    contact(
        env,
        &agent,
        &service,
        "m1-a",
        "NOT_INTERESTED",
        lima(before_last + Duration::days(3), 10),
        1200,
    )
    .await;
    contact(
        env,
        &agent,
        &service,
        "m1-b",
        "ALREADY_CUSTOMER",
        lima(before_last + Duration::days(9), 19),
        2400,
    )
    .await;
    contact(
        env,
        &agent,
        &service,
        "m1-c",
        "MOVED",
        lima(before_last + Duration::days(9), 20),
        300,
    )
    .await;
    // 2 × 1.50 + (1200 + 2400 + 300) s × 12.00 / 3600 s = 3.00 + 13.00.
    let first_expected = 300 + 1300;

    let close = |month: &str| env.as_caller(&admin, "POST", &format!("/billing/runs?client={client}&month={month}"));
    let first = env.send(close(&first_month)).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(as_cents(&first.body["charges"]), first_expected, "{:?}", first.body);
    let rows = evidence(env, &first.body).await;
    assert_eq!(rows.len(), 5, "two contacts and three talk times: {rows:?}");
    assert_eq!(cents(&rows), first_expected, "the evidence adds up to the run");
    let again = env.send(close(&first_month)).await;
    assert_eq!(
        (again.status, again.body["closed_at"].clone()),
        (200, first.body["closed_at"].clone())
    );

    // After it closed: a late contact of the first month, and the second month's own.
    contact(
        env,
        &agent,
        &service,
        "m1-late",
        "NOT_INTERESTED",
        lima(before_last + Duration::days(20), 11),
        0,
    )
    .await;
    contact(
        env,
        &agent,
        &service,
        "m2-a",
        "NOT_INTERESTED",
        lima(last + Duration::days(1), 9),
        1800,
    )
    .await;
    let second_expected = 150 + 150 + 600;
    let second = env.send(close(&second_month)).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_eq!(as_cents(&second.body["charges"]), second_expected, "{:?}", second.body);
    let rows = evidence(env, &second.body).await;
    assert_eq!(cents(&rows), second_expected);
    let late: Vec<&str> = rows
        .iter()
        .filter(|row| row["tardio"] == "si")
        .map(|row| row["contacto"].as_str())
        .collect();
    assert_eq!(late.len(), 1, "{rows:?}");
    // Nothing billed twice: every event key once across both months.
    let mut keys: Vec<String> = evidence(env, &first.body)
        .await
        .into_iter()
        .chain(rows)
        .map(|row| row["clave"].clone())
        .collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total);

    // The call center invoices the second run (ADR 0028): its own factura, the run's charges
    // net with IGV 18 % on top, accepted by the SUNAT stand-in, e-mailed to the client's
    // finance address with the evidence CSV attached.
    let run_id = format!("{client}-{second_month}");
    assert_eq!(second.body["invoice_request"], run_id.as_str());
    let invoice = wait_run_invoice(env, &finance, &run_id).await;
    let invoice_id = invoice["id"].as_str().expect("an invoice id").to_owned();
    assert!(invoice_id.starts_with("F900-"), "the call center's series: {invoice}");
    assert_eq!(invoice["status"], "ACCEPTED", "{invoice}");
    assert_eq!(as_cents(&invoice["subtotal"]), second_expected, "{invoice}");
    assert_eq!(
        as_cents(&invoice["subtotal"]),
        cents(&evidence(env, &second.body).await)
    );
    let igv = (second_expected * 18 + 50) / 100;
    assert_eq!(as_cents(&invoice["tax"]), igv, "{invoice}");
    assert_eq!(as_cents(&invoice["total"]), second_expected + igv, "{invoice}");
    let emails = env.sent_emails().await;
    let (destinations, raw, _) = emails
        .iter()
        .find(|(_, raw, _)| raw.contains(&format!("X-Invoice-Id: {invoice_id}")))
        .expect("the run's invoice e-mail");
    assert!(
        destinations.contains(&e2e_tests::finance_email(&client)),
        "{destinations:?}"
    );
    let attachments = python_attachments(raw);
    let csv_name = format!("evidencia-{run_id}.csv");
    let (_, kind, csv) = attachments
        .iter()
        .find(|(name, _, _)| *name == csv_name)
        .unwrap_or_else(|| panic!("{csv_name} attached: {attachments:?}"));
    assert_eq!(kind, "text/csv");
    let attached = csv.strip_prefix('\u{feff}').unwrap_or(csv);
    let mut reader = csv::Reader::from_reader(attached.as_bytes());
    let header: Vec<String> = reader.headers().expect("a header").iter().map(str::to_owned).collect();
    let rows: Vec<std::collections::BTreeMap<String, String>> = reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.expect("a row").iter().map(str::to_owned))
                .collect()
        })
        .collect();
    assert_eq!(
        cents(&rows),
        second_expected,
        "the attached evidence adds up to the invoice"
    );
    let pdf = format!("{invoice_id}.pdf");
    assert!(attachments.iter().any(|(n, _, _)| *n == pdf), "{pdf}: {attachments:?}");

    // Finance reads both, newest first; this month is a preview with today's verified sale.
    let list = env
        .send(env.as_caller(&finance, "GET", &format!("/billing/runs?client={client}")))
        .await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let months: Vec<&str> = list.body["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["month"].as_str())
        .collect();
    assert_eq!(months, vec![second_month.as_str(), first_month.as_str()]);
    let validator = desk.validator("val-1");
    let (presale, _) = desk.ready_presale(40).await;
    desk.approve(&validator, &presale).await;
    let preview = env
        .send(env.as_caller(&finance, "GET", &format!("/billing/runs/{client}-{}", month_of(today))))
        .await;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    assert_eq!(preview.body["status"], "PREVIEW");
    assert_eq!(
        as_cents(&preview.body["charges"]),
        3000,
        "one verified sale at 30.00: {:?}",
        preview.body
    );
    let open = env.send(close(&month_of(today))).await;
    assert_eq!((open.status, open.body["field"].as_str()), (400, Some("month")));
}

/// The run's invoice (`GET /billing/runs/{id}`'s `invoice`) once accepted and e-mailed.
async fn wait_run_invoice(env: &TestEnv, finance: &Caller, run_id: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let run = env
            .send(env.as_caller(finance, "GET", &format!("/billing/runs/{run_id}")))
            .await;
        assert_eq!(run.status, 200, "{:?}", run.body);
        let invoice = &run.body["invoice"];
        if invoice["emailed"] == true {
            return invoice.clone();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "run {run_id} was never invoiced and e-mailed: {:?}",
            run.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A message's attachments as Python's standard `email` package reads them: (name, type, text).
fn python_attachments(raw: &str) -> Vec<(String, String, String)> {
    const READ: &str = r#"
import email, json, sys
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
print(json.dumps([[p.get_filename(), p.get_content_type(),
                   p.get_payload(decode=True).decode("utf-8", "replace")] for p in m.iter_attachments()]))
"#;
    e2e_tests::python_json(READ, &[], raw.as_bytes())
}
