//! Bounces and complaints end to end: a sale invoiced and e-mailed through the whole flow, then
//! SES events for that e-mail put on the real email-events queue in the shape SNS delivers them
//! (the emulator's SES publishes no events, so the test plays SES and SNS); the local gateway's
//! poller hands them to email-events, and finance reads the result from `GET /invoices`.

use std::time::{Duration, Instant};

use e2e_tests::caller;
use e2e_tests::desk::{Desk, desk};
use serde_json::{Value, json};

/// An SES event-publishing event about message `message_id`, tagged as invoice-issue tags it.
fn ses_event(kind: &str, message_id: &str, tags: &[(&str, &str)], detail: Value) -> Value {
    let mut tag_map = json!({"ses:configuration-set": ["test-backoffice-invoices"]});
    for (name, value) in tags {
        tag_map[*name] = json!([value]);
    }
    let mut event = json!({
        "eventType": kind,
        "mail": {
            "timestamp": "2026-11-30T14:58:01.000Z",
            "source": "facturacion@backoffice.example.com",
            "sendingAccountId": "123456789012",
            "messageId": message_id,
            "destination": ["rosa.mamani@example.com"],
            "tags": tag_map,
        },
    });
    event[kind.to_lowercase()] = detail;
    event
}

fn bounce(kind: &str, feedback_id: &str) -> Value {
    json!({
        "feedbackId": feedback_id, "bounceType": kind,
        "bounceSubType": if kind == "Permanent" { "General" } else { "MailboxFull" },
        "bouncedRecipients": [{"emailAddress": "rosa.mamani@example.com", "action": "failed",
            "status": if kind == "Permanent" { "5.1.1" } else { "4.2.2" },
            "diagnosticCode": if kind == "Permanent" { "smtp; 550 5.1.1 user unknown" } else { "smtp; 452 4.2.2 mailbox full" }}],
        "timestamp": "2026-11-30T14:58:03.120Z"
    })
}

/// The SQS body of an SNS notification (raw message delivery off, as the template subscribes).
fn sns(event: &Value) -> String {
    json!({
        "Type": "Notification", "MessageId": uuid::Uuid::new_v4().to_string(),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:test-backoffice-email-events",
        "Message": event.to_string(), "Timestamp": "2026-11-30T14:58:03.500Z",
        "SignatureVersion": "1", "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    })
    .to_string()
}

async fn publish(d: &Desk, body: &str) {
    d.env
        .sqs
        .send_message()
        .queue_url(d.env.resource("EmailEventsQueue").reference.clone())
        .message_body(body)
        .send()
        .await
        .expect("send to the email-events queue");
}

/// The invoice ids finance sees with `email_status`.
async fn listed(d: &Desk, status: &str) -> Vec<String> {
    let finance = caller("fin-1", "finance", &[&d.client]);
    let path = format!("/invoices?client={}&email_status={status}", d.client);
    let reply = d.env.send(d.env.as_caller(&finance, "GET", &path)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            assert_eq!(i["email_status"], status, "{i}");
            i["invoice_id"].as_str().expect("id").to_owned()
        })
        .collect()
}

async fn wait_listed(d: &Desk, status: &str, invoice_id: &str) {
    let started = Instant::now();
    while !listed(d, status).await.iter().any(|id| id == invoice_id) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{invoice_id} never listed as {status}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn dlq_depth(d: &Desk) -> u64 {
    let attributes = d
        .env
        .sqs
        .get_queue_attributes()
        .queue_url(d.env.resource("EmailEventsDLQ").reference.clone())
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("DLQ attributes");
    attributes
        .attributes()
        .and_then(|a| a.values().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn bounces_and_complaints_reach_finance_through_the_queue() {
    let d = desk().await;
    let (id, _) = d.ready_presale(20).await;
    let sale_id = d.approve(&d.validator("val-1"), &id).await;
    let invoice = d.wait_invoice(&sale_id).await;
    let invoice_id = invoice["invoice_id"].as_str().expect("id").to_owned();
    let message_id = invoice["email"]["message_id"]
        .as_str()
        .expect("the SES message id")
        .to_owned();
    let tags = [("client_id", d.client.as_str()), ("invoice_id", invoice_id.as_str())];
    assert_eq!(listed(&d, "SENT").await, vec![invoice_id.clone()]);

    // What cannot be acted on is acknowledged, never retried into the DLQ: a transient bounce,
    // a body that is no SES event, an e-mail without tags, an invoice that does not exist.
    for body in [
        sns(&ses_event(
            "Bounce",
            &message_id,
            &tags,
            bounce("Transient", "fb-transient"),
        )),
        "{\"not\": \"an SES event\"}".to_owned(),
        sns(&ses_event(
            "Bounce",
            &message_id,
            &[],
            bounce("Permanent", "fb-untagged"),
        )),
        sns(&ses_event(
            "Bounce",
            &message_id,
            &[("client_id", d.client.as_str()), ("invoice_id", "B001-09999999")],
            bounce("Permanent", "fb-unknown"),
        )),
    ] {
        publish(&d, &body).await;
    }
    d.env.drain("EmailEventsQueue").await;
    assert_eq!(listed(&d, "SENT").await, vec![invoice_id.clone()], "nothing marked");
    assert!(listed(&d, "BOUNCED").await.is_empty());
    let unknown = d
        .env
        .partition("InvoicesTable", &format!("INVOICE#{}#B001-09999999", d.client))
        .await;
    assert!(unknown.is_empty(), "no invoice is created for an unknown id");

    // A permanent bounce: finance sees it, with what the receiving server said.
    let permanent = sns(&ses_event("Bounce", &message_id, &tags, bounce("Permanent", "fb-1")));
    publish(&d, &permanent).await;
    wait_listed(&d, "BOUNCED", &invoice_id).await;
    assert!(
        listed(&d, "SENT").await.is_empty(),
        "a bounced e-mail is no longer SENT"
    );
    let stored = d.env.invoice_of_sale(&sale_id).await.expect("invoice");
    assert_eq!(stored["email_feedback_status"], "BOUNCED");
    let feedback = &stored["email_feedback"];
    assert_eq!(
        (
            feedback["bounce_type"].as_str(),
            feedback["bounce_subtype"].as_str(),
            feedback["diagnostic"].as_str(),
            feedback["message_id"].as_str(),
            feedback["feedback_id"].as_str(),
        ),
        (
            Some("Permanent"),
            Some("General"),
            Some("smtp; 550 5.1.1 user unknown"),
            Some(message_id.as_str()),
            Some("fb-1")
        ),
        "{feedback}"
    );
    assert_eq!(feedback["recipients"], json!(["rosa.mamani@example.com"]));

    // SNS and SQS deliver at least once: the same notification again changes nothing.
    publish(&d, &permanent).await;
    d.env.drain("EmailEventsQueue").await;
    let again = d.env.invoice_of_sale(&sale_id).await.expect("invoice");
    assert_eq!(again["email_feedback"], stored["email_feedback"]);

    // A complaint outranks the bounce.
    let complaint = json!({"feedbackId": "fb-2", "complainedRecipients": [{"emailAddress": "rosa.mamani@example.com"}],
                           "timestamp": "2026-11-30T16:10:00.000Z", "complaintFeedbackType": "abuse"});
    publish(&d, &sns(&ses_event("Complaint", &message_id, &tags, complaint))).await;
    wait_listed(&d, "COMPLAINED", &invoice_id).await;
    assert!(listed(&d, "BOUNCED").await.is_empty());
    let complained = d.env.invoice_of_sale(&sale_id).await.expect("invoice");
    assert_eq!(
        (
            complained["email_feedback"]["diagnostic"].as_str(),
            complained["email_feedback"]["feedback_id"].as_str()
        ),
        (Some("abuse"), Some("fb-2"))
    );

    d.env.drain("EmailEventsQueue").await;
    assert_eq!(dlq_depth(&d).await, 0, "nothing was dead-lettered");
}
