//! The outbox: an event committed in the same transaction as the state change that caused it,
//! kept on a sparse index until its send is confirmed. Any table with an `outbox-pending` index
//! (gsi6) can hold one; the relay in `backoffice-edge` sends, marks and sweeps.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
pub use backoffice_domain::events::OutboxMessage;

use crate::StoreError;
use crate::dynamo::{Item, Order, corrupt, index_page, s, sdk_error, transact_put};

const OUTBOX_INDEX: &str = "outbox-pending";
const OUTBOX_PENDING: &str = "OUTBOX#PENDING";

/// What the relay needs from a table that holds an outbox.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Messages not yet confirmed sent, oldest first.
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Confirm a message sent: it leaves the pending index.
    async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError>;
}

/// An outbox message as a transaction item: `OUTBOX#{id}`, on the sparse `outbox-pending`
/// index until sent. Any table with that index can hold an outbox.
pub(crate) fn outbox_put(table: &str, message: &OutboxMessage) -> Result<TransactWriteItem, StoreError> {
    let mut item: Item = serde_dynamo::to_item(message).map_err(corrupt("serializing outbox message"))?;
    item.insert("pk".into(), s(format!("OUTBOX#{}", message.message_id)));
    item.insert("sk".into(), s("MESSAGE"));
    item.insert("entity".into(), s("OUTBOX"));
    item.insert("gsi6pk".into(), s(OUTBOX_PENDING));
    item.insert(
        "gsi6sk".into(),
        s(format!("{:020}#{}", message.created_at_ns, message.message_id)),
    );
    transact_put(table, item, Some("attribute_not_exists(pk)"))
}

pub(crate) async fn pending_outbox(client: &Client, table: &str, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
    let items = index_page(
        client,
        table,
        OUTBOX_INDEX,
        "gsi6pk",
        OUTBOX_PENDING,
        Order::OldestFirst,
        limit,
    )
    .await?;
    items
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading outbox message")))
        .collect()
}

pub(crate) async fn mark_sent(client: &Client, table: &str, message_id: &str) -> Result<(), StoreError> {
    // Leaving the index is what marks it sent; the message stays for the record.
    client
        .update_item()
        .table_name(table)
        .key("pk", s(format!("OUTBOX#{message_id}")))
        .key("sk", s("MESSAGE"))
        .update_expression("REMOVE gsi6pk, gsi6sk SET sent = :yes")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":yes", AttributeValue::Bool(true))
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(())
}
