use std::sync::Arc;

use backoffice_domain::identity::{Document, DocumentType};
use backoffice_domain::testing::{FixedClock, billing_profile, invoice_request};
use backoffice_edge::testing::MemoryMailer;
use backoffice_store::config::MemoryCampaignDirectory;
use backoffice_store::documents::MemoryDocumentStore;
use backoffice_store::invoices::MemoryInvoiceStore;
use mail_parser::{MessageParser, MimeHeaders};
use time::macros::datetime;

use super::*;
use crate::sunat::{FixedKeys, IssuerCredentials, ScriptedAuthority};

type TestIssuer = Issuer<
    MemoryInvoiceStore,
    MemoryCampaignDirectory,
    MemoryDocumentStore,
    MemoryMailer,
    FixedClock,
    ScriptedAuthority,
    FixedKeys,
>;

/// A throwaway signing certificate, made once per test run with openssl (never committed).
fn credentials() -> IssuerCredentials {
    static PEMS: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    let (cert, key) = PEMS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("invoice-issue-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let status = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj"])
            .arg("/CN=ACME TELECOM S.A.C./serialNumber=20100070970")
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl req failed");
        (std::fs::read(cert).expect("cert"), std::fs::read(key).expect("key"))
    });
    IssuerCredentials {
        signer: sunat_ubl::Signer::from_pem(cert, key).expect("signer"),
        sol: sunat_soap::Credentials::new("20100070970MODDATOS", "moddatos"),
    }
}

/// SUNAT's answer as a CDR zip for `file` (`{stem}.zip`).
fn cdr(file: &str, code: u16, notes: &[&str]) -> Submitted {
    use std::io::Write;
    let stem = file.trim_end_matches(".zip");
    let notes: String = notes.iter().map(|n| format!("<cbc:Note>{n}</cbc:Note>")).collect();
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ar:ApplicationResponse xmlns:ar="urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
<cbc:ID>1</cbc:ID>{notes}<cac:DocumentResponse><cac:Response><cbc:ReferenceID>{stem}</cbc:ReferenceID><cbc:ResponseCode>{code}</cbc:ResponseCode><cbc:Description>answer {code}</cbc:Description></cac:Response></cac:DocumentResponse></ar:ApplicationResponse>"#
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(format!("R-{stem}.xml"), zip::write::SimpleFileOptions::default())
        .expect("zip");
    zip.write_all(xml.as_bytes()).expect("zip");
    let bytes = zip.finish().expect("zip").into_inner();
    Submitted::Answered(sunat_soap::Cdr::read(bytes).expect("a CDR"))
}

struct World {
    issuer: TestIssuer,
}

impl std::ops::Deref for World {
    type Target = TestIssuer;
    fn deref(&self) -> &TestIssuer {
        &self.issuer
    }
}

fn world() -> World {
    let issuer = Issuer {
        invoices: MemoryInvoiceStore::default(),
        billing: MemoryCampaignDirectory::default().with_billing(billing_profile("acme")),
        documents: MemoryDocumentStore::default(),
        mailer: MemoryMailer::default(),
        clock: FixedClock::at(datetime!(2026-11-24 15:00 UTC)),
        sender: Sender {
            address: "facturacion@backoffice.example.com".into(),
        },
        authority: ScriptedAuthority::new(|file| cdr(file, 0, &[])),
        keys: FixedKeys(credentials()),
        heads: SeriesHeads::default(),
    };
    World { issuer }
}

fn message(presale: &str) -> String {
    let request = invoice_request(presale, "acme");
    wire::seal(
        &request,
        &format!("m-{presale}"),
        "corr-1",
        datetime!(2026-11-24 15:00 UTC),
    )
    .unwrap()
}

#[tokio::test]
async fn issues_stores_and_emails_one_invoice() {
    let w = world();
    let outcome = w.issuer.process(&message("P-1")).await.unwrap();
    let Outcome::Delivered { invoice_id, message_id } = outcome else {
        panic!("not delivered: {outcome:?}")
    };
    assert_eq!(invoice_id, "B001-00000001");

    let stored = w.invoices.load("acme", &invoice_id).await.unwrap().unwrap();
    assert_eq!(stored.invoice.totals.total.amount_minor(), 20488);
    let audits = w.invoices.audits();
    assert_eq!(
        (audits.len(), audits[0].subject.as_str(), audits[0].action.as_str()),
        (1, "B001-00000001", "ISSUED")
    );
    assert!(backoffice_domain::audit::verify_chain(&audits, None).verified);
    assert_eq!(
        stored.email.as_ref().map(|e| e.message_id.as_str()),
        Some(message_id.as_str())
    );
    let pdf_record = stored.pdf.unwrap();
    assert_eq!(pdf_record.key, "invoices/acme/B001/B001-00000001.pdf");
    let pdf = w.documents.get(&pdf_record.key).await.unwrap().unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert_eq!(pdf_record.sha256, hex::encode(Sha256::digest(&pdf)));

    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].from, "facturacion@backoffice.example.com");
    assert_eq!(sent[0].to, vec!["maria.quispe@example.com".to_owned()]);
    assert_eq!(sent[0].bcc, vec!["finanzas@acme.example.com".to_owned()]);
    let tags: Vec<(&str, &str)> = sent[0].tags.iter().map(|t| (t.name(), t.value())).collect();
    assert_eq!(
        tags,
        vec![("client_id", "acme"), ("invoice_id", "B001-00000001")],
        "bounces find the invoice by its tags"
    );
    let parsed = MessageParser::default().parse(&sent[0].raw).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Boleta de venta electrónica B001-00000001 - ACME Telecom S.A.C.")
    );
    assert_eq!(
        parsed.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("maria.quispe@example.com")
    );
    assert_eq!(
        parsed.reply_to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("finanzas@acme.example.com")
    );
    assert!(parsed.bcc().is_none(), "finance's copy is in the envelope only");
    assert!(parsed.body_text(0).unwrap().contains("Importe total: PEN 204.88"));
    assert!(parsed.body_html(0).unwrap().contains("<strong>B001-00000001</strong>"));
    let names: Vec<_> = parsed.attachments().filter_map(|a| a.attachment_name()).collect();
    assert_eq!(
        names,
        vec![
            "B001-00000001.pdf",
            "20100070970-03-B001-00000001.xml",
            "R-20100070970-03-B001-00000001.zip"
        ]
    );
    let attachment = parsed.attachments().next().unwrap();
    assert_eq!(attachment.contents(), pdf.as_slice());
    // The document SUNAT accepted, stored beside the PDF, is the one attached.
    let electronic = stored.electronic.expect("an electronic record");
    assert_eq!(
        (electronic.status, electronic.response_code, electronic.submissions),
        (ElectronicStatus::Accepted, Some(0), 1)
    );
    let xml = w.documents.get(&electronic.xml_key).await.unwrap().unwrap();
    assert_eq!(parsed.attachments().nth(1).unwrap().contents(), xml.as_slice());
    assert_eq!(
        electronic.xml_key,
        "invoices/acme/B001/20100070970-03-B001-00000001.xml"
    );
    assert!(String::from_utf8_lossy(&xml).contains(&electronic.digest_value));
    assert_eq!(w.authority.sent(), vec!["20100070970-03-B001-00000001.zip"]);
}

#[tokio::test]
async fn sunat_unavailable_is_retried_then_accepted_with_observations_and_sent_once() {
    let w = world();
    w.authority
        .then(Submitted::Unavailable("soap-env:Server.0130: try again".into()));
    let first = w.issuer.process(&message("P-1")).await;
    assert!(matches!(first, Err(IssueError::SunatUnavailable(_))), "{first:?}");
    let stored = w.invoices.load("acme", "B001-00000001").await.unwrap().unwrap();
    let electronic = stored.electronic.expect("signed and stored before the submission");
    assert_eq!(
        (
            electronic.status,
            electronic.submissions,
            stored.email.is_none(),
            stored.pdf.is_none()
        ),
        (ElectronicStatus::PendingSubmission, 1, true, true),
        "nothing printed or e-mailed as electronic before SUNAT answers"
    );
    assert!(w.mailer.sent().is_empty());

    w.authority
        .then(cdr("20100070970-03-B001-00000001.zip", 0, &["4287 - observación"]));
    w.clock.advance(time::Duration::minutes(5));
    let second = w.issuer.process(&message("P-1")).await.unwrap();
    assert!(matches!(second, Outcome::Delivered { .. }), "{second:?}");
    let stored = w.invoices.load("acme", "B001-00000001").await.unwrap().unwrap();
    let electronic = stored.electronic.unwrap();
    assert_eq!(
        (electronic.status, electronic.submissions, electronic.notes.clone()),
        (ElectronicStatus::Observed, 2, vec!["4287 - observación".to_owned()])
    );
    assert_eq!(w.mailer.sent().len(), 1);
    // The same signed bytes were sent both times (read back, not signed again).
    assert_eq!(w.authority.sent().len(), 2);
    w.issuer.process(&message("P-1")).await.unwrap();
    assert_eq!(w.authority.sent().len(), 2, "an answered document is never sent again");
}

#[tokio::test]
async fn a_rejected_invoice_is_recorded_alarmed_and_never_emailed() {
    let logs = backoffice_edge::testing::LogCapture::global();
    let w = world();
    w.authority.then(cdr("20100070970-03-B001-00000001.zip", 2017, &[]));
    let outcome = w.issuer.process(&message("P-1")).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Rejected {
            invoice_id: "B001-00000001".into(),
            code: 2017
        }
    );
    let stored = w.invoices.load("acme", "B001-00000001").await.unwrap().unwrap();
    let electronic = stored.electronic.unwrap();
    assert_eq!(
        (electronic.status, electronic.response_code),
        (ElectronicStatus::Rejected, Some(2017))
    );
    assert!(electronic.cdr_key.is_some(), "the rejection's CDR is kept");
    assert!(w.mailer.sent().is_empty() && stored.pdf.is_none());
    assert!(
        w.invoices
            .pending_emails(w.clock.now() + time::Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty(),
        "a rejected invoice leaves the delivery sweep"
    );
    assert!(
        logs.lines()
            .iter()
            .any(|l| l["error_kind"] == "einvoice_rejected" && l["code"] == 2017 && l["level"] == "ERROR"),
        "the alarm's log line"
    );
    // A redelivery changes nothing.
    w.issuer.process(&message("P-1")).await.unwrap();
    assert_eq!(w.authority.sent().len(), 1);
}

#[tokio::test]
async fn a_redelivered_request_neither_reissues_nor_resends() {
    let w = world();
    w.issuer.process(&message("P-1")).await.unwrap();
    let again = w.issuer.process(&message("P-1")).await.unwrap();
    assert_eq!(
        again,
        Outcome::AlreadyDelivered {
            invoice_id: "B001-00000001".into()
        }
    );
    assert_eq!(w.invoices.all().len(), 1);
    assert_eq!(w.mailer.sent().len(), 1);
    assert_eq!(w.invoices.last_number("acme", "B001").await.unwrap(), 1);
}

#[tokio::test]
async fn a_failed_send_is_retried_without_a_second_invoice() {
    let w = world();
    w.mailer.fail_next(1);
    let first = w.issuer.process(&message("P-1")).await;
    assert!(
        matches!(first, Err(IssueError::Mail(MailError::Unavailable(_)))),
        "{first:?}"
    );
    let stored = w.invoices.load("acme", "B001-00000001").await.unwrap().unwrap();
    assert!(stored.email.is_none());
    assert_eq!(stored.email_attempts, 1);
    assert!(stored.email_last_error.is_some());
    // The PDF printed for the failed send is recorded by the write that gives the lease back:
    // finance can download it although no e-mail went out.
    let printed = stored.pdf.expect("the printed PDF, recorded with the release");
    assert_eq!(printed.key, "invoices/acme/B001/B001-00000001.pdf");
    // So is SUNAT's answer: the retry does not submit the document again.
    assert_eq!(
        stored.electronic.map(|e| e.status),
        Some(ElectronicStatus::Accepted),
        "the answer, recorded with the release"
    );
    assert!(
        w.invoices.pending_emails(w.clock.now(), 10).await.unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(
        w.invoices
            .pending_emails(w.clock.now() + time::Duration::minutes(1), 10)
            .await
            .unwrap(),
        vec![("acme".to_owned(), "B001-00000001".to_owned())],
        "due a minute after its first failure"
    );

    let retry = w.issuer.process(&message("P-1")).await.unwrap();
    assert!(matches!(retry, Outcome::Delivered { ref invoice_id, .. } if invoice_id == "B001-00000001"));
    assert_eq!(w.authority.sent().len(), 1, "submitted once");
    assert_eq!(w.invoices.all().len(), 1);
    assert_eq!(w.mailer.sent().len(), 1);
    assert!(w.invoices.pending_emails(w.clock.now(), 10).await.unwrap().is_empty());
    // The retry attached the PDF stored by the first attempt.
    let pdf = w
        .documents
        .get("invoices/acme/B001/B001-00000001.pdf")
        .await
        .unwrap()
        .unwrap();
    let sent = w.mailer.sent();
    let parsed = MessageParser::default().parse(&sent[0].raw).unwrap();
    assert_eq!(parsed.attachments().next().unwrap().contents(), pdf.as_slice());
    assert_eq!(printed.sha256, hex::encode(Sha256::digest(&pdf)));
}

#[tokio::test]
async fn the_sweep_delivers_what_the_queue_gave_up_on() {
    let w = world();
    w.mailer.fail_next(1);
    assert!(w.issuer.process(&message("P-1")).await.is_err());
    let deadline = || w.clock.now() + time::Duration::minutes(5);
    assert_eq!(
        w.issuer.sweep(deadline()).await.unwrap(),
        json!({"delivered": 0, "credit_notes": 0, "failed": 0, "stopped_early": false}),
        "the failed e-mail waits for its retry time"
    );
    w.clock.advance(time::Duration::minutes(1));
    let swept = w.issuer.sweep(deadline()).await.unwrap();
    assert_eq!(
        swept,
        json!({"delivered": 1, "credit_notes": 0, "failed": 0, "stopped_early": false})
    );
    assert_eq!(w.mailer.sent().len(), 1);
    assert_eq!(
        w.issuer.sweep(deadline()).await.unwrap(),
        json!({"delivered": 0, "credit_notes": 0, "failed": 0, "stopped_early": false})
    );
}

#[tokio::test]
async fn an_email_that_keeps_failing_moves_behind_newer_ones_and_is_parked_after_its_attempts() {
    let w = world();
    w.mailer.fail_next(1);
    assert!(w.issuer.process(&message("P-1")).await.is_err());
    w.mailer.fail_next(1);
    assert!(w.issuer.process(&message("P-2")).await.is_err());
    // P-1's e-mail fails again on every sweep; P-2's goes through once due.
    w.clock.advance(time::Duration::minutes(1));
    let deadline = || w.clock.now() + time::Duration::minutes(5);
    w.mailer.fail_next(1);
    assert_eq!(
        w.issuer.sweep(deadline()).await.unwrap(),
        json!({"delivered": 1, "credit_notes": 0, "failed": 1, "stopped_early": false}),
        "the oldest fails, the next is delivered in the same sweep"
    );
    for _ in 0..20 {
        w.clock.advance(time::Duration::hours(1));
        w.mailer.fail_next(1);
        w.issuer.sweep(deadline()).await.unwrap();
    }
    let stuck = w.invoices.load("acme", "B001-00000001").await.unwrap().unwrap();
    assert!(stuck.email.is_none());
    assert_eq!(
        stuck.email_attempts,
        RetryPolicy::DELIVERY.max_attempts,
        "attempts are capped: parked, not retried for ever"
    );
    assert!(w.invoices.pending_emails(w.clock.now(), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_sweep_stops_before_the_deadline() {
    let w = world();
    w.mailer.fail_next(2);
    assert!(w.issuer.process(&message("P-1")).await.is_err());
    assert!(w.issuer.process(&message("P-2")).await.is_err());
    w.clock.advance(time::Duration::minutes(5));
    let swept = w
        .issuer
        .sweep(w.clock.now() + time::Duration::seconds(2))
        .await
        .unwrap();
    assert_eq!(
        swept,
        json!({"delivered": 0, "credit_notes": 0, "failed": 0, "stopped_early": true})
    );
    assert_eq!(w.invoices.pending_emails(w.clock.now(), 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_live_lease_keeps_a_second_worker_from_sending() {
    let w = world();
    w.mailer.fail_next(1);
    let _ = w.issuer.process(&message("P-1")).await;
    // Another worker holds the lease now.
    let now = datetime!(2026-11-24 15:00 UTC);
    assert_eq!(
        w.invoices
            .claim_email("acme", "B001-00000001", now, now + EMAIL_LEASE)
            .await
            .unwrap(),
        EmailClaim::Claimed
    );
    assert!(matches!(
        w.issuer.process(&message("P-1")).await,
        Err(IssueError::EmailInProgress(_))
    ));
    assert!(w.mailer.sent().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_with_duplicates_number_without_gaps() {
    let w = Arc::new(world());
    let mut tasks = Vec::new();
    for i in 0..120 {
        // Every request delivered twice, by different workers.
        for _ in 0..2 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.issuer.process(&message(&format!("P-{i}"))).await
            }));
        }
    }
    for task in tasks {
        // A duplicate may find the other worker sending: that is a retry, not a loss.
        match task.await.unwrap() {
            Ok(_) | Err(IssueError::EmailInProgress(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let mut numbers: Vec<u64> = w.invoices.all().iter().map(|i| i.invoice.number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=120).collect::<Vec<u64>>());
    let mut sales: Vec<String> = w
        .invoices
        .all()
        .iter()
        .filter_map(|i| i.invoice.sale_id.as_ref().map(|s| s.to_string()))
        .collect();
    sales.sort();
    sales.dedup();
    assert_eq!(sales.len(), 120);
    assert_eq!(w.mailer.sent().len(), 120);
}

#[tokio::test]
async fn a_company_buyer_gets_a_factura_in_its_own_series() {
    let w = world();
    let mut request = invoice_request("P-9", "acme");
    request.customer.document = Document::new(DocumentType::Ruc, "20100070970").unwrap();
    let body = wire::seal(&request, "m-9", "c", datetime!(2026-11-24 15:00 UTC)).unwrap();
    w.issuer.process(&message("P-1")).await.unwrap();
    let outcome = w.issuer.process(&body).await.unwrap();
    assert!(matches!(outcome, Outcome::Delivered { ref invoice_id, .. } if invoice_id == "F001-00000001"));
}

#[tokio::test]
async fn a_buyer_without_email_still_reaches_finance() {
    let w = world();
    let mut request = invoice_request("P-8", "acme");
    request.customer.email = None;
    let body = wire::seal(&request, "m-8", "c", datetime!(2026-11-24 15:00 UTC)).unwrap();
    w.issuer.process(&body).await.unwrap();
    let sent = w.mailer.sent();
    assert_eq!(sent[0].to, vec!["finanzas@acme.example.com".to_owned()]);
    assert!(sent[0].bcc.is_empty());
}

#[tokio::test]
async fn bad_messages_and_missing_configuration_issue_nothing() {
    let w = world();
    assert!(matches!(w.issuer.process("not json").await, Err(IssueError::Poison(_))));
    let wrong = json!({"type": "SaleConfirmed", "id": "m", "occurred_at": "2026-11-24T15:00:00Z", "correlation_id": "c", "body": {}}).to_string();
    assert!(matches!(w.issuer.process(&wrong).await, Err(IssueError::Poison(_))));
    let unknown_client = wire::seal(
        &invoice_request("P-5", "globex"),
        "m",
        "c",
        datetime!(2026-11-24 15:00 UTC),
    )
    .unwrap();
    assert!(matches!(
        w.issuer.process(&unknown_client).await,
        Err(IssueError::NoBillingProfile(_))
    ));
    let mut bad = invoice_request("P-6", "acme");
    bad.items[0].line_total = bad.items[1].unit_price;
    let bad = wire::seal(&bad, "m", "c", datetime!(2026-11-24 15:00 UTC)).unwrap();
    assert!(matches!(
        w.issuer.process(&bad).await,
        Err(IssueError::Invoice(InvoiceError::Invalid(_)))
    ));
    assert!(w.invoices.all().is_empty());
    assert_eq!(w.invoices.last_number("acme", "B001").await.unwrap(), 0);
}

#[tokio::test]
async fn a_batch_reports_only_its_failed_messages() {
    let w = world();
    let mut event = SqsEvent::default();
    for (id, body) in [("ok", message("P-1")), ("bad", "{".to_owned())] {
        let mut record = aws_lambda_events::sqs::SqsMessage::default();
        record.message_id = Some(id.into());
        record.body = Some(body);
        event.records.push(record);
    }
    let response = w.issuer.handle(event, w.clock.now() + time::Duration::minutes(1)).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["bad"]);
}

#[tokio::test]
async fn names_typed_by_agents_are_escaped_in_the_html_body() {
    let w = world();
    let mut request = invoice_request("P-7", "acme");
    request.customer.full_name = "Ana <script>alert(1)</script> & Cía".into();
    let body = wire::seal(&request, "m-7", "c", datetime!(2026-11-24 15:00 UTC)).unwrap();
    w.issuer.process(&body).await.unwrap();
    let sent = w.mailer.sent();
    let parsed = MessageParser::default().parse(&sent[0].raw).unwrap();
    let html = parsed.body_html(0).unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("Ana &lt;script&gt;alert(1)&lt;/script&gt; &amp; Cía"),
        "{html}"
    );
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("Ana <script>alert(1)</script> & Cía"),
        "plain text is not HTML"
    );
}

/// Issue 12: two workers straddling midnight must not give number N+1 an earlier date than N.
#[tokio::test]
async fn a_later_number_never_carries_an_earlier_date() {
    let w = world();
    w.clock.set(datetime!(2026-11-25 00:00:01 -5));
    w.issuer.process(&message("P-1")).await.unwrap();
    // The second worker read its clock a moment before midnight.
    w.clock.set(datetime!(2026-11-24 23:59:59 -5));
    w.issuer.process(&message("P-2")).await.unwrap();
    let mut issued: Vec<(u64, time::Date)> = w
        .invoices
        .all()
        .iter()
        .map(|i| (i.invoice.number, i.invoice.issue_date))
        .collect();
    issued.sort_unstable();
    assert_eq!(
        issued,
        vec![
            (1, time::macros::date!(2026 - 11 - 25)),
            (2, time::macros::date!(2026 - 11 - 25))
        ]
    );
}

/// Issue 12 (item 11): a client without a billing profile is one clear ERROR line with a stable
/// `error_kind` (the alarm's metric filter matches it) and nothing is issued.
#[tokio::test]
async fn a_client_without_a_billing_profile_logs_one_error_with_a_stable_kind() {
    let logs = backoffice_edge::testing::LogCapture::global();
    let w = world();
    let body = wire::seal(
        &invoice_request("P-NB", "nobilling-co"),
        "m-nb",
        "c-nb",
        datetime!(2026-11-24 15:00 UTC),
    )
    .unwrap();
    assert!(matches!(
        w.issuer.process(&body).await,
        Err(IssueError::NoBillingProfile(client)) if client == "nobilling-co"
    ));
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .into_iter()
        .filter(|line| line["client_id"] == "nobilling-co")
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(lines[0]["error_kind"], "billing_profile_missing");
    assert!(w.invoices.all().is_empty());
}

#[tokio::test]
async fn a_batch_near_its_deadline_leaves_the_rest_for_a_retry_instead_of_timing_out() {
    let w = world();
    let mut event = SqsEvent::default();
    for (id, presale) in [("m-1", "P-1"), ("m-2", "P-2")] {
        let mut record = aws_lambda_events::sqs::SqsMessage::default();
        record.message_id = Some(id.into());
        record.body = Some(message(presale));
        event.records.push(record);
    }
    // Less time left than one invoice needs: nothing is started, both come back.
    let response = w.issuer.handle(event, w.clock.now() + time::Duration::seconds(3)).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m-1", "m-2"]);
    assert!(w.invoices.all().is_empty(), "no invoice half made");
}

#[tokio::test]
async fn a_rejection_sent_as_a_fault_is_final_and_a_refused_submission_is_retried() {
    let w = world();
    w.authority
        .then(sunat::classify(Ok(sunat_soap::Answer::Fault(sunat_soap::Fault {
            faultcode: "soap-env:Client.2017".into(),
            faultstring: "El numero de documento de identidad del receptor debe ser RUC".into(),
            detail: None,
        }))));
    let outcome = w.issuer.process(&message("P-1")).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Rejected {
            invoice_id: "B001-00000001".into(),
            code: 2017
        }
    );
    let electronic = w
        .invoices
        .load("acme", "B001-00000001")
        .await
        .unwrap()
        .unwrap()
        .electronic
        .unwrap();
    assert_eq!(
        (electronic.status, electronic.cdr_key),
        (ElectronicStatus::Rejected, None)
    );

    // Credentials refused (0102): not final; retried on the schedule once a person fixes them.
    w.authority
        .then(sunat::classify(Ok(sunat_soap::Answer::Fault(sunat_soap::Fault {
            faultcode: "soap-env:Client.0102".into(),
            faultstring: "Usuario o contraseña incorrectos".into(),
            detail: None,
        }))));
    let refused = w.issuer.process(&message("P-2")).await;
    assert!(matches!(refused, Err(IssueError::SunatRefused(_))), "{refused:?}");
    let stored = w.invoices.load("acme", "B001-00000002").await.unwrap().unwrap();
    let electronic = stored.electronic.unwrap();
    assert_eq!(
        (electronic.status, electronic.response_code, stored.email_attempts),
        (ElectronicStatus::PendingSubmission, Some(102), 1)
    );
    w.clock.advance(time::Duration::minutes(5));
    assert!(matches!(
        w.issuer.process(&message("P-2")).await,
        Ok(Outcome::Delivered { .. })
    ));
}

fn credit_message(
    request_id: &str,
    invoice_id: &str,
    lines: Vec<backoffice_domain::credit_note::CreditedLine>,
) -> String {
    let request = backoffice_domain::events::CreditNoteRequested {
        request_id: request_id.into(),
        client_id: "acme".into(),
        invoice_id: invoice_id.into(),
        reason: backoffice_domain::credit_note::CreditNoteReason::ItemReturn,
        description: "Devolución de un router".into(),
        lines,
        requested_by: "finance-1".into(),
    };
    wire::seal(
        &request,
        &format!("m-{request_id}"),
        "corr-cn",
        datetime!(2026-11-25 15:00 UTC),
    )
    .unwrap()
}

#[tokio::test]
async fn a_credit_note_is_numbered_in_its_own_series_signed_submitted_and_never_exceeds_its_invoice() {
    use backoffice_domain::credit_note::CreditedLine;
    use backoffice_store::credit_notes::CreditNoteStore;
    let w = world();
    w.issuer.process(&message("P-1")).await.unwrap();
    w.clock.advance(time::Duration::days(1));
    let router = vec![CreditedLine { line: 2, quantity: 1 }];
    let outcome = w
        .issuer
        .process(&credit_message("r-1", "B001-00000001", router.clone()))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Credited {
            credit_note_id: "BC01-00000001".into(),
            status: ElectronicStatus::Accepted
        }
    );
    // Redelivered: the same note, not submitted again.
    let again = w
        .issuer
        .process(&credit_message("r-1", "B001-00000001", router.clone()))
        .await
        .unwrap();
    assert_eq!(again, outcome);
    assert_eq!(
        w.authority.sent(),
        vec!["20100070970-03-B001-00000001.zip", "20100070970-07-BC01-00000001.zip"]
    );
    let stored = w
        .invoices
        .load_credit_note("acme", "B001-00000001", "BC01-00000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.note.totals.total.amount_minor(), stored.requested_by.as_str()),
        (1999, "finance-1")
    );
    let electronic = stored.electronic.expect("signed");
    assert_eq!(
        electronic.xml_key,
        "invoices/acme/BC01/20100070970-07-BC01-00000001.xml"
    );
    let xml = String::from_utf8(w.documents.get(&electronic.xml_key).await.unwrap().unwrap()).unwrap();
    assert!(
        xml.contains("<cbc:ReferenceID>B001-00000001</cbc:ReferenceID>"),
        "{xml}"
    );
    assert!(xml.contains(&electronic.digest_value));
    assert_eq!(w.invoices.credited("acme", "B001-00000001").await.unwrap(), 1999);

    // The rest of the invoice can be credited once; then nothing more.
    let total = w.issuer.process(&credit_message("r-2", "B001-00000001", vec![])).await;
    assert!(matches!(total, Err(IssueError::NotCreditable(_))), "{total:?}");
    let rest = vec![
        CreditedLine { line: 1, quantity: 1 },
        CreditedLine { line: 2, quantity: 1 },
        CreditedLine { line: 3, quantity: 1 },
    ];
    let second = w
        .issuer
        .process(&credit_message("r-3", "B001-00000001", rest))
        .await
        .unwrap();
    assert!(
        matches!(second, Outcome::Credited { ref credit_note_id, .. } if credit_note_id == "BC01-00000002"),
        "{second:?}"
    );
    assert_eq!(w.invoices.credited("acme", "B001-00000001").await.unwrap(), 20488);
    let more = w.issuer.process(&credit_message("r-4", "B001-00000001", router)).await;
    assert!(matches!(more, Err(IssueError::NotCreditable(_))), "{more:?}");
    let unknown = w.issuer.process(&credit_message("r-5", "B001-00000099", vec![])).await;
    assert!(matches!(unknown, Err(IssueError::NotCreditable(_))), "{unknown:?}");
    // Refusals took no number: the series has no gap.
    assert_eq!(w.invoices.last_number("acme", "BC01").await.unwrap(), 2);
}

#[tokio::test]
async fn a_credit_note_waits_for_its_invoice_and_the_sweep_submits_it_after_an_outage() {
    use backoffice_store::credit_notes::CreditNoteStore;
    let w = world();
    w.authority.then(Submitted::Unavailable("down".into()));
    assert!(w.issuer.process(&message("P-1")).await.is_err());
    // The invoice is not accepted yet: no note, no number.
    let early = w.issuer.process(&credit_message("r-1", "B001-00000001", vec![])).await;
    assert!(matches!(early, Err(IssueError::NotCreditable(_))), "{early:?}");
    assert_eq!(w.invoices.last_number("acme", "BC01").await.unwrap(), 0);
    w.issuer.process(&message("P-1")).await.unwrap();
    w.authority.then(Submitted::Unavailable("down again".into()));
    let pending = w.issuer.process(&credit_message("r-1", "B001-00000001", vec![])).await;
    assert!(matches!(pending, Err(IssueError::SunatUnavailable(_))), "{pending:?}");
    // Just issued: its message's to submit, not the sweep's yet.
    let swept = w
        .issuer
        .sweep(w.clock.now() + time::Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(swept["credit_notes"], 0, "{swept}");
    w.clock.advance(time::Duration::minutes(3));
    assert_eq!(
        w.invoices.pending_credit_notes(w.clock.now(), 10).await.unwrap(),
        vec![(
            "acme".to_owned(),
            "B001-00000001".to_owned(),
            "BC01-00000001".to_owned()
        )]
    );
    let swept = w
        .issuer
        .sweep(w.clock.now() + time::Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(swept["credit_notes"], 1, "{swept}");
    assert!(
        w.invoices
            .pending_credit_notes(w.clock.now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let stored = w
        .invoices
        .load_credit_note("acme", "B001-00000001", "BC01-00000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.electronic.map(|e| (e.status, e.submissions)),
        Some((ElectronicStatus::Accepted, 2))
    );
}

fn courier_message<E: backoffice_domain::events::Event + serde::Serialize>(event: &E, id: &str) -> String {
    wire::seal(event, id, "corr-courier", datetime!(2026-11-25 15:00 UTC)).unwrap()
}

#[tokio::test]
async fn a_return_credits_its_invoice_once_and_cash_on_delivery_pays_it_once() {
    use backoffice_domain::events::{CashCollected, ShipmentReturned};
    use backoffice_domain::receivable::CollectionStatus;
    use backoffice_store::payments::PaymentLedger;
    let w = world();
    w.issuer.process(&message("P-1")).await.unwrap();
    w.issuer.process(&message("P-2")).await.unwrap();
    w.clock.advance(time::Duration::days(1));
    let first = invoice_request("P-1", "acme");
    let returned = ShipmentReturned {
        shipment_id: first.shipment_id.clone(),
        sale_id: first.sale_id.clone(),
        client_id: "acme".into(),
        courier_id: "olva".into(),
        returned_at: datetime!(2026-11-25 14:00 UTC),
    };
    let message_1 = courier_message(&returned, "m-ret-1");
    let credited = w.issuer.process(&message_1).await.unwrap();
    assert_eq!(
        credited,
        Outcome::Credited {
            credit_note_id: "BC01-00000001".into(),
            status: ElectronicStatus::Accepted
        }
    );
    // The same return delivered again (another message id): the same note, nothing more.
    let again = w.issuer.process(&courier_message(&returned, "m-ret-2")).await.unwrap();
    assert_eq!(again, credited);
    let account = w
        .invoices
        .account("acme", "B001-00000001")
        .await
        .unwrap()
        .unwrap()
        .account;
    assert_eq!(account.status(), CollectionStatus::Credited);
    assert_eq!(account.outstanding_minor(), 0);

    let second = invoice_request("P-2", "acme");
    let owed = w
        .invoices
        .account("acme", "B001-00000002")
        .await
        .unwrap()
        .unwrap()
        .account;
    let collected = CashCollected {
        shipment_id: second.shipment_id.clone(),
        sale_id: second.sale_id.clone(),
        client_id: "acme".into(),
        courier_id: "olva".into(),
        amount: owed.outstanding(),
        collected_at: datetime!(2026-11-25 14:00 UTC),
    };
    for id in ["m-cod-1", "m-cod-2"] {
        let paid = w.issuer.process(&courier_message(&collected, id)).await.unwrap();
        assert_eq!(
            paid,
            Outcome::Paid {
                invoice_id: "B001-00000002".into(),
                status: CollectionStatus::Paid
            }
        );
    }
    let payments = w.invoices.payments("acme", "B001-00000002").await.unwrap();
    assert_eq!(payments.len(), 1, "one payment per shipment");
    assert_eq!(payments[0].reference, second.shipment_id.to_string());
    assert_eq!(payments[0].recorded_by, "courier:olva");

    // Cash for a credited invoice is refused (finance reconciles it); a sale without an invoice
    // yet comes back later.
    let on_credited = CashCollected {
        shipment_id: first.shipment_id.clone(),
        sale_id: first.sale_id.clone(),
        ..collected.clone()
    };
    let refused = w.issuer.process(&courier_message(&on_credited, "m-cod-3")).await;
    assert!(matches!(refused, Err(IssueError::PaymentRefused(_))), "{refused:?}");
    let early = invoice_request("P-9", "acme");
    let not_yet = CashCollected {
        shipment_id: early.shipment_id.clone(),
        sale_id: early.sale_id.clone(),
        ..collected
    };
    let later = w.issuer.process(&courier_message(&not_yet, "m-cod-4")).await;
    assert!(matches!(later, Err(IssueError::NotInvoicedYet(_))), "{later:?}");
}

#[tokio::test]
async fn an_accepted_credit_note_is_printed_and_emailed_once_like_its_invoice() {
    use backoffice_domain::credit_note::CreditedLine;
    use backoffice_store::credit_notes::CreditNoteStore;
    let w = world();
    w.issuer.process(&message("P-1")).await.unwrap();
    w.clock.advance(time::Duration::days(1));
    let router = vec![CreditedLine { line: 2, quantity: 1 }];
    w.issuer
        .process(&credit_message("r-1", "B001-00000001", router.clone()))
        .await
        .unwrap();
    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 2, "the invoice's e-mail, then the note's");
    let email = &sent[1];
    assert_eq!(email.to, vec!["maria.quispe@example.com".to_owned()]);
    assert_eq!(email.bcc, vec!["finanzas@acme.example.com".to_owned()]);
    let tags: Vec<(&str, &str)> = email.tags.iter().map(|t| (t.name(), t.value())).collect();
    assert_eq!(
        tags,
        vec![
            ("client_id", "acme"),
            ("invoice_id", "B001-00000001"),
            ("credit_note_id", "BC01-00000001")
        ]
    );
    let parsed = MessageParser::default().parse(&email.raw).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Nota de crédito electrónica BC01-00000001 (modifica B001-00000001) - ACME Telecom S.A.C.")
    );
    assert_eq!(
        parsed.reply_to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("finanzas@acme.example.com")
    );
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("07 - Devolución por ítem"), "{text}");
    assert!(text.contains("B001-00000001"), "{text}");
    let names: Vec<_> = parsed.attachments().filter_map(|a| a.attachment_name()).collect();
    assert_eq!(
        names,
        vec![
            "BC01-00000001.pdf",
            "20100070970-07-BC01-00000001.xml",
            "R-20100070970-07-BC01-00000001.zip"
        ]
    );
    // The PDF, XML and CDR attached are the stored ones.
    let stored = w
        .invoices
        .load_credit_note("acme", "B001-00000001", "BC01-00000001")
        .await
        .unwrap()
        .unwrap();
    let pdf_record = stored.pdf.clone().expect("a stored PDF");
    assert_eq!(pdf_record.key, "invoices/acme/BC01/BC01-00000001.pdf");
    let pdf = w.documents.get(&pdf_record.key).await.unwrap().unwrap();
    assert_eq!(pdf_record.sha256, hex::encode(Sha256::digest(&pdf)));
    let attached: Vec<&[u8]> = parsed.attachments().map(|a| a.contents()).collect();
    assert_eq!(attached[0], pdf.as_slice());
    let electronic = stored.electronic.clone().unwrap();
    let xml = w.documents.get(&electronic.xml_key).await.unwrap().unwrap();
    assert_eq!(attached[1], xml.as_slice());
    let cdr = w
        .documents
        .get(electronic.cdr_key.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attached[2], cdr.as_slice());
    let record = stored.email.expect("recorded");
    assert_eq!(
        record.recipients,
        vec![
            "maria.quispe@example.com".to_owned(),
            "finanzas@acme.example.com".to_owned()
        ]
    );

    // A redelivered request and the sweep send nothing more.
    w.issuer
        .process(&credit_message("r-1", "B001-00000001", router))
        .await
        .unwrap();
    w.clock.advance(time::Duration::hours(1));
    let swept = w
        .issuer
        .sweep(w.clock.now() + time::Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(swept["credit_notes"], 0, "{swept}");
    assert!(
        w.invoices
            .pending_credit_notes(w.clock.now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(w.mailer.sent().len(), 2);
}

#[tokio::test]
async fn a_credit_note_whose_email_failed_is_sent_by_the_sweep_once() {
    use backoffice_store::credit_notes::CreditNoteStore;
    let w = world();
    w.issuer.process(&message("P-1")).await.unwrap();
    w.clock.advance(time::Duration::days(1));
    w.mailer.fail_next(1);
    let failed = w.issuer.process(&credit_message("r-1", "B001-00000001", vec![])).await;
    assert!(
        matches!(failed, Err(IssueError::Mail(MailError::Unavailable(_)))),
        "{failed:?}"
    );
    let stored = w
        .invoices
        .load_credit_note("acme", "B001-00000001", "BC01-00000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.email.is_none(), stored.email_attempts),
        (true, 1),
        "accepted, not e-mailed"
    );
    assert_eq!(stored.electronic.map(|e| e.status), Some(ElectronicStatus::Accepted));
    let deadline = || w.clock.now() + time::Duration::minutes(5);
    assert_eq!(
        w.issuer.sweep(deadline()).await.unwrap()["credit_notes"],
        0,
        "the failed e-mail waits for its retry time"
    );
    assert_eq!(w.mailer.sent().len(), 1);
    w.clock.advance(time::Duration::minutes(4));
    let swept = w.issuer.sweep(deadline()).await.unwrap();
    assert_eq!(
        swept,
        json!({"delivered": 0, "credit_notes": 1, "failed": 0, "stopped_early": false})
    );
    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 2);
    let parsed = MessageParser::default().parse(&sent[1].raw).unwrap();
    assert_eq!(parsed.attachments().count(), 3);
    // SUNAT was asked once; nothing is left for the sweep or a redelivery.
    assert_eq!(w.authority.sent().len(), 2);
    assert_eq!(w.issuer.sweep(deadline()).await.unwrap()["credit_notes"], 0);
    w.issuer
        .process(&credit_message("r-1", "B001-00000001", vec![]))
        .await
        .unwrap();
    assert_eq!(w.mailer.sent().len(), 2);
}

/// The call center's own profile: its series, prices net of IGV (contracts are).
fn call_center() -> BillingProfile {
    BillingProfile {
        legal_name: "Contacto Perú S.A.C.".into(),
        finance_email: "cobranzas@callcenter.example.com".into(),
        factura_series: "F900".into(),
        tax: backoffice_domain::invoice::TaxConfig {
            prices_include_tax: false,
            ..Default::default()
        },
        ..billing_profile("callcenter")
    }
}

#[tokio::test]
async fn a_billing_run_is_invoiced_once_by_the_call_center_with_its_evidence_attached() {
    let mut w = world();
    w.issuer.billing = MemoryCampaignDirectory::default()
        .with_billing(billing_profile("acme"))
        .with_billing(call_center());
    let request = backoffice_domain::testing::service_invoice_request("callcenter", "acme");
    let csv = b"key,kind,price\nCONTACT#1,EFFECTIVE_CONTACT,2.50\n".to_vec();
    w.documents
        .put(&request.evidence_key, csv.clone(), "text/csv")
        .await
        .unwrap();
    let body = wire::seal(&request, "m-run", "corr-run", datetime!(2026-11-01 06:00 UTC)).unwrap();

    let outcome = w.issuer.process(&body).await.unwrap();
    let Outcome::Delivered { invoice_id, .. } = outcome else {
        panic!("not delivered: {outcome:?}")
    };
    assert_eq!(invoice_id, "F900-00000001");
    let stored = w.invoices.load("callcenter", &invoice_id).await.unwrap().unwrap();
    // 650.00 net, IGV 18 % on top.
    assert_eq!(
        (
            stored.invoice.totals.subtotal.amount_minor(),
            stored.invoice.totals.tax.amount_minor(),
            stored.invoice.totals.total.amount_minor()
        ),
        (65_000, 11_700, 76_700)
    );
    assert_eq!(
        w.invoices.invoice_for_run("acme-2026-10").await.unwrap().as_deref(),
        Some("F900-00000001")
    );
    let beside = "invoices/callcenter/F900/evidencia-acme-2026-10.csv";
    assert_eq!(w.documents.get(beside).await.unwrap(), Some(csv.clone()));

    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, vec!["finanzas@acme.example.com".to_owned()]);
    assert_eq!(sent[0].bcc, vec!["cobranzas@callcenter.example.com".to_owned()]);
    let parsed = MessageParser::default().parse(&sent[0].raw).unwrap();
    let names: Vec<_> = parsed.attachments().filter_map(|a| a.attachment_name()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[0], "F900-00000001.pdf");
    assert_eq!(names[3], "evidencia-acme-2026-10.csv");
    assert_eq!(parsed.attachments().nth(3).unwrap().contents(), csv.as_slice());
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("liquidación acme-2026-10"), "{text}");

    // A redelivery issues nothing and sends nothing.
    let again = w.issuer.process(&body).await.unwrap();
    assert!(matches!(again, Outcome::AlreadyDelivered { .. }), "{again:?}");
    assert_eq!((w.invoices.all().len(), w.mailer.sent().len()), (1, 1));
}

#[tokio::test]
async fn a_billing_run_without_its_evidence_is_not_emailed_yet() {
    let mut w = world();
    w.issuer.billing = MemoryCampaignDirectory::default()
        .with_billing(billing_profile("acme"))
        .with_billing(call_center());
    let request = backoffice_domain::testing::service_invoice_request("callcenter", "acme");
    let body = wire::seal(&request, "m-run", "corr-run", datetime!(2026-11-01 06:00 UTC)).unwrap();
    assert!(w.issuer.process(&body).await.is_err());
    assert!(w.mailer.sent().is_empty());
    // Once the evidence is there, the retry delivers the invoice already numbered.
    w.documents
        .put(&request.evidence_key, b"key\n".to_vec(), "text/csv")
        .await
        .unwrap();
    w.issuer.clock = FixedClock::at(datetime!(2026-11-24 16:00 UTC));
    let outcome = w.issuer.process(&body).await.unwrap();
    assert!(matches!(outcome, Outcome::Delivered { ref invoice_id, .. } if invoice_id == "F900-00000001"));
    assert_eq!(w.invoices.all().len(), 1);
}

/// Invoice number 1 of `presale`'s sale, issued (as an attempt that stopped after issuing
/// leaves it) but not delivered.
async fn issued_undelivered(w: &World, presale: &str) -> backoffice_domain::invoice::Invoice {
    let request = invoice_request(presale, "acme");
    let invoice = InvoiceDraft::prepare(&request, &billing_profile("acme"), w.clock.now())
        .and_then(|d| d.numbered(1))
        .unwrap();
    let audit = backoffice_domain::testing::issued_audit(&invoice.invoice_id, invoice.issued_at);
    w.invoices.issue(&invoice, &audit).await.unwrap();
    invoice
}

/// `xml` stored as an earlier attempt stores a document's signed XML, before submitting it; the
/// document's file stem.
async fn stored_by_an_earlier_attempt(w: &World, paper: crate::credit::Paper<'_>, xml: &[u8]) -> String {
    let stem = paper.file_stem();
    w.documents
        .put(
            &paper.document_key(&format!("{stem}.xml")),
            xml.to_vec(),
            "application/xml",
        )
        .await
        .unwrap();
    stem
}

#[tokio::test]
async fn a_document_signed_by_an_attempt_that_stopped_is_submitted_as_stored_not_signed_again() {
    let w = world();
    let invoice = issued_undelivered(&w, "P-9").await;
    // An earlier attempt signed and stored the XML, then stopped before SUNAT's answer was
    // recorded (its record is written with the answer). Its digest differs from a new
    // signature's: a line break before the first cbc:ID is part of the signed content.
    let paper = crate::credit::Paper::Invoice(&invoice);
    let earlier = sunat_ubl::sign(
        &paper.build_xml().unwrap().replacen("<cbc:ID>", "\n<cbc:ID>", 1),
        &credentials().signer,
    )
    .unwrap();
    let anew = sunat_ubl::sign(&paper.build_xml().unwrap(), &credentials().signer).unwrap();
    assert_ne!(earlier.digest_value, anew.digest_value, "the test tells them apart");
    stored_by_an_earlier_attempt(&w, paper, &earlier.xml).await;

    let outcome = w.issuer.deliver("acme", &invoice.invoice_id, None).await.unwrap();
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");
    let stored = w.invoices.load("acme", &invoice.invoice_id).await.unwrap().unwrap();
    let electronic = stored.electronic.unwrap();
    assert_eq!(electronic.status, ElectronicStatus::Accepted);
    assert_eq!(
        electronic.digest_value, earlier.digest_value,
        "the stored document, which SUNAT may know, not a new signature"
    );
    assert_eq!(electronic.xml_sha256, hex::encode(Sha256::digest(&earlier.xml)));
}

#[tokio::test]
async fn an_answer_stored_by_an_attempt_that_stopped_is_recorded_from_its_cdr_not_submitted_again() {
    let w = world();
    let invoice = issued_undelivered(&w, "P-10").await;
    // An earlier attempt signed, submitted and stored SUNAT's CDR (with an observation), then
    // stopped before the e-mail's closing write that records the answer.
    let paper = crate::credit::Paper::Invoice(&invoice);
    let signed = sunat_ubl::sign(&paper.build_xml().unwrap(), &credentials().signer).unwrap();
    let stem = stored_by_an_earlier_attempt(&w, paper, &signed.xml).await;
    let Submitted::Answered(answer) = cdr(&format!("{stem}.zip"), 0, &["4252 - observed"]) else {
        unreachable!("cdr() answers with a CDR")
    };
    let cdr_key = paper.document_key(&format!("R-{stem}.zip"));
    w.documents
        .put(&cdr_key, answer.zip().to_vec(), "application/zip")
        .await
        .unwrap();

    let outcome = w.issuer.deliver("acme", &invoice.invoice_id, None).await.unwrap();
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");
    assert!(w.authority.sent().is_empty(), "not submitted a second time");
    let stored = w.invoices.load("acme", &invoice.invoice_id).await.unwrap().unwrap();
    let electronic = stored.electronic.expect("recorded from the stored CDR");
    assert_eq!(electronic.status, ElectronicStatus::Observed);
    assert_eq!(electronic.cdr_key.as_deref(), Some(cdr_key.as_str()));
    assert_eq!(electronic.notes, vec!["4252 - observed".to_owned()]);
    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 1);
    let parsed = MessageParser::default().parse(&sent[0].raw).unwrap();
    let names: Vec<String> = parsed
        .attachments()
        .filter_map(|a| a.attachment_name().map(str::to_owned))
        .collect();
    assert!(
        names.contains(&format!("R-{stem}.zip")),
        "the CDR goes with the e-mail: {names:?}"
    );
}
