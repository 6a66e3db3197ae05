//! Parsing SES event notifications in the shapes SES and SNS deliver them (from the SES
//! developer guide's examples), and the handler against the in-memory invoice store.

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::invoice::{Invoice, InvoiceDraft};
use backoffice_domain::testing::{FixedClock, billing_profile, invoice_request};
use backoffice_store::invoices::{Closing, EmailRecord, InvoiceStore, MemoryInvoiceStore};
use backoffice_store::ledger::{EmailStatus, InvoiceLedger, InvoiceQuery};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::notification::{Event, parse};
use super::*;

const NOW: OffsetDateTime = datetime!(2026-11-30 15:00 UTC);
const SES_ID: &str = "0100019bd0f4a1c2-5e2b9c1f-3a0d-4c6e-9d1b-7f8e2a4b6c8d-000000";

/// An SES event-publishing event for an invoice e-mail (tags as invoice-issue sends them).
fn ses_event(kind: &str, detail: Value, tags: Option<(&str, &str)>) -> Value {
    let mut tag_map = json!({
        "ses:configuration-set": ["dev-backoffice-invoices"],
        "ses:source-ip": ["192.0.2.0"],
        "ses:from-domain": ["backoffice.example.com"],
        "ses:caller-identity": ["invoice-issue"],
    });
    if let Some((client, invoice)) = tags {
        tag_map["client_id"] = json!([client]);
        tag_map["invoice_id"] = json!([invoice]);
    }
    let mut event = json!({
        "eventType": kind,
        "mail": {
            "timestamp": "2026-11-30T14:58:01.000Z",
            "source": "facturacion@backoffice.example.com",
            "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/backoffice.example.com",
            "sendingAccountId": "123456789012",
            "messageId": SES_ID,
            "destination": ["rosa.mamani@example.com", "finanzas@acme.example.com"],
            "headersTruncated": false,
            "tags": tag_map,
        },
    });
    event[kind.to_lowercase()] = detail;
    event
}

fn permanent_bounce() -> Value {
    json!({
        "feedbackId": "0100019bd0f4a9e1-bounce-1",
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [{
            "emailAddress": "rosa.mamani@example.com",
            "action": "failed",
            "status": "5.1.1",
            "diagnosticCode": "smtp; 550 5.1.1 user unknown"
        }],
        "timestamp": "2026-11-30T14:58:03.120Z",
        "reportingMTA": "dsn; a1-2.smtp-out.amazonses.com"
    })
}

fn transient_bounce() -> Value {
    json!({
        "feedbackId": "0100019bd0f4a9e1-bounce-2",
        "bounceType": "Transient",
        "bounceSubType": "MailboxFull",
        "bouncedRecipients": [{"emailAddress": "rosa.mamani@example.com", "action": "failed", "status": "4.2.2",
                               "diagnosticCode": "smtp; 452 4.2.2 mailbox full"}],
        "timestamp": "2026-11-30T14:58:04Z"
    })
}

fn complaint() -> Value {
    json!({
        "feedbackId": "0100019bd0f4b0aa-complaint-1",
        "complainedRecipients": [{"emailAddress": "finanzas@acme.example.com"}],
        "timestamp": "2026-11-30T16:10:00.000Z",
        "userAgent": "Mozilla/5.0",
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2026-11-30T16:09:58.000Z"
    })
}

/// What an SQS subscription without raw message delivery receives.
fn sns(event: &Value) -> String {
    json!({
        "Type": "Notification",
        "MessageId": "8f2d0f0e-1b7c-5d2a-9c3e-2a1b0c9d8e7f",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:dev-backoffice-email-events",
        "Message": event.to_string(),
        "Timestamp": "2026-11-30T14:58:03.500Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-example.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    })
    .to_string()
}

#[test]
fn a_permanent_bounce_in_its_sns_envelope() {
    let parsed = parse(&sns(&ses_event(
        "Bounce",
        permanent_bounce(),
        Some(("acme", "B001-00000001")),
    )))
    .expect("parses")
    .expect("an event");
    assert_eq!(parsed.message_id, SES_ID);
    assert_eq!(
        (parsed.tag("client_id"), parsed.tag("invoice_id")),
        (Some("acme"), Some("B001-00000001"))
    );
    let Event::Bounce(bounce) = parsed.event else {
        panic!("a bounce: {:?}", parsed.event)
    };
    assert!(bounce.is_permanent());
    assert_eq!(bounce.bounce_subtype.as_deref(), Some("General"));
    assert_eq!(bounce.recipients, vec!["rosa.mamani@example.com".to_owned()]);
    assert_eq!(bounce.diagnostic.as_deref(), Some("smtp; 550 5.1.1 user unknown"));
    assert_eq!(bounce.at, datetime!(2026-11-30 14:58:03.120 UTC));
}

#[test]
fn transient_bounces_and_complaints_raw_or_as_identity_notifications() {
    let transient = parse(&ses_event("Bounce", transient_bounce(), None).to_string())
        .expect("raw delivery parses")
        .expect("an event");
    assert!(matches!(&transient.event, Event::Bounce(b) if !b.is_permanent() && b.bounce_type == "Transient"));

    // Identity notifications say notificationType, not eventType.
    let mut identity = ses_event("Complaint", complaint(), Some(("acme", "B001-00000001")));
    identity["notificationType"] = identity["eventType"].take();
    let complained = parse(&sns(&identity)).expect("parses").expect("an event");
    let Event::Complaint(complaint) = complained.event else {
        panic!("a complaint: {:?}", complained.event)
    };
    assert_eq!(complaint.recipients, vec!["finanzas@acme.example.com".to_owned()]);
    assert_eq!(complaint.feedback_type.as_deref(), Some("abuse"));
}

#[test]
fn other_events_and_bad_shapes() {
    let delivery = ses_event(
        "Delivery",
        json!({"timestamp": "2026-11-30T14:58:03Z", "recipients": ["rosa.mamani@example.com"]}),
        None,
    );
    assert!(matches!(
        parse(&sns(&delivery)).expect("parses").expect("an event").event,
        Event::Other(kind) if kind == "Delivery"
    ));
    let confirmation = json!({"Type": "SubscriptionConfirmation", "Token": "t", "SubscribeURL": "https://x"});
    assert_eq!(parse(&confirmation.to_string()), Ok(None));
    assert!(matches!(parse("not json"), Err(NotificationError::NotJson(_))));
    assert!(matches!(
        parse(&json!({"Type": "Notification", "Message": "{\"hello\": 1}"}).to_string()),
        Err(NotificationError::NotSesEvent(_))
    ));
    let mut no_detail = ses_event("Bounce", permanent_bounce(), None);
    no_detail.as_object_mut().map(|o| o.remove("bounce"));
    assert_eq!(
        parse(&sns(&no_detail)),
        Err(NotificationError::Missing("Bounce", "bounce"))
    );
    let mut bad_time = permanent_bounce();
    bad_time["timestamp"] = json!("yesterday");
    assert!(matches!(
        parse(&sns(&ses_event("Bounce", bad_time, None))),
        Err(NotificationError::Timestamp(_))
    ));
}

async fn issued(store: &MemoryInvoiceStore) -> Invoice {
    let invoice = InvoiceDraft::prepare(&invoice_request("p-1", "acme"), &billing_profile("acme"), NOW)
        .and_then(|d| d.numbered(1))
        .expect("invoice");
    let audit =
        AuditEntry::new(&invoice.invoice_id, 1, NOW, &Actor::system("test"), "ISSUED", "ISSUED").seal(GENESIS_HASH);
    store.issue(&invoice, &audit).await.expect("issued");
    let email = EmailRecord {
        message_id: SES_ID.into(),
        recipients: vec!["rosa.mamani@example.com".into()],
        sent_at: NOW,
    };
    store
        .record_email("acme", &invoice.invoice_id, &email, Closing::default())
        .await
        .expect("sent");
    invoice
}

async fn listed(store: &MemoryInvoiceStore, status: EmailStatus) -> Vec<String> {
    let query = InvoiceQuery {
        client_id: "acme".into(),
        email_status: Some(status),
        limit: 50,
        ..InvoiceQuery::default()
    };
    store
        .invoices(&query)
        .await
        .expect("listing")
        .items
        .into_iter()
        .map(|s| s.invoice_id)
        .collect()
}

fn batch(bodies: &[String]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut message = SqsMessage::default();
            message.message_id = Some(format!("m{i}"));
            message.body = Some(body.clone());
            message
        })
        .collect();
    event
}

#[tokio::test]
async fn a_permanent_bounce_marks_the_invoice_once_and_a_complaint_outranks_it() {
    let events = EmailEvents {
        invoices: MemoryInvoiceStore::default(),
        clock: FixedClock::at(NOW),
    };
    let invoice = issued(&events.invoices).await;
    let id = invoice.invoice_id.as_str();
    let tags = Some(("acme", id));
    assert_eq!(listed(&events.invoices, EmailStatus::Sent).await, vec![id.to_owned()]);

    let transient = sns(&ses_event("Bounce", transient_bounce(), tags));
    assert_eq!(events.process(&transient).await.ok(), Some(Handled::NotPermanent));
    assert_eq!(events.invoices.email_feedback("acme", id), None);

    let bounce = sns(&ses_event("Bounce", permanent_bounce(), tags));
    assert_eq!(
        events.process(&bounce).await.ok(),
        Some(Handled::Marked(FeedbackStatus::Bounced))
    );
    let recorded = events.invoices.email_feedback("acme", id).expect("recorded");
    assert_eq!(
        (
            recorded.bounce_type.as_deref(),
            recorded.bounce_subtype.as_deref(),
            recorded.diagnostic.as_deref()
        ),
        (Some("Permanent"), Some("General"), Some("smtp; 550 5.1.1 user unknown"))
    );
    assert_eq!(
        (
            recorded.recipients.as_slice(),
            recorded.message_id.as_str(),
            recorded.recorded_at
        ),
        (&["rosa.mamani@example.com".to_owned()][..], SES_ID, NOW)
    );
    assert_eq!(
        listed(&events.invoices, EmailStatus::Bounced).await,
        vec![id.to_owned()]
    );
    assert!(listed(&events.invoices, EmailStatus::Sent).await.is_empty());

    // SQS delivers at least once: the same notification again changes nothing.
    assert_eq!(
        events.process(&bounce).await.ok(),
        Some(Handled::AlreadyMarked(FeedbackStatus::Bounced))
    );
    assert_eq!(events.invoices.email_feedback("acme", id), Some(recorded));

    let complained = sns(&ses_event("Complaint", complaint(), tags));
    assert_eq!(
        events.process(&complained).await.ok(),
        Some(Handled::Marked(FeedbackStatus::Complained))
    );
    assert_eq!(
        events.process(&bounce).await.ok(),
        Some(Handled::AlreadyMarked(FeedbackStatus::Complained)),
        "a bounce never takes a complaint back"
    );
    assert_eq!(
        listed(&events.invoices, EmailStatus::Complained).await,
        vec![id.to_owned()]
    );
    assert!(listed(&events.invoices, EmailStatus::Bounced).await.is_empty());
}

#[tokio::test]
async fn what_cannot_be_acted_on_is_acknowledged() {
    let events = EmailEvents {
        invoices: MemoryInvoiceStore::default(),
        clock: FixedClock::at(NOW),
    };
    let invoice = issued(&events.invoices).await;
    let bodies = vec![
        "not json".to_owned(),
        json!({"Type": "SubscriptionConfirmation"}).to_string(),
        sns(&ses_event("Bounce", permanent_bounce(), None)),
        sns(&ses_event(
            "Bounce",
            permanent_bounce(),
            Some(("acme", "B001-09999999")),
        )),
        sns(&ses_event(
            "Bounce",
            permanent_bounce(),
            Some(("globex", &invoice.invoice_id)),
        )),
        sns(&ses_event(
            "Delivery",
            json!({"timestamp": "2026-11-30T14:58:03Z"}),
            Some(("acme", &invoice.invoice_id)),
        )),
    ];
    let mut outcomes = Vec::new();
    for body in &bodies {
        outcomes.push(events.process(body).await.ok());
    }
    assert_eq!(
        outcomes,
        vec![
            Some(Handled::Ignored("unreadable")),
            Some(Handled::Ignored("an SNS message that is not an event")),
            Some(Handled::Ignored("no invoice tags")),
            Some(Handled::UnknownInvoice),
            Some(Handled::UnknownInvoice),
            Some(Handled::Ignored("not a bounce or complaint")),
        ]
    );
    assert!(events.handle(batch(&bodies)).await.batch_item_failures.is_empty());
    assert_eq!(events.invoices.email_feedback("acme", &invoice.invoice_id), None);
    assert!(
        events.invoices.all().len() == 1,
        "no invoice is created for unknown ids"
    );
}

/// A store that cannot be reached.
struct Down;

#[async_trait]
impl EmailFeedbackStore for Down {
    async fn mark_email(&self, _: &str, _: &str, _: &EmailFeedback) -> Result<FeedbackOutcome, StoreError> {
        Err(StoreError::Unavailable("throttled".into()))
    }
}

#[tokio::test]
async fn a_store_failure_is_retried_alone() {
    let events = EmailEvents {
        invoices: Down,
        clock: FixedClock::at(NOW),
    };
    let response = events
        .handle(batch(&[
            sns(&ses_event(
                "Bounce",
                permanent_bounce(),
                Some(("acme", "B001-00000001")),
            )),
            "not json".to_owned(),
            sns(&ses_event(
                "Bounce",
                transient_bounce(),
                Some(("acme", "B001-00000001")),
            )),
        ]))
        .await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m0"]);
}
