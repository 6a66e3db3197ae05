//! The SQS edge of a consumer: a batch in, each message processed on its own, partial failures
//! out (`ReportBatchItemFailures`); and the event envelope as consumers open it.

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Run `process` on every message's body; a failed message is reported alone, so it alone is
/// retried (and dead-lettered) while its batch-mates are done.
pub async fn each_message<T, E, Fut>(event: SqsEvent, mut process: impl FnMut(String) -> Fut) -> SqsBatchResponse
where
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        if let Err(error) = process(message.body.unwrap_or_default()).await {
            tracing::error!(message_id = %id, error = %error, "message not processed; it stays for a retry");
            // An empty identifier would fail the whole batch: only report real ids.
            if !id.is_empty() {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

/// An event's body and correlation id, out of the envelope [`crate::outbox::envelope`] wrote.
#[derive(Debug)]
pub struct Opened<T> {
    pub body: T,
    pub correlation_id: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    correlation_id: Option<String>,
    body: serde_json::Value,
}

/// Open an envelope of type `kind`; why not, when it is not one (a poison message).
pub fn open<T: DeserializeOwned>(raw: &str, kind: &str) -> Result<Opened<T>, String> {
    let envelope: Envelope = serde_json::from_str(raw).map_err(|e| format!("not an event envelope: {e}"))?;
    if envelope.kind != kind {
        return Err(format!("unexpected event type {}", envelope.kind));
    }
    let body = serde_json::from_value(envelope.body).map_err(|e| format!("unreadable {kind}: {e}"))?;
    Ok(Opened {
        body,
        correlation_id: envelope.correlation_id,
    })
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::sqs::SqsMessage;

    use super::*;

    fn message(id: Option<&str>, body: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = id.map(str::to_owned);
        message.body = Some(body.to_owned());
        message
    }

    #[tokio::test]
    async fn only_failed_messages_with_ids_are_reported() {
        let mut event = SqsEvent::default();
        event.records = vec![
            message(Some("a"), "ok"),
            message(Some("b"), "bad"),
            message(None, "bad"),
        ];
        let response = each_message(
            event,
            |body| async move { if body == "ok" { Ok(()) } else { Err("no") } },
        )
        .await;
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, vec!["b"]);
    }

    #[test]
    fn opens_only_its_own_event_type() {
        let raw = crate::outbox::envelope(
            "Ping",
            "m1",
            "c1",
            time::OffsetDateTime::UNIX_EPOCH,
            &serde_json::json!({"n": 1}),
        );
        let opened: Opened<serde_json::Value> = open(&raw, "Ping").unwrap();
        assert_eq!(
            (opened.body["n"].as_u64(), opened.correlation_id.as_deref()),
            (Some(1), Some("c1"))
        );
        assert!(
            open::<serde_json::Value>(&raw, "Pong")
                .unwrap_err()
                .contains("unexpected event type Ping")
        );
        assert!(open::<serde_json::Value>("{", "Ping").is_err());
        assert!(open::<Vec<u8>>(&raw, "Ping").unwrap_err().contains("unreadable Ping"));
    }
}
