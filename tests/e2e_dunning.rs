//! Dunning end to end: a sale invoiced and e-mailed through the whole flow, then the daily
//! dunning invoked through the local gateway as its schedule would, for chosen days (the event's
//! `date`): one reminder the day after the due date, to the invoice's recipients and naming it
//! (the MIME read by Python's `email` module); none on a second run; a claim left by a dead run
//! waits for its lease, then is taken over and sent once; none once the invoice is paid.

use aws_sdk_dynamodb::types::AttributeValue;
use e2e_tests::desk::desk;
use e2e_tests::{TestEnv, caller};
use serde_json::{Value, json};
use time::{Date, Duration};

/// Invoke the dunning for `date` as the schedule does (plus the day); its report.
async fn dun(env: &TestEnv, date: Date) -> Value {
    let reply = env
        .send(
            env.request("POST", "/_local/functions/DunningFunction/invoke")
                .json(&json!({"date": date.to_string()})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// A message SES took, as Python's standard library reads it.
#[derive(Debug)]
struct Mail {
    destinations: Vec<String>,
    message_id: String,
    subject: String,
    invoice_header: String,
    header_id: String,
    offset_header: String,
    body: String,
}

const READ_MIME: &str = r#"
import email, json, sys
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
part = m.get_body(preferencelist=("plain",))
print(json.dumps({"subject": str(m["subject"] or ""), "invoice": str(m["X-Invoice-Id"] or ""),
                  "message_id": str(m["Message-ID"] or ""),
                  "offset": str(m["X-Reminder-Offset"] or ""), "body": part.get_content() if part else ""}))
"#;

fn read_mime(raw: &str) -> Value {
    e2e_tests::python_json(READ_MIME, &[], raw.as_bytes())
}

/// The reminders (messages with an X-Reminder-Offset header) SES took for `client`'s
/// `invoice_id` (numbers repeat across clients: the Message-ID names both).
async fn reminders_of(env: &TestEnv, client: &str, invoice_id: &str) -> Vec<Mail> {
    env.sent_emails()
        .await
        .into_iter()
        .filter(|(_, raw, _)| raw.contains("X-Reminder-Offset") && raw.contains(invoice_id))
        .map(|(destinations, raw, message_id)| {
            let read = read_mime(&raw);
            let text = |name: &str| read[name].as_str().unwrap_or_default().to_owned();
            Mail {
                destinations,
                message_id,
                subject: text("subject"),
                invoice_header: text("invoice"),
                header_id: text("message_id"),
                offset_header: text("offset"),
                body: text("body"),
            }
        })
        .filter(|mail| {
            mail.invoice_header == invoice_id
                && mail.header_id.starts_with(&format!("<reminder.{client}.{invoice_id}."))
        })
        .collect()
}

/// Bare addresses, each once, in order (the emulator lists the To header's `Name <address>`
/// beside the envelope's addresses).
fn sorted(list: Vec<String>) -> Vec<String> {
    let mut bare: Vec<String> = list
        .iter()
        .map(|a| match (a.rfind('<'), a.rfind('>')) {
            (Some(open), Some(close)) if open < close => a[open + 1..close].to_owned(),
            _ => a.trim().to_owned(),
        })
        .collect();
    bare.sort();
    bare.dedup();
    bare
}

#[tokio::test]
async fn an_unpaid_invoice_is_reminded_once_per_offset_and_a_paid_one_never() {
    let d = desk().await;
    // The client directory the dunning visits (operations add a client there with its CONFIG).
    d.env
        .dynamodb
        .put_item()
        .table_name(d.env.table("ConfigTable"))
        .item("pk", AttributeValue::S("CLIENTS".into()))
        .item("sk", AttributeValue::S(format!("CLIENT#{}", d.client)))
        .item("client_id", AttributeValue::S(d.client.clone()))
        .send()
        .await
        .expect("directory entry");
    let (id, _) = d.ready_presale(20).await;
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let invoice = d.wait_invoice(&sale_id).await;
    let invoice_id = invoice["invoice_id"].as_str().expect("id").to_owned();
    let due = Date::parse(
        invoice["due_date"].as_str().expect("due date"),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .expect("a date");
    let recipients: Vec<String> = invoice["email"]["recipients"]
        .as_array()
        .expect("the invoice e-mail's recipients")
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    assert!(!recipients.is_empty());
    assert!(reminders_of(&d.env, &d.client, &invoice_id).await.is_empty());

    // The schedule's own tick (`{}`): today in Lima, a month before the due date, nothing is due.
    let tick = d
        .env
        .send(
            d.env
                .request("POST", "/_local/functions/DunningFunction/invoke")
                .json(&json!({})),
        )
        .await;
    assert_eq!(tick.status, 200, "{:?}", tick.body);
    assert!(
        tick.body["clients"].as_u64().is_some_and(|n| n >= 2),
        "the seed's and this desk's: {}",
        tick.body
    );
    assert!(reminders_of(&d.env, &d.client, &invoice_id).await.is_empty());

    // The day after the due date: the +1 reminder, once.
    let first = dun(&d.env, due + Duration::days(1)).await;
    assert!(
        first["reminders"].as_array().is_some_and(|r| r
            .iter()
            .any(|r| r["invoice_id"] == invoice_id.as_str() && r["offset"] == 1)),
        "{first}"
    );
    let mails = reminders_of(&d.env, &d.client, &invoice_id).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(sorted(mail.destinations.clone()), sorted(recipients.clone()));
    assert!(
        mail.subject.contains(&invoice_id) && mail.subject.contains("venció ayer"),
        "{}",
        mail.subject
    );
    assert_eq!(mail.offset_header, "+001");
    assert!(mail.body.contains("Saldo pendiente: PEN "), "{}", mail.body);

    // Recorded on the invoice: its partition holds the reminder with the message SES took.
    let items = d
        .env
        .partition("InvoicesTable", &format!("INVOICE#{}#{invoice_id}", d.client))
        .await;
    let reminder = items
        .iter()
        .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("REMINDER#+001"))
        .expect("the reminder item");
    let attribute = |name: &str| reminder.get(name).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(attribute("reminder_state").as_deref(), Some("SENT"));
    assert_eq!(attribute("message_id"), Some(mail.message_id.clone()));

    // A second run the same day sends nothing more.
    let again = dun(&d.env, due + Duration::days(1)).await;
    assert!(again["already_done"].as_u64().is_some_and(|n| n >= 1), "{again}");
    assert_eq!(reminders_of(&d.env, &d.client, &invoice_id).await.len(), 1);

    // A run that died after claiming the +15 reminder: while its lease runs nobody sends it;
    // once the lease is over, the next run takes the claim over and sends it, once.
    let pk = format!("INVOICE#{}#{invoice_id}", d.client);
    let nanos = |at: time::OffsetDateTime| AttributeValue::N(at.unix_timestamp_nanos().to_string());
    let day_15 = due + Duration::days(15);
    let dead_claim = |lease_until: time::OffsetDateTime| {
        d.env
            .dynamodb
            .put_item()
            .table_name(d.env.table("InvoicesTable"))
            .item("pk", AttributeValue::S(pk.clone()))
            .item("sk", AttributeValue::S("REMINDER#+015".into()))
            .item("client_id", AttributeValue::S(d.client.clone()))
            .item("invoice_id", AttributeValue::S(invoice_id.clone()))
            .item("offset_days", AttributeValue::N("15".into()))
            .item("due_date", AttributeValue::S(due.to_string()))
            .item("run_date", AttributeValue::S(day_15.to_string()))
            .item("reminder_state", AttributeValue::S("CLAIMED".into()))
            .item("lease_until", nanos(lease_until))
            .item("claimed_at", AttributeValue::S("2026-12-01T13:00:00Z".into()))
            .item("attempts", AttributeValue::N("1".into()))
            .send()
    };
    let now = time::OffsetDateTime::now_utc();
    dead_claim(now + Duration::hours(1)).await.expect("a live claim");
    let busy = dun(&d.env, day_15).await;
    assert!(busy["busy"].as_u64().is_some_and(|n| n >= 1), "{busy}");
    assert_eq!(reminders_of(&d.env, &d.client, &invoice_id).await.len(), 1);
    dead_claim(now - Duration::minutes(1))
        .await
        .expect("a claim whose lease is over");
    let retaken = dun(&d.env, day_15).await;
    assert!(
        retaken["reminders"].as_array().is_some_and(|r| r
            .iter()
            .any(|r| r["invoice_id"] == invoice_id.as_str() && r["offset"] == 15)),
        "{retaken}"
    );
    let mails = reminders_of(&d.env, &d.client, &invoice_id).await;
    assert_eq!(
        mails.iter().map(|m| m.offset_header.as_str()).collect::<Vec<_>>(),
        vec!["+001", "+015"]
    );
    let items = d.env.partition("InvoicesTable", &pk).await;
    let claim = items
        .iter()
        .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("REMINDER#+015"))
        .expect("the +15 reminder");
    assert_eq!(
        (
            claim
                .get("reminder_state")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            claim.get("attempts").and_then(|v| v.as_n().ok()).map(String::as_str)
        ),
        (Some("SENT"), Some("2"))
    );

    // Paid in full: the +30 reminder never goes.
    let total = invoice["totals"]["total"]["amount"].as_str().expect("total");
    let finance = caller("fin-1", "finance", &[&d.client]);
    let paid_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("now");
    let paid = d
        .env
        .send(
            d.env
                .as_caller(&finance, "POST", &format!("/invoices/{invoice_id}/payments"))
                .json(&json!({"amount": total, "currency": "PEN", "method": "TRANSFER",
                              "reference": "OP-DUN-1", "paid_at": paid_at})),
        )
        .await;
    assert_eq!(
        (paid.status, paid.body["collection_status"].as_str()),
        (201, Some("PAID")),
        "{:?}",
        paid.body
    );
    dun(&d.env, due + Duration::days(30)).await;
    assert_eq!(
        reminders_of(&d.env, &d.client, &invoice_id).await.len(),
        2,
        "no reminder once paid"
    );
    let items = d
        .env
        .partition("InvoicesTable", &format!("INVOICE#{}#{invoice_id}", d.client))
        .await;
    assert!(
        !items
            .iter()
            .any(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("REMINDER#+030")),
        "nothing claimed for a paid invoice"
    );
}
