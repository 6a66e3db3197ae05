//! A mail outage: SES refuses every send (the sender identity is gone). The invoice is issued
//! all the same, its e-mail waits, the billing queue gives up on the message, and once SES is
//! back the scheduled sweep sends it exactly once, with no second invoice and no second number. Its own test binary: it removes the stack's sender identity,
//! which every other invoicing test needs (test binaries run one after the other).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use backoffice_domain::testing::invoice_request;
use backoffice_domain::wire;
use e2e_tests::{env, finance_email, unique};
use serde_json::json;

#[tokio::test]
async fn an_invoice_issued_during_a_mail_outage_is_emailed_once_when_mail_is_back() {
    let env = env().await;
    let client = unique("outage");
    env.seed_campaign(&client, &unique("camp")).await;
    let ses = backoffice_edge::aws::sesv2(&env.sdk);
    let identity = env.resource("InvoiceSenderIdentity").reference.clone();
    let configuration_set = env.resource("InvoiceEmailConfigurationSet").reference.clone();

    ses.delete_email_identity()
        .email_identity(&identity)
        .send()
        .await
        .expect("take the sender identity away");
    let request = invoice_request(&unique("P"), &client);
    let message = wire::seal(&request, &unique("m"), "e2e-outage", time::OffsetDateTime::now_utc()).expect("sealed");
    let billing = env.resource("BillingQueue").reference.clone();
    env.sqs
        .send_message()
        .queue_url(&billing)
        .message_body(&message)
        .send()
        .await
        .expect("send");

    // Issued, not e-mailed: every delivery of the message failed (the queue gives up after
    // five and dead-letters it) and the reason is kept.
    let started = Instant::now();
    let waiting = loop {
        if let Some(invoice) = env.invoice_of_sale(request.sale_id.as_str()).await
            && invoice["email_attempts"].as_u64().is_some_and(|n| n >= 5)
        {
            break invoice;
        }
        if started.elapsed() > Duration::from_secs(60) {
            // Put SES back before failing, so the next tests are not affected.
            let _ = ses
                .create_email_identity()
                .email_identity(&identity)
                .configuration_set_name(&configuration_set)
                .send()
                .await;
            panic!("the invoice was never issued during the outage");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Nothing left in the billing queue: only the sweep can send the e-mail now.
    env.drain("BillingQueue").await;
    ses.create_email_identity()
        .email_identity(&identity)
        .configuration_set_name(&configuration_set)
        .send()
        .await
        .expect("restore the sender identity");
    assert!(waiting.get("email").is_none(), "nothing was sent while SES refused");
    assert!(
        waiting["email_last_error"]
            .as_str()
            .is_some_and(|e| e.contains("MessageRejected")),
        "{:?}",
        waiting["email_last_error"]
    );
    let invoice_id = waiting["invoice_id"].as_str().expect("id").to_owned();
    assert_eq!(invoice_id, "B001-00000001");

    // Its retry time has come (the schedule's minutes, taken off the due time in the table).
    env.dynamodb
        .update_item()
        .table_name(env.table("InvoicesTable"))
        .key("pk", AttributeValue::S(format!("INVOICE#{client}#{invoice_id}")))
        .key("sk", AttributeValue::S("META".into()))
        .update_expression("SET gsi2sk = :due")
        .expression_attribute_values(":due", AttributeValue::S(format!("{:020}#{invoice_id}", 0)))
        .send()
        .await
        .expect("rewind the retry time");
    let sweep = env
        .send(
            env.request("POST", "/_local/functions/InvoiceIssueFunction/invoke")
                .json(&json!({"source": "aws.scheduler"})),
        )
        .await;
    assert_eq!(sweep.status, 200, "{:?}", sweep.body);
    assert!(
        sweep.body["delivered"].as_u64().is_some_and(|n| n >= 1),
        "the sweep delivered: {:?}",
        sweep.body
    );
    let right_after = env
        .invoice_of_sale(request.sale_id.as_str())
        .await
        .expect("the invoice");
    assert!(
        right_after.get("email").is_some(),
        "sent by the sweep itself, with no queue message left: {right_after}"
    );
    let started = Instant::now();
    let sent = loop {
        let invoice = env
            .invoice_of_sale(request.sale_id.as_str())
            .await
            .expect("the invoice");
        if invoice.get("email").is_some() {
            break invoice;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never e-mailed after the outage: {invoice}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        sent["invoice_id"],
        invoice_id.as_str(),
        "the same invoice, not a second one"
    );
    assert_eq!(env.invoices_of_client(&client).await.len(), 1);
    let emails = env.sent_emails().await;
    let copies: Vec<_> = emails
        .iter()
        .filter(|(to, _, _)| to.iter().any(|a| a.contains(&finance_email(&client))))
        .collect();
    assert_eq!(copies.len(), 1, "sent exactly once");
    assert_eq!(copies[0].2, sent["email"]["message_id"].as_str().unwrap_or_default());
}
