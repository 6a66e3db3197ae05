//! The outbox relay, one for every producer: a message is committed with its state change
//! first ([`backoffice_store::outbox`]), sent afterwards and marked sent; a scheduled sweep
//! re-sends whatever is still pending, so an event is never lost (consumers de-duplicate on
//! business keys, because a crash between send and mark sends twice).

use std::collections::HashMap;

use async_trait::async_trait;
use backoffice_store::StoreError;
use backoffice_store::outbox::{Outbox, OutboxMessage};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

#[async_trait]
pub trait Publisher: Send + Sync {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError>;
}

/// Sends each message to the queue URL of its `destination` ("sales", "billing").
pub struct SqsPublisher {
    client: aws_sdk_sqs::Client,
    queues: HashMap<String, String>,
}

impl SqsPublisher {
    pub fn new(client: aws_sdk_sqs::Client, queues: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            client,
            queues: queues.into_iter().collect(),
        }
    }
}

#[async_trait]
impl Publisher for SqsPublisher {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        let url = self
            .queues
            .get(&message.destination)
            .ok_or_else(|| PublishError(format!("no queue for destination {}", message.destination)))?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(&message.body)
            .send()
            .await
            .map_err(|e| PublishError(format!("{e}")))?;
        Ok(())
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub sent: usize,
    pub failed: usize,
}

/// How many pending messages one sweep takes.
pub const SWEEP_BATCH: u32 = 100;

/// Send one committed message and mark it sent. `false` if the send failed: the message stays
/// pending for the sweep. A failed mark only means the sweep sends it once more.
pub async fn send<O, P>(outbox: &O, publisher: &P, message: &OutboxMessage) -> bool
where
    O: Outbox + ?Sized,
    P: Publisher + ?Sized,
{
    match publisher.publish(message).await {
        Ok(()) => {
            if let Err(e) = outbox.mark_sent(&message.message_id).await {
                tracing::warn!(message_id = %message.message_id, error = %e, "sent, but not marked sent");
            }
            true
        }
        Err(e) => {
            tracing::warn!(message_id = %message.message_id, error = %e, "send failed; the sweep will retry");
            false
        }
    }
}

/// Re-send every message still pending, oldest first (run on a schedule).
pub async fn sweep<O, P>(outbox: &O, publisher: &P) -> Result<SweepReport, StoreError>
where
    O: Outbox + ?Sized,
    P: Publisher + ?Sized,
{
    let mut report = SweepReport::default();
    for message in outbox.pending_outbox(SWEEP_BATCH).await? {
        if send(outbox, publisher, &message).await {
            report.sent += 1;
        } else {
            report.failed += 1;
        }
    }
    tracing::info!(sent = report.sent, failed = report.failed, "outbox sweep");
    Ok(report)
}
