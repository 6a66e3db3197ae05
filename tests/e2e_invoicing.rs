//! Invoicing end to end. One pre-sale goes the whole way of the mission: registration,
//! recording, review, dispatch, and an invoice whose PDF is in the invoices bucket and whose
//! e-mail the emulator's SES accepted, read back and parsed. And hundreds of invoices issued by
//! concurrent workers from duplicated messages take the numbers 1..N of their series, each
//! exactly once.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backoffice_domain::SystemClock;
use backoffice_domain::testing::invoice_request;
use backoffice_domain::wire;
use backoffice_edge::aws;
use backoffice_edge::mail::SesMailer;
use backoffice_edge::secrets::{CachedSecret, SecretsManagerSource};
use backoffice_store::config::DynamoCampaignDirectory;
use backoffice_store::documents::S3DocumentStore;
use backoffice_store::invoices::DynamoInvoiceStore;
use e2e_tests::desk::desk;
use e2e_tests::{TestEnv, env, finance_email, send_concurrently, unique};
use invoice_issue::sunat::{SecretIssuerKeys, SoapTaxAuthority};
use invoice_issue::{IssueError, Issuer, Sender, SeriesHeads};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// All the text of a PDF, page by page, as a reader extracts it.
fn pdf_text(bytes: &[u8]) -> String {
    let document = lopdf::Document::load_mem(bytes).expect("a PDF that parses");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    document.extract_text(&pages).expect("text of the PDF")
}

fn money(value: &Value) -> String {
    value["amount"].as_str().expect("an amount").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_presale_from_registration_to_an_emailed_invoice() {
    let d = desk().await;
    // Registered by the agent, recording uploaded by the dialer and analysed.
    let (id, _) = d.ready_presale(20).await;
    // Approved by a validator who is not the agent; dispatched by fulfillment.
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let shipment = d.wait_shipment(&sale_id).await;
    let shipping_cost: Value =
        serde_dynamo::from_attribute_value(shipment["plan"].as_m().expect("plan")["shipping_cost"].clone())
            .expect("shipping cost");
    // Invoiced, stored and e-mailed by invoice-issue.
    let invoice = d.wait_invoice(&sale_id).await;

    let invoice_id = invoice["invoice_id"].as_str().expect("invoice id").to_owned();
    assert_eq!(
        invoice_id, "B001-00000001",
        "a consumer (DNI) gets the client's first boleta"
    );
    assert_eq!(invoice["status"], "ISSUED");
    assert_eq!(invoice["kind"], "BOLETA");
    assert_eq!(invoice["seller"]["document"]["number"], "20100070970");
    assert_eq!(invoice["buyer"]["name"], "Rosa Mamani Flores");
    assert_eq!(invoice["buyer"]["document"]["type"], "DNI");
    assert_eq!(invoice["currency"], "PEN");
    let lines = invoice["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 3, "two items and shipping");
    assert_eq!(lines[2]["kind"], "SHIPPING");
    assert_eq!(money(&lines[2]["total"]), money(&shipping_cost));
    // 149.90 + 19.99 + shipping, tax included; the parts add up to the cent.
    let cents = |v: &Value| -> i64 { money(v).replace('.', "").parse().expect("cents") };
    let total = cents(&invoice["totals"]["total"]);
    assert_eq!(total, 14990 + 1999 + cents(&shipping_cost));
    assert_eq!(
        cents(&invoice["totals"]["subtotal"]) + cents(&invoice["totals"]["tax"]),
        total
    );
    let issue = time::Date::parse(
        invoice["issue_date"].as_str().expect("issue date"),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .expect("date");
    let due = time::Date::parse(
        invoice["due_date"].as_str().expect("due date"),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .expect("date");
    assert_eq!(due - issue, time::Duration::days(30), "the client's payment terms");

    // Issuing is audited, in the invoice's own partition.
    let records = d
        .env
        .partition("InvoicesTable", &format!("INVOICE#{}#{invoice_id}", d.client))
        .await;
    let audit = records
        .iter()
        .find(|r| {
            r.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk == "AUDIT#0000000001")
        })
        .expect("the issue's audit record");
    assert_eq!(
        audit.get("action").and_then(|v| v.as_s().ok()).map(String::as_str),
        Some("ISSUED")
    );

    // The PDF is in the invoices bucket under its predictable key, and reads back.
    let key = format!("invoices/{}/B001/{invoice_id}.pdf", d.client);
    assert_eq!(invoice["pdf"]["key"], key.as_str());
    let object = d
        .env
        .s3
        .get_object()
        .bucket(d.env.resource("InvoicesBucket").reference.clone())
        .key(&key)
        .send()
        .await
        .expect("the stored PDF");
    assert_eq!(object.content_type(), Some("application/pdf"));
    let pdf = object.body.collect().await.expect("PDF bytes").into_bytes().to_vec();
    assert_eq!(invoice["pdf"]["sha256"], hex::encode(Sha256::digest(&pdf)).as_str());
    let text = pdf_text(&pdf);
    for expected in [
        invoice_id.as_str(),
        "Rosa Mamani Flores",
        "20100070970",
        &money(&invoice["totals"]["total"]),
        &money(&invoice["totals"]["tax"]),
        &sale_id,
    ] {
        assert!(text.contains(expected), "the PDF shows {expected:?}:\n{text}");
    }
    let words = invoice["total_in_words"].as_str().expect("total in words");
    assert!(
        text.split_whitespace().collect::<Vec<_>>().join(" ").contains(words),
        "the PDF shows the total in words {words:?}"
    );

    // The e-mail the emulator's SES accepted, found by the message id the invoice recorded.
    let message_id = invoice["email"]["message_id"].as_str().expect("message id");
    let emails = d.env.sent_emails().await;
    let (destinations, raw) = emails
        .iter()
        .find(|(_, _, id)| id == message_id)
        .map(|(d, r, _)| (d, r))
        .expect("the recorded message is in SES");
    assert!(
        destinations.iter().any(|a| a.contains("rosa.mamani@example.com")),
        "{destinations:?}"
    );
    assert!(
        destinations.iter().any(|a| a.contains(&finance_email(&d.client))),
        "{destinations:?}"
    );
    let message = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("MIME that parses");
    assert_eq!(
        message.subject(),
        Some(format!("Boleta de venta electrónica {invoice_id} - {} S.A.C.", d.client).as_str())
    );
    assert_eq!(
        message.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some(d.env.invoice_sender().as_str())
    );
    assert_eq!(
        message.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("rosa.mamani@example.com")
    );
    let body = message.body_text(0).expect("a plain-text body");
    assert!(
        body.contains(&invoice_id) && body.contains(&money(&invoice["totals"]["total"])),
        "{body}"
    );
    assert!(
        message
            .body_html(0)
            .expect("an HTML body")
            .contains(&format!("<strong>{invoice_id}</strong>"))
    );
    // The representación impresa, the signed XML and SUNAT's CDR (checked by foreign tools in
    // e2e_einvoice).
    let attachments: Vec<_> = message.attachments().collect();
    let stem = format!("20100070970-03-{invoice_id}");
    assert_eq!(
        attachments.iter().map(|a| a.attachment_name()).collect::<Vec<_>>(),
        vec![
            Some(format!("{invoice_id}.pdf").as_str()),
            Some(format!("{stem}.xml").as_str()),
            Some(format!("R-{stem}.zip").as_str())
        ]
    );
    assert_eq!(
        attachments[0].content_type().map(|c| (c.ctype(), c.subtype())),
        Some(("application", Some("pdf")))
    );
    assert_eq!(
        attachments[0].contents(),
        pdf.as_slice(),
        "the attachment is the stored PDF, byte for byte"
    );

    // Redelivered: the very InvoiceRequested fulfillment sent, twice more at once, to two
    // instances of invoice-issue; each processes it, and there is still one invoice, one e-mail.
    let request = d.outbox_body("ShipmentsTable", &sale_id).await;
    let redeliveries = send_concurrently(
        (0..2)
            .map(|_| d.env.deliver_sqs("InvoiceIssueFunction", "BillingQueue", &request))
            .collect(),
    )
    .await;
    for redelivery in &redeliveries {
        assert_eq!(
            (redelivery.status, &redelivery.body),
            (200, &serde_json::json!({"batchItemFailures": []})),
            "a redelivery is processed, not failed"
        );
    }
    d.env.drain("BillingQueue").await;
    assert_eq!(d.env.invoices_of_client(&d.client).await.len(), 1);
    let copies = d
        .env
        .sent_emails()
        .await
        .iter()
        .filter(|(to, _, _)| to.iter().any(|a| a.contains(&finance_email(&d.client))))
        .count();
    assert_eq!(copies, 1, "one e-mail per invoice");
}

type RealIssuer = Issuer<
    DynamoInvoiceStore,
    DynamoCampaignDirectory,
    S3DocumentStore,
    SesMailer,
    SystemClock,
    SoapTaxAuthority,
    SecretIssuerKeys<SecretsManagerSource, SystemClock>,
>;

/// invoice-issue's handler with the same adapters its binary builds, against the emulator.
fn issuer(env: &TestEnv) -> RealIssuer {
    Issuer {
        invoices: DynamoInvoiceStore::new(env.dynamodb.clone(), env.table("InvoicesTable")),
        billing: DynamoCampaignDirectory::new(env.dynamodb.clone(), env.table("ConfigTable")),
        documents: S3DocumentStore::new(aws::s3(&env.sdk), env.resource("InvoicesBucket").reference.clone()),
        mailer: SesMailer::new(
            aws::sesv2(&env.sdk),
            Some(env.resource("InvoiceEmailConfigurationSet").reference.clone()),
        ),
        clock: SystemClock,
        sender: Sender {
            address: env.invoice_sender(),
        },
        authority: SoapTaxAuthority::new(env.info.sunat_url.clone(), std::time::Duration::from_secs(20)),
        keys: SecretIssuerKeys::new(CachedSecret::new(
            SecretsManagerSource::new(aws::secretsmanager(&env.sdk)),
            SystemClock,
            env.resource("EInvoiceSigningSecret").reference.clone(),
        )),
        heads: SeriesHeads::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_duplicated_requests_from_concurrent_workers_number_without_gaps() {
    const SALES: usize = 200;
    const WORKERS: usize = 4;
    let env = env().await;
    let client = unique("gapless");
    env.seed_campaign(&client, &unique("camp")).await;
    let at = time::OffsetDateTime::now_utc();
    let messages: Vec<String> = (0..SALES)
        .map(|i| {
            wire::seal(
                &invoice_request(&format!("{client}-{i}"), &client),
                &unique("m"),
                "e2e-gapless",
                at,
            )
            .expect("sealed")
        })
        .collect();

    // Every request twice for the in-test workers, interleaved so duplicates run concurrently;
    // a fifth of them a third time through the billing queue, where the deployed function
    // competes with the workers.
    let queue: Vec<String> = messages.iter().flat_map(|m| [m.clone(), m.clone()]).collect();
    let queue = Arc::new(Mutex::new(queue));
    let billing = env.resource("BillingQueue").reference.clone();
    for message in messages.iter().step_by(5) {
        env.sqs
            .send_message()
            .queue_url(&billing)
            .message_body(message)
            .send()
            .await
            .expect("send to the billing queue");
    }
    let issuer = Arc::new(issuer(&env));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (queue, issuer) = (queue.clone(), issuer.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(message) = queue.lock().expect("queue").pop() else {
                    return;
                };
                match issuer.process(&message).await {
                    Ok(_) => {}
                    // What SQS would do with a failed message: deliver it again later.
                    Err(IssueError::EmailInProgress(_) | IssueError::Contention) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        queue.lock().expect("queue").insert(0, message);
                    }
                    Err(e) => panic!("a worker failed: {e}"),
                }
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    env.drain("BillingQueue").await;

    let invoices = env.invoices_of_client(&client).await;
    let numbers: Vec<u64> = {
        let mut n: Vec<u64> = invoices.iter().map(|i| i["number"].as_u64().expect("number")).collect();
        n.sort_unstable();
        n
    };
    assert_eq!(
        numbers,
        (1..=SALES as u64).collect::<Vec<_>>(),
        "numbers 1..{SALES}, each once"
    );
    let sales: BTreeSet<&str> = invoices.iter().map(|i| i["sale_id"].as_str().expect("sale")).collect();
    assert_eq!(sales.len(), SALES, "one invoice per sale");
    assert!(
        invoices
            .iter()
            .all(|i| i["invoice_id"].as_str().is_some_and(|id| id.starts_with("B001-")) && i.get("email").is_some())
    );

    // One e-mail per invoice: finance's copies, by invoice number.
    let mut copies: HashMap<String, usize> = HashMap::new();
    for (to, raw, _) in env.sent_emails().await {
        if to.iter().any(|a| a.contains(&finance_email(&client))) {
            let parsed = MessageParser::default().parse(raw.as_bytes()).expect("MIME");
            let number = parsed
                .header("X-Invoice-Id")
                .and_then(|h| h.as_text())
                .unwrap_or_default()
                .trim()
                .to_owned();
            *copies.entry(number).or_default() += 1;
        }
    }
    assert_eq!(copies.len(), SALES, "every invoice e-mailed");
    assert!(copies.values().all(|&n| n == 1), "none e-mailed twice");
}
