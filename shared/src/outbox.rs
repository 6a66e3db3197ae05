//! Publishing outbox messages: the port, and its SQS adapter. A message is committed with its
//! state change first, sent afterwards, and marked sent; a scheduled sweep re-sends whatever is
//! still pending, so an event is never lost (and consumers de-duplicate on business keys).

use std::collections::HashMap;

use async_trait::async_trait;

use crate::store::OutboxMessage;

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

/// The JSON envelope every event travels in.
pub fn envelope(
    kind: &str,
    message_id: &str,
    correlation_id: &str,
    at: time::OffsetDateTime,
    body: &impl serde::Serialize,
) -> String {
    serde_json::json!({
        "type": kind,
        "id": message_id,
        "occurred_at": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "correlation_id": correlation_id,
        "body": body,
    })
    .to_string()
}
