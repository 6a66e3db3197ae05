//! Client billing end to end (issue 17): a client company with two campaigns under different
//! models (per verified sale; per effective contact and talk hour); two consecutive monthly
//! closes through the API, a late contact billed by the second, a sale billed by the first and
//! returned since reversed by the second with a credit note on the first's invoice, the
//! evidence CSV read back and summed here against the invoice and the note, the closes
//! idempotent, and this month's preview showing today's verified sales.
//!
//! Approvals carry the server's clock, so the two sales of the first month are approved now
//! and their decision instant is then moved into that month in the table (what a sale
//! approved then would hold).
//!
//! Against a running stack: `BACKOFFICE_STACK=$PWD/.local/<profile>/stack.json cargo test -p
//! e2e-tests --test e2e_client_billing`.

use aws_sdk_dynamodb::types::AttributeValue;
use e2e_tests::desk::desk;
use e2e_tests::{Caller, Reply, TestEnv, caller};
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

/// Replace the client's contract through the API, as an admin; its reply.
async fn put_contract(env: &TestEnv, admin: &Caller, client: &str, contract: &Value, if_match: Option<&str>) -> Reply {
    let mut request = env
        .as_caller(admin, "PUT", &format!("/clients/{client}/contract"))
        .json(contract);
    if let Some(revision) = if_match {
        request = request.header("If-Match", format!("\"{revision}\""));
    }
    env.send(request).await
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

/// Move an approved pre-sale's decision to `at`, as if it had been approved then.
async fn approved_on(env: &TestEnv, presale: &str, at: OffsetDateTime) {
    env.dynamodb
        .update_item()
        .table_name(env.table("PresalesTable"))
        .key("pk", AttributeValue::S(format!("PRESALE#{presale}")))
        .key("sk", AttributeValue::S("META".into()))
        .update_expression("SET #d.#at = :at")
        .condition_expression("#s = :approved")
        .expression_attribute_names("#d", "decision")
        .expression_attribute_names("#at", "at")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":at", AttributeValue::S(rfc3339(at.to_offset(UtcOffset::UTC))))
        .expression_attribute_values(":approved", AttributeValue::S("APPROVED".into()))
        .send()
        .await
        .expect("decision moved");
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
    let admin = caller("admin-1", "admin", &[&client]);
    // The seeded contract (revision 0) replaced through the API by this test's.
    let terms = contract(&client, &sales_campaign, &service);
    let written = put_contract(env, &admin, &client, &terms, None).await;
    assert_eq!(
        (written.status, written.body["revision"].as_u64()),
        (200, Some(1)),
        "{:?}",
        written.body
    );
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
    // Two verified sales of the sales campaign, approved in the first month.
    let validator = desk.validator("val-1");
    let mut first_sales = Vec::new();
    for day in [5, 6] {
        let (presale, _) = desk.ready_presale(40).await;
        let sale = desk.approve(&validator, &presale).await;
        approved_on(env, &presale, lima(before_last + Duration::days(day), 15)).await;
        first_sales.push((presale, sale));
    }
    // 2 × 1.50 + (1200 + 2400 + 300) s × 12.00 / 3600 s + 2 × 30.00 = 3.00 + 13.00 + 60.00.
    let first_expected = 300 + 1300 + 6000;

    let close = |month: &str| env.as_caller(&admin, "POST", &format!("/billing/runs?client={client}&month={month}"));
    let first = env.send(close(&first_month)).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(as_cents(&first.body["charges"]), first_expected, "{:?}", first.body);
    let rows = evidence(env, &first.body).await;
    assert_eq!(rows.len(), 7, "two contacts, three talk times and two sales: {rows:?}");
    assert_eq!(cents(&rows), first_expected, "the evidence adds up to the run");
    let again = env.send(close(&first_month)).await;
    assert_eq!(
        (again.status, again.body["closed_at"].clone()),
        (200, first.body["closed_at"].clone())
    );

    // The first month is billed: its terms stay. A new price for verified sales starts with a
    // second version from this month on (the month of the preview below), the first ending then.
    let mut repriced = terms.clone();
    repriced["versions"][0]["campaigns"][&sales_campaign]["verified_sale"]["price"]["unit_price"]["amount"] =
        json!("35.00");
    let refused = put_contract(env, &admin, &client, &repriced, Some("1")).await;
    assert_eq!(
        (refused.status, refused.body["errors"][0]["code"].as_str()),
        (422, Some("billed_version_changed")),
        "{:?}",
        refused.body
    );
    let this_month = today.replace_day(1).expect("a first day");
    let mut amended = terms.clone();
    amended["versions"][0]["valid_to"] = json!(this_month.to_string());
    let mut second_version = repriced["versions"][0].clone();
    second_version["version"] = json!(2);
    second_version["valid_from"] = json!(this_month.to_string());
    amended["versions"]
        .as_array_mut()
        .expect("versions")
        .push(second_version);
    let stale = put_contract(env, &admin, &client, &amended, Some("0")).await;
    assert_eq!(stale.status, 412, "{:?}", stale.body);
    let written = put_contract(env, &admin, &client, &amended, Some("1")).await;
    assert_eq!(
        (written.status, written.body["revision"].as_u64()),
        (200, Some(2)),
        "{:?}",
        written.body
    );
    let read = env
        .send(env.as_caller(&finance, "GET", &format!("/clients/{client}/contract")))
        .await;
    assert_eq!(
        (read.status, read.header("etag")),
        (200, Some("\"2\"")),
        "{:?}",
        read.body
    );

    // The first run's invoice is issued and accepted; then the customer of the first sale
    // returns it: finance credits that sale's own invoice in full.
    let first_run = format!("{client}-{first_month}");
    let first_invoice = wait_run_invoice(env, &finance, &first_run).await;
    let (returned_presale, returned_sale) = first_sales[0].clone();
    let sale_invoice = desk.wait_invoice(&returned_sale).await;
    let sale_invoice_id = sale_invoice["invoice_id"]
        .as_str()
        .expect("the sale's invoice")
        .to_owned();
    let credit = env
        .send(
            env.as_caller(
                &finance,
                "POST",
                &format!("/invoices/{sale_invoice_id}/credit-notes?client={client}"),
            )
            .header("Idempotency-Key", format!("return-{returned_sale}"))
            .json(&json!({"reason": "06", "description": "Devolución total del pedido"})),
        )
        .await;
    assert_eq!(credit.status, 202, "{:?}", credit.body);
    wait_credited_in_full(env, &finance, &client, &sale_invoice_id).await;
    let returned_line: String = rows
        .iter()
        .find(|row| row["preventa"] == returned_presale)
        .map(|row| row["linea"].clone())
        .expect("the returned sale's evidence row");

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
    assert_eq!(as_cents(&second.body["reversals"]), -3000, "{:?}", second.body);
    let rows = evidence(env, &second.body).await;
    let (reversals, charges): (Vec<_>, Vec<_>) = rows.iter().cloned().partition(|row| row["reversion"] == "si");
    assert_eq!(cents(&charges), second_expected);
    assert_eq!(
        cents(&reversals),
        -3000,
        "the returned sale, at what it was billed: {reversals:?}"
    );
    assert_eq!(reversals.len(), 1);
    assert_eq!(
        (
            reversals[0]["preventa"].as_str(),
            reversals[0]["mes_facturado"].as_str()
        ),
        (returned_presale.as_str(), first_month.as_str())
    );
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
        .chain(charges.iter().cloned())
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
    assert_eq!(as_cents(&invoice["subtotal"]), cents(&charges));
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
    let (attached_reversals, attached_charges): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|row| row["reversion"] == "si");
    assert_eq!(
        cents(&attached_reversals),
        -3000,
        "the reversal is in the attached evidence"
    );
    assert_eq!(
        cents(&attached_charges),
        second_expected,
        "the attached evidence's charges add up to the invoice"
    );
    let pdf = format!("{invoice_id}.pdf");
    assert!(attachments.iter().any(|(n, _, _)| *n == pdf), "{pdf}: {attachments:?}");

    // The return is credited on the first run's invoice: one unit of the line that billed it,
    // net of the evidence's reversal rows, IGV on top, accepted and e-mailed to the client.
    let note = wait_run_credit(env, &finance, &run_id).await;
    assert_eq!(note["invoice_id"], first_invoice["id"], "{note}");
    assert_eq!(as_cents(&note["subtotal"]), -cents(&reversals), "{note}");
    assert_eq!(as_cents(&note["tax"]), 540, "{note}");
    assert_eq!(as_cents(&note["total"]), 3540, "{note}");
    let run = env
        .send(env.as_caller(&finance, "GET", &format!("/billing/runs/{run_id}")))
        .await;
    let credited_lines = &run.body["credits"][0]["lines"];
    assert_eq!(
        credited_lines,
        &json!([{"line": returned_line.parse::<u32>().expect("a line number"), "quantity": 1}]),
        "{:?}",
        run.body
    );
    let note_id = note["id"].as_str().expect("a note id");
    let emails = env.sent_emails().await;
    let (destinations, raw, _) = emails
        .iter()
        .find(|(_, raw, _)| raw.contains(&format!("X-Credit-Note-Id: {note_id}")))
        .expect("the credit note's e-mail");
    assert!(
        destinations.contains(&e2e_tests::finance_email(&client)),
        "{destinations:?}"
    );
    let attachments = python_attachments(raw);
    assert!(
        attachments
            .iter()
            .any(|(n, kind, _)| *n == format!("{note_id}.pdf") && kind == "application/pdf"),
        "{attachments:?}"
    );
    // Closing the second month again asks for nothing more: one note per run credited.
    assert_eq!(env.send(close(&second_month)).await.status, 200);

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
    let (presale, _) = desk.ready_presale(40).await;
    desk.approve(&validator, &presale).await;
    let preview = env
        .send(env.as_caller(&finance, "GET", &format!("/billing/runs/{client}-{}", month_of(today))))
        .await;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    assert_eq!(preview.body["status"], "PREVIEW");
    assert_eq!(
        as_cents(&preview.body["charges"]),
        3500,
        "one verified sale at this month's version's 35.00: {:?}",
        preview.body
    );
    let open = env.send(close(&month_of(today))).await;
    assert_eq!((open.status, open.body["field"].as_str()), (400, Some("month")));
}

/// What `done` picks from `GET /billing/runs/{id}` once it is there (within 90 s).
async fn wait_run(
    env: &TestEnv,
    finance: &Caller,
    run_id: &str,
    what: &str,
    done: impl Fn(&Value) -> Option<Value>,
) -> Value {
    let started = std::time::Instant::now();
    loop {
        let run = env
            .send(env.as_caller(finance, "GET", &format!("/billing/runs/{run_id}")))
            .await;
        assert_eq!(run.status, 200, "{:?}", run.body);
        if let Some(found) = done(&run.body) {
            return found;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "run {run_id}: {what} never happened: {:?}",
            run.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The run's invoice (`GET /billing/runs/{id}`'s `invoice`) once e-mailed.
async fn wait_run_invoice(env: &TestEnv, finance: &Caller, run_id: &str) -> Value {
    wait_run(env, finance, run_id, "its invoice issued and e-mailed", |run| {
        (run["invoice"]["emailed"] == true).then(|| run["invoice"].clone())
    })
    .await
}

/// The credit note the run owes (its first), once accepted and e-mailed.
async fn wait_run_credit(env: &TestEnv, finance: &Caller, run_id: &str) -> Value {
    wait_run(env, finance, run_id, "its credit note accepted and e-mailed", |run| {
        let note = &run["credits"][0]["credit_note"];
        (note["emailed"] == true && note["status"] == "ACCEPTED").then(|| note.clone())
    })
    .await
}

/// Wait until the client's invoice is credited in full.
async fn wait_credited_in_full(env: &TestEnv, finance: &Caller, client: &str, invoice_id: &str) {
    let started = std::time::Instant::now();
    loop {
        let read = env
            .send(env.as_caller(finance, "GET", &format!("/invoices/{invoice_id}?client={client}")))
            .await;
        assert_eq!(read.status, 200, "{:?}", read.body);
        if read.body["credited"] == read.body["total"] {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "invoice {invoice_id} was never credited in full: {:?}",
            read.body
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
