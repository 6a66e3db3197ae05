//! The SQS edge of a consumer: a batch in, each message processed on its own in a tracing span
//! that carries its correlation id, partial failures out (`ReportBatchItemFailures`).

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use backoffice_domain::wire;
use tracing::Instrument;

/// Run `process` on every message's body; a failed message is reported alone, so it alone is
/// retried (and dead-lettered) while its batch-mates are done.
///
/// Each message runs in a `message` span with its SQS id and the envelope's correlation id (empty
/// for messages without one, such as S3 notifications: a handler that learns it later records it
/// with `Span::current().record("correlation_id", …)`), so one pre-sale's log lines join across
/// functions by one id.
pub async fn each_message<T, E, Fut>(event: SqsEvent, process: impl FnMut(String) -> Fut) -> SqsBatchResponse
where
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    each_message_in_time(event, || false, process).await
}

/// [`each_message`], checking `out_of_time` before each message: once it says so, this message
/// and the rest are reported as failures, untouched, so they come back on their own instead of
/// the whole batch timing out (and every message of it being retried).
pub async fn each_message_in_time<T, E, Fut>(
    event: SqsEvent,
    out_of_time: impl Fn() -> bool,
    mut process: impl FnMut(String) -> Fut,
) -> SqsBatchResponse
where
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let mut response = SqsBatchResponse::default();
    let mut stopped = false;
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        if stopped || out_of_time() {
            if !stopped {
                tracing::warn!(message_id = %id, "close to the deadline: this message and the rest come back later");
                stopped = true;
            }
            if !id.is_empty() {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
            continue;
        }
        let body = message.body.unwrap_or_default();
        let span = tracing::info_span!(
            "message",
            message_id = %id,
            correlation_id = wire::peek_correlation_id(&body).as_deref().unwrap_or_default(),
        );
        let outcome = process(body).instrument(span.clone()).await;
        // Failures are what ends in the dead-letter queue once their receives are spent.
        let result = if outcome.is_ok() { "processed" } else { "failed" };
        metrics::counter!("Messages", "Result" => result).increment(1);
        if let Err(error) = outcome {
            span.in_scope(|| tracing::error!(error = %error, "message not processed; it stays for a retry"));
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

#[cfg(test)]
mod tests {
    use aws_lambda_events::sqs::SqsMessage;

    use super::*;
    use crate::testing::LogCapture;

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

    #[tokio::test]
    async fn every_log_line_of_a_message_carries_its_correlation_id() {
        let captured = LogCapture::global();
        let mut event = SqsEvent::default();
        event.records = vec![
            message(
                Some("span-test-m1"),
                r#"{"type":"Ping","correlation_id":"req-42","body":{}}"#,
            ),
            message(Some("span-test-m2"), "not json"),
        ];
        each_message(event, |body| async move {
            tracing::info!("working");
            if body.starts_with('{') { Ok(()) } else { Err("poison") }
        })
        .await;
        let lines = captured.lines();
        let spans: Vec<(String, String, String)> = lines
            .iter()
            .filter(|l| {
                l["span"]["message_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("span-test-"))
            })
            .map(|l| {
                let field = |name: &str| l["span"][name].as_str().unwrap_or_default().to_owned();
                (
                    l["message"].as_str().unwrap_or_default().to_owned(),
                    field("message_id"),
                    field("correlation_id"),
                )
            })
            .collect();
        assert_eq!(
            spans,
            vec![
                ("working".to_owned(), "span-test-m1".to_owned(), "req-42".to_owned()),
                ("working".to_owned(), "span-test-m2".to_owned(), String::new()),
                (
                    "message not processed; it stays for a retry".to_owned(),
                    "span-test-m2".to_owned(),
                    String::new()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn messages_left_when_time_runs_out_come_back_untouched() {
        let mut event = SqsEvent::default();
        event.records = vec![
            message(Some("a"), "1"),
            message(Some("b"), "2"),
            message(Some("c"), "3"),
        ];
        let seen = std::sync::Mutex::new(Vec::new());
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let response = each_message_in_time(
            event,
            // Time runs out after the first message.
            || calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1,
            |body| {
                seen.lock().expect("lock").push(body);
                async { Ok::<(), String>(()) }
            },
        )
        .await;
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, vec!["b", "c"]);
        assert_eq!(*seen.lock().expect("lock"), vec!["1".to_owned()]);
    }
}
