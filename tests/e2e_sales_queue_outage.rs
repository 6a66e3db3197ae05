//! The sales queue refuses sends at the moment of approval: the approval still commits, its
//! event waits in the outbox for its retry time, and the sweep delivers it exactly once — one
//! shipment, one invoice. Its own test binary: it shrinks the shared sales queue, which would
//! refuse the approvals of tests running beside it (test binaries run one after the other).

use e2e_tests::desk::desk;
use serde_json::json;

#[tokio::test]
async fn an_approval_during_a_sales_queue_outage_is_delivered_once_by_the_sweep() {
    let d = desk().await;
    let val = d.validator("val-1");
    // The sales queue refuses the send at the moment of approval (its maximum message size is
    // shrunk below the event's size): the approval still commits, and the sweep delivers the
    // event once the queue is back — exactly once.
    let (second, _) = d.ready_presale(8).await;
    let claimed = d.post(&val, "/reviews/next", None).await;
    assert_eq!(claimed.body["presale"]["id"].as_str(), Some(second.as_str()));
    let version = claimed.body["presale"]["version"].as_u64().expect("version");
    let queue = d.env.resource("SalesQueue").reference.clone();
    let set_max = |bytes: &'static str| {
        d.env
            .sqs
            .set_queue_attributes()
            .queue_url(&queue)
            .attributes(aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize, bytes)
            .send()
    };
    set_max("1024").await.expect("shrink the queue");
    let approved = d
        .post(
            &val,
            &format!("/presales/{second}/review"),
            Some(json!({"decision": "approve", "version": version, "override_reason": "revisado"})),
        )
        .await;
    let down_sweep = d
        .env
        .send(
            d.env
                .request("POST", "/_local/functions/PresaleReviewFunction/invoke")
                .json(&json!({"source": "aws.scheduler"})),
        )
        .await;
    set_max("262144").await.expect("restore the queue");
    assert_eq!(
        (approved.status, approved.body["status"].as_str()),
        (200, Some("APPROVED")),
        "{:?}",
        approved.body
    );
    assert!(
        down_sweep.body["failed"].as_u64().is_some_and(|n| n >= 1),
        "the sweep during the outage fails too: {:?}",
        down_sweep.body
    );
    assert_eq!(down_sweep.body["sent"].as_u64(), Some(0), "{:?}", down_sweep.body);
    // Failed, the message waits for its retry time; the sweep after it delivers.
    assert_eq!(d.rewind_outbox("PresalesTable", &second).await, 1);
    d.sweep().await;
    d.sweep().await;
    let second_sale = format!("S-{second}");
    d.wait_shipment(&second_sale).await;
    d.env.drain("SalesQueue").await;
    d.env.drain("BillingQueue").await;
    d.wait_invoice(&second_sale).await;
    assert_eq!(
        d.env.invoices_of_client(&d.client).await.len(),
        1,
        "the sale invoiced once after the outage"
    );

    // Then the billing queue refuses: the shipment is planned all the same, its
    // InvoiceRequested waits in the shipments table's outbox, and fulfillment-dispatch's own
    // sweep delivers it once the queue is back.
    let (third, _) = d.ready_presale(8).await;
    let billing = d.env.resource("BillingQueue").reference.clone();
    let set_billing_max = |bytes: &'static str| {
        d.env
            .sqs
            .set_queue_attributes()
            .queue_url(&billing)
            .attributes(aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize, bytes)
            .send()
    };
    set_billing_max("1024").await.expect("shrink the billing queue");
    let third_sale = d.approve(&val, &third).await;
    d.wait_shipment(&third_sale).await;
    d.env.drain("SalesQueue").await;
    let dispatch_sweep = || {
        d.env.send(
            d.env
                .request("POST", "/_local/functions/FulfillmentDispatchFunction/invoke")
                .json(&json!({"source": "aws.scheduler"})),
        )
    };
    let failed = dispatch_sweep().await;
    set_billing_max("262144").await.expect("restore the billing queue");
    assert_eq!(failed.body["sent"].as_u64(), Some(0), "{:?}", failed.body);
    assert!(
        d.env.invoice_of_sale(&third_sale).await.is_none(),
        "no invoice while billing refused"
    );
    assert_eq!(d.rewind_outbox("ShipmentsTable", &third_sale).await, 1);
    let swept = dispatch_sweep().await;
    assert!(swept.body["sent"].as_u64().is_some_and(|n| n >= 1), "{:?}", swept.body);
    d.env.drain("BillingQueue").await;
    d.wait_invoice(&third_sale).await;
    assert_eq!(d.env.invoices_of_client(&d.client).await.len(), 2);
}
