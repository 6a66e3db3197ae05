//! The outbox: an event committed in the same transaction as the state change that caused it,
//! kept on a sparse index until its send is confirmed. Any table with an `outbox-pending` index
//! (gsi6) can hold one; the relay in `backoffice-edge` sends, marks and sweeps.
//!
//! On the index, `gsi6pk` is `OUTBOX#PENDING` and `gsi6sk` is `{due:020}#{id}`: due first at
//! creation, then at the retry schedule's next time after each failed send, so messages that
//! keep failing move behind newer ones. Spent, a message moves to `OUTBOX#PARKED` (still on the
//! index, listed for operators; redrive: set `gsi6pk` back to `OUTBOX#PENDING`).
//!
//! The index holds keys only: every message enters and leaves it, nearly always within the
//! second, and a copy of the message there cost its size twice (issue 14). The sweeps, which
//! find it empty nearly always, read the messages of a page in one `BatchGetItem`.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
pub use backoffice_domain::events::OutboxMessage;
pub use backoffice_domain::retry::Retry;
use time::OffsetDateTime;

use crate::StoreError;
use crate::dynamo::{Item, Order, corrupt, index_page, nanos, read_whole, s, sdk_error, transact_put};

const OUTBOX_INDEX: &str = "outbox-pending";
const OUTBOX_PENDING: &str = "OUTBOX#PENDING";
const OUTBOX_PARKED: &str = "OUTBOX#PARKED";

/// What the relay needs from a table that holds an outbox.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Messages not yet confirmed sent and due at `now`, soonest due first.
    async fn pending_outbox(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Confirm a message sent: it leaves the pending index.
    async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError>;

    /// Count a failed send of `message` (as read, with its `attempts`) and make it due again
    /// at the retry's time, or park it. A message sent or counted meanwhile is left alone.
    async fn mark_failed(&self, message: &OutboxMessage, retry: Retry) -> Result<(), StoreError>;

    /// Messages whose attempts are spent, oldest first, for operators.
    async fn parked_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;
}

fn due_key(due_ns: i128, message_id: &str) -> String {
    format!("{due_ns:020}#{message_id}")
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
        s(due_key(i128::from(message.created_at_ns), &message.message_id)),
    );
    transact_put(table, item, Some("attribute_not_exists(pk)"))
}

pub(crate) async fn pending_outbox(
    client: &Client,
    table: &str,
    now: OffsetDateTime,
    limit: u32,
) -> Result<Vec<OutboxMessage>, StoreError> {
    // `{due:020}#{id}` < `{now + 1ns:020}` exactly when due <= now.
    let output = client
        .query()
        .table_name(table)
        .index_name(OUTBOX_INDEX)
        .key_condition_expression("gsi6pk = :pk AND gsi6sk < :bound")
        .expression_attribute_values(":pk", s(OUTBOX_PENDING))
        .expression_attribute_values(":bound", s(format!("{:020}", nanos(now) + 1)))
        .limit(crate::dynamo::page_size(limit))
        .send()
        .await
        .map_err(sdk_error)?;
    messages(client, table, output.items.unwrap_or_default()).await
}

/// The messages an index page names, in the page's order; one sent or gone meanwhile is left
/// out.
async fn messages(client: &Client, table: &str, entries: Vec<Item>) -> Result<Vec<OutboxMessage>, StoreError> {
    read_whole(client, table, &entries)
        .await?
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading outbox message")))
        .collect()
}

pub(crate) async fn parked_outbox(client: &Client, table: &str, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
    let items = index_page(
        client,
        table,
        OUTBOX_INDEX,
        "gsi6pk",
        OUTBOX_PARKED,
        Order::OldestFirst,
        limit,
    )
    .await?;
    messages(client, table, items).await
}

pub(crate) async fn mark_failed(
    client: &Client,
    table: &str,
    message: &OutboxMessage,
    retry: Retry,
) -> Result<(), StoreError> {
    let attempts = message.attempts.saturating_add(1);
    let update = client
        .update_item()
        .table_name(table)
        .key("pk", s(format!("OUTBOX#{}", message.message_id)))
        .key("sk", s("MESSAGE"))
        // Still pending, and nobody counted this attempt already (two sweeps overlapping).
        .condition_expression("gsi6pk = :pending AND (attempts = :seen OR attribute_not_exists(attempts))")
        .expression_attribute_values(":pending", s(OUTBOX_PENDING))
        .expression_attribute_values(":seen", AttributeValue::N(message.attempts.to_string()))
        .expression_attribute_values(":n", AttributeValue::N(attempts.to_string()));
    let update = match retry {
        Retry::At(due) => update
            .update_expression("SET attempts = :n, gsi6sk = :due")
            .expression_attribute_values(":due", s(due_key(nanos(due), &message.message_id))),
        Retry::Park => update
            .update_expression("SET attempts = :n, gsi6pk = :parked, parked = :yes")
            .expression_attribute_values(":parked", s(OUTBOX_PARKED))
            .expression_attribute_values(":yes", AttributeValue::Bool(true)),
    };
    match update.send().await {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(()),
        Err(e) => Err(sdk_error(e)),
    }
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

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryOutbox;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum State {
        Pending { due_ns: i128 },
        Sent,
        Parked,
    }

    /// The outbox of an in-memory twin, with the DynamoDB adapter's rules: due order, the
    /// retry schedule, parking, and "sent" as final.
    #[derive(Debug, Default, Clone)]
    pub struct MemoryOutbox {
        entries: BTreeMap<String, (OutboxMessage, State)>,
    }

    impl MemoryOutbox {
        pub fn contains(&self, message_id: &str) -> bool {
            self.entries.contains_key(message_id)
        }

        pub fn insert(&mut self, message: &OutboxMessage) {
            let due_ns = i128::from(message.created_at_ns);
            self.entries
                .insert(message.message_id.clone(), (message.clone(), State::Pending { due_ns }));
        }

        pub fn pending(&self, now: OffsetDateTime, limit: u32) -> Vec<OutboxMessage> {
            let mut due: Vec<(i128, &OutboxMessage)> = self
                .entries
                .values()
                .filter_map(|(m, state)| match state {
                    State::Pending { due_ns } if *due_ns <= nanos(now) => Some((*due_ns, m)),
                    _ => None,
                })
                .collect();
            due.sort_by(|a, b| (a.0, &a.1.message_id).cmp(&(b.0, &b.1.message_id)));
            due.into_iter().take(limit as usize).map(|(_, m)| m.clone()).collect()
        }

        pub fn parked(&self) -> Vec<OutboxMessage> {
            self.entries
                .values()
                .filter(|(_, state)| *state == State::Parked)
                .map(|(m, _)| m.clone())
                .collect()
        }

        pub fn mark_sent(&mut self, message_id: &str) {
            if let Some(entry) = self.entries.get_mut(message_id) {
                entry.1 = State::Sent;
            }
        }

        pub fn mark_failed(&mut self, message: &OutboxMessage, retry: Retry) {
            if let Some((stored, state)) = self.entries.get_mut(&message.message_id)
                && matches!(state, State::Pending { .. })
                && stored.attempts == message.attempts
            {
                stored.attempts += 1;
                *state = match retry {
                    Retry::At(due) => State::Pending { due_ns: nanos(due) },
                    Retry::Park => State::Parked,
                };
            }
        }
    }
}
