//! SQS event sources: one poller per `Type: SQS` event, delivering batches as an `SqsEvent` and
//! settling them as Lambda's event source mapping does (see [`settle`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::resources::Resources;
use crate::runtime_api::{InvocationOutcome, Runtime};
use crate::template::SqsSource;

/// What to do with each message of a batch after the invocation: delete it, or make it visible
/// again (after the retry delay). Both hold message ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    pub delete: Vec<String>,
    pub retry: Vec<String>,
}

/// Lambda's rules for settling an SQS batch:
/// - an error, timeout or crash fails the whole batch;
/// - a success without `ReportBatchItemFailures` deletes the whole batch;
/// - with it, the response's `batchItemFailures[].itemIdentifier` stay (are retried) and the rest
///   are deleted; an empty/null response, or a null/empty/missing `batchItemFailures`, means all
///   succeeded; invalid JSON, or an itemIdentifier that is empty, missing or not a message of
///   the batch, fails the whole batch.
pub fn settle(batch_ids: &[String], outcome: &InvocationOutcome, report_failures: bool) -> Settlement {
    let all_fail = || Settlement {
        delete: Vec::new(),
        retry: batch_ids.to_vec(),
    };
    let all_ok = || Settlement {
        delete: batch_ids.to_vec(),
        retry: Vec::new(),
    };
    let InvocationOutcome::Ok(payload) = outcome else {
        return all_fail();
    };
    if !report_failures {
        return all_ok();
    }
    if payload.iter().all(u8::is_ascii_whitespace) {
        return all_ok();
    }
    let Ok(response) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return all_fail();
    };
    let failures = match &response {
        serde_json::Value::Null => return all_ok(),
        serde_json::Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(serde_json::Value::Null) => return all_ok(),
            Some(serde_json::Value::Array(items)) => items,
            Some(_) => return all_fail(),
        },
        _ => return all_fail(),
    };
    let known: HashSet<&str> = batch_ids.iter().map(String::as_str).collect();
    let mut failed = HashSet::new();
    for item in failures {
        match item.get("itemIdentifier").and_then(serde_json::Value::as_str) {
            Some(id) if !id.is_empty() && known.contains(id) => {
                failed.insert(id.to_owned());
            }
            _ => return all_fail(),
        }
    }
    let (retry, delete): (Vec<String>, Vec<String>) = batch_ids.iter().cloned().partition(|id| failed.contains(id));
    Settlement { delete, retry }
}

/// An SQS client for the emulator: endpoint and region from resources.json, static
/// credentials "testing".
pub async fn client(resources: &Resources) -> aws_sdk_sqs::Client {
    let credentials =
        aws_sdk_sqs::config::Credentials::new("testing", "testing", Some("testing".to_owned()), None, "local-gateway");
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(resources.region.clone()))
        .credentials_provider(credentials);
    if let Some(endpoint) = &resources.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    aws_sdk_sqs::Client::new(&loader.load().await)
}

/// One poller.
#[derive(Clone)]
pub struct Poller {
    pub client: aws_sdk_sqs::Client,
    pub runtime: Arc<Runtime>,
    pub function: String,
    pub source: SqsSource,
    pub region: String,
    pub retry_delay_secs: i32,
}

/// Starts a poller per SQS event source of every function; they stop when `stop` turns true.
pub fn spawn_pollers(
    client: &aws_sdk_sqs::Client,
    runtime: &Arc<Runtime>,
    resources: &Resources,
    retry_delay_secs: u64,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let sources: Vec<(String, SqsSource)> = runtime
        .functions()
        .flat_map(|f| f.sqs_sources.iter().map(|s| (f.logical_id.clone(), s.clone())))
        .collect();
    for (function, source) in sources {
        let poller = Poller {
            client: client.clone(),
            runtime: runtime.clone(),
            function,
            source,
            region: resources.region.clone(),
            retry_delay_secs: i32::try_from(retry_delay_secs).unwrap_or(i32::MAX).min(43_200),
        };
        tracing::info!(
            function = %poller.function,
            "polling {} (batch {}, window {}s{})",
            poller.source.queue_url,
            poller.source.batch_size,
            poller.source.batching_window_secs,
            if poller.source.report_batch_item_failures { ", ReportBatchItemFailures" } else { "" }
        );
        handles.push(tokio::spawn(poller.run(stop.clone())));
    }
    handles
}

impl Poller {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(500);
        let mut last_error: Option<String> = None;
        while !*stop.borrow() {
            match self.gather(&stop).await {
                Ok(batch) => {
                    if last_error.take().is_some() {
                        tracing::info!(function = %self.function, "polling {} again", self.source.queue_url);
                    }
                    backoff = Duration::from_millis(500);
                    if !batch.is_empty() {
                        self.deliver(batch).await;
                    }
                }
                Err((batch, error)) => {
                    if !batch.is_empty() {
                        self.deliver(batch).await;
                    }
                    if last_error.as_deref() != Some(error.as_str()) {
                        tracing::warn!(function = %self.function, "receiving from {}: {error} (retrying)", self.source.queue_url);
                        last_error = Some(error);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Up to `batch_size` messages, gathered within the batching window (counted from the
    /// first message). On a receive error, what was gathered so far and the error.
    async fn gather(&self, stop: &watch::Receiver<bool>) -> Result<Vec<Message>, (Vec<Message>, String)> {
        let batch_size = self.source.batch_size as usize;
        let window = Duration::from_secs(self.source.batching_window_secs);
        let mut batch: Vec<Message> = Vec::new();
        let mut seen = HashSet::new();
        let mut window_end = tokio::time::Instant::now() + window;
        loop {
            if *stop.borrow() {
                return Ok(batch);
            }
            let want = (batch_size - batch.len()).min(10) as i32;
            let received = self
                .client
                .receive_message()
                .queue_url(&self.source.queue_url)
                .max_number_of_messages(want)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await;
            let messages = match received {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(e) => {
                    return Err((batch, aws_sdk_sqs::error::DisplayErrorContext(e).to_string()));
                }
            };
            let was_empty = batch.is_empty();
            for m in messages {
                if seen.insert(m.message_id.clone().unwrap_or_default()) {
                    batch.push(m);
                }
            }
            if was_empty && !batch.is_empty() {
                window_end = tokio::time::Instant::now() + window;
            }
            if batch.len() >= batch_size || (!batch.is_empty() && tokio::time::Instant::now() >= window_end) {
                return Ok(batch);
            }
        }
    }

    fn event(&self, batch: &[Message]) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = batch.iter().map(|m| self.record(m)).collect();
        event
    }

    fn record(&self, m: &Message) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.receipt_handle = m.receipt_handle.clone();
        record.body = m.body.clone();
        record.md5_of_body = m.md5_of_body.clone();
        record.md5_of_message_attributes = m.md5_of_message_attributes.clone();
        record.attributes = m
            .attributes
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect();
        record.message_attributes = m
            .message_attributes
            .iter()
            .flatten()
            .map(|(name, value)| {
                let mut attribute = SqsMessageAttribute::default();
                attribute.string_value = value.string_value.clone();
                attribute.binary_value = value.binary_value.as_ref().map(|b| base64_data(b.as_ref()));
                attribute.string_list_values = value.string_list_values.clone().unwrap_or_default();
                attribute.binary_list_values = value
                    .binary_list_values
                    .iter()
                    .flatten()
                    .map(|b| base64_data(b.as_ref()))
                    .collect();
                attribute.data_type = Some(value.data_type.clone());
                (name.clone(), attribute)
            })
            .collect();
        record.event_source = Some("aws:sqs".to_owned());
        record.event_source_arn = Some(self.source.queue_arn.clone());
        record.aws_region = Some(self.region.clone());
        record
    }

    async fn deliver(&self, batch: Vec<Message>) {
        let ids: Vec<String> = batch.iter().map(|m| m.message_id.clone().unwrap_or_default()).collect();
        let handles: HashMap<String, String> = batch
            .iter()
            .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
            .collect();
        let event = match serde_json::to_vec(&self.event(&batch)) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(function = %self.function, "cannot serialize the SQS event: {e}");
                return;
            }
        };
        let outcome = match self.runtime.invoke(&self.function, event).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(function = %self.function, "batch not delivered: {e}");
                InvocationOutcome::Crashed { message: e.to_string() }
            }
        };
        let settlement = settle(&ids, &outcome, self.source.report_batch_item_failures);
        let why = match &outcome {
            InvocationOutcome::Ok(_) => String::new(),
            InvocationOutcome::FunctionError { error_type, message } => format!(" ({error_type}: {message})"),
            InvocationOutcome::Timeout => " (timed out)".to_owned(),
            InvocationOutcome::Crashed { message } => format!(" (crashed: {message})"),
        };
        tracing::info!(
            "sqs {} <- {}: batch of {}, {} failed{why}",
            self.function,
            self.source.event,
            ids.len(),
            settlement.retry.len()
        );
        self.delete(&settlement.delete, &handles).await;
        self.make_visible(&settlement.retry, &handles).await;
    }

    async fn delete(&self, ids: &[String], handles: &HashMap<String, String>) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(handles.get(id)?)
                    .build()
                    .ok()
            })
            .collect();
        for chunk in entries.chunks(10) {
            let sent = self
                .client
                .delete_message_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await;
            match sent {
                Ok(out) if !out.failed.is_empty() => {
                    tracing::warn!(function = %self.function, "{} messages not deleted: {:?}", out.failed.len(), out.failed)
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(function = %self.function, "deleting messages: {}", aws_sdk_sqs::error::DisplayErrorContext(e))
                }
            }
        }
    }

    async fn make_visible(&self, ids: &[String], handles: &HashMap<String, String>) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(handles.get(id)?)
                    .visibility_timeout(self.retry_delay_secs)
                    .build()
                    .ok()
            })
            .collect();
        for chunk in entries.chunks(10) {
            let sent = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await;
            if let Err(e) = sent {
                tracing::warn!(function = %self.function, "changing message visibility: {}", aws_sdk_sqs::error::DisplayErrorContext(e));
            }
        }
    }
}

fn base64_data(bytes: &[u8]) -> Base64Data {
    let mut data = Base64Data::default();
    data.0 = bytes.to_vec();
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    fn ok(body: &str) -> InvocationOutcome {
        InvocationOutcome::Ok(body.as_bytes().to_vec())
    }

    fn s(delete: &[&str], retry: &[&str]) -> Settlement {
        Settlement {
            delete: delete.iter().map(|x| (*x).to_owned()).collect(),
            retry: retry.iter().map(|x| (*x).to_owned()).collect(),
        }
    }

    #[test]
    fn success_without_reporting_deletes_everything() {
        assert_eq!(
            settle(&ids(), &ok(r#"{"batchItemFailures":[{"itemIdentifier":"a"}]}"#), false),
            s(&["a", "b", "c"], &[])
        );
        assert_eq!(settle(&ids(), &ok("not json"), false), s(&["a", "b", "c"], &[]));
    }

    #[test]
    fn failures_fail_the_whole_batch() {
        let error = InvocationOutcome::FunctionError {
            error_type: "E".into(),
            message: "m".into(),
        };
        for outcome in [
            error,
            InvocationOutcome::Timeout,
            InvocationOutcome::Crashed { message: "x".into() },
        ] {
            assert_eq!(settle(&ids(), &outcome, true), s(&[], &["a", "b", "c"]));
            assert_eq!(settle(&ids(), &outcome, false), s(&[], &["a", "b", "c"]));
        }
    }

    #[test]
    fn reported_items_stay() {
        let body = r#"{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"c"}]}"#;
        assert_eq!(settle(&ids(), &ok(body), true), s(&["a"], &["b", "c"]));
    }

    #[test]
    fn empty_responses_mean_success() {
        for body in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":null}"#,
            r#"{"batchItemFailures":[]}"#,
            "  ",
        ] {
            assert_eq!(settle(&ids(), &ok(body), true), s(&["a", "b", "c"], &[]), "{body:?}");
        }
    }

    #[test]
    fn bad_identifiers_fail_the_whole_batch() {
        for body in [
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"itemId":"a"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"zz"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"zz"}]}"#,
            r#"{"batchItemFailures":"a"}"#,
            "not json",
            "[1]",
        ] {
            assert_eq!(settle(&ids(), &ok(body), true), s(&[], &["a", "b", "c"]), "{body:?}");
        }
    }
}
