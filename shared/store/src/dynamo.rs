//! What every DynamoDB adapter shares: error classification, attribute helpers, one-partition
//! index pages. Each table's module has its own key layout.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};

use crate::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

pub(crate) type Response = aws_sdk_dynamodb::config::http::HttpResponse;
pub(crate) type TransactError = aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

/// Map an SDK failure: transport problems and throttling may pass; anything else is ours.
pub(crate) fn sdk_error<E: ProvideErrorMetadata + std::fmt::Debug>(err: SdkError<E, Response>) -> StoreError {
    classify(&err)
}

/// [`sdk_error`] without consuming the error (retry loops still need it).
pub(crate) fn classify<E: ProvideErrorMetadata + std::fmt::Debug>(err: &SdkError<E, Response>) -> StoreError {
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or_default();
            // A 5xx without a known code (an overloaded endpoint, an emulator's crash) is
            // the service's failure, not the request's: worth retrying.
            if RETRYABLE_CODES.contains(&code) || service.raw().status().as_u16() >= 500 {
                StoreError::Unavailable(format!("{code}: {message}"))
            } else {
                StoreError::Backend(format!("{code}: {message}"))
            }
        }
        SdkError::ConstructionFailure(_) => StoreError::Backend(format!("{err:?}")),
        _ => StoreError::Unavailable(format!("{err}")),
    }
}

/// An UpdateItem refused by its condition expression (what that means is the caller's).
pub(crate) fn update_condition_failed(
    err: &SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, Response>,
) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.is_conditional_check_failed_exception())
}

/// Why a transaction did not commit: cancelled with a reason per item, or not run at all.
#[derive(Debug)]
pub(crate) enum TransactFailure {
    Cancelled(Cancellation),
    Failed(StoreError),
}

/// The per-item reasons of a cancelled transaction ("ConditionalCheckFailed",
/// "TransactionConflict", "None"…), in the order of its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cancellation(Vec<String>);

impl Cancellation {
    /// Item `index`'s condition failed.
    pub(crate) fn condition_failed(&self, index: usize) -> bool {
        self.0.get(index).is_some_and(|r| r == "ConditionalCheckFailed")
    }

    pub(crate) fn any_condition_failed(&self) -> bool {
        self.0.iter().any(|r| r == "ConditionalCheckFailed")
    }

    /// Another transaction touched the same items: worth retrying.
    pub(crate) fn conflicted(&self) -> bool {
        self.0.iter().any(|r| r == "TransactionConflict")
    }
}

/// A cancellation the caller did not expect: it may pass on a retry.
impl From<Cancellation> for StoreError {
    fn from(cancellation: Cancellation) -> Self {
        StoreError::Unavailable(format!("transaction cancelled: {:?}", cancellation.0))
    }
}

/// Run `items` as one transaction.
pub(crate) async fn transact(client: &Client, items: Vec<TransactWriteItem>) -> Result<(), TransactFailure> {
    let err = match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => return Ok(()),
        Err(err) => err,
    };
    if let SdkError::ServiceError(service) = &err
        && let TransactError::TransactionCanceledException(cancel) = service.err()
    {
        let reasons = cancel
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_owned())
            .collect();
        return Err(TransactFailure::Cancelled(Cancellation(reasons)));
    }
    Err(TransactFailure::Failed(sdk_error(err)))
}

/// How a transaction is tried again after losing a race: exponential backoff from 20 ms to
/// 400 ms with jitter, so workers that collided spread out instead of colliding again.
pub(crate) fn contention_backoff(retries: usize) -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(20))
        .with_max_delay(std::time::Duration::from_millis(400))
        .with_max_times(retries)
        .with_jitter()
}

/// `transact`, run again up to `retries` times while it fails only because another transaction
/// touched the same items (no condition failed) or DynamoDB was unavailable. What is left is
/// the caller's to read: a failed condition, or a conflict that outlasted the retries.
pub(crate) async fn transact_retrying(
    client: &Client,
    items: &[TransactWriteItem],
    retries: usize,
) -> Result<(), TransactFailure> {
    use backon::Retryable;
    (|| transact(client, items.to_vec()))
        .retry(contention_backoff(retries))
        .when(|failure| match failure {
            TransactFailure::Cancelled(c) => c.conflicted() && !c.any_condition_failed(),
            TransactFailure::Failed(StoreError::Unavailable(_)) => true,
            TransactFailure::Failed(_) => false,
        })
        .await
}

/// An instant as a sortable integer (Unix nanoseconds), for keys and numeric conditions.
pub(crate) fn nanos(at: time::OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos()
}

/// One item by its key, read consistently (state changes are conditioned on what it says).
pub(crate) async fn get_item(
    client: &Client,
    table: &str,
    pk: impl Into<String>,
    sk: impl Into<String>,
) -> Result<Option<Item>, StoreError> {
    let output = client
        .get_item()
        .table_name(table)
        .key("pk", s(pk))
        .key("sk", s(sk))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(output.item)
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn string_attr(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// A whole number attribute of `item`; an absent one is zero (running amounts start at nothing).
pub(crate) fn number_attr(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        None => Ok(0),
        Some(value) => value
            .as_n()
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("{name} is not a number"))),
    }
}

/// A condition that the number attribute `name` still holds `seen` (an absent one holds
/// zero), with `:seen_{name}` as its value placeholder.
pub(crate) fn unchanged(name: &str, seen: i64) -> String {
    if seen == 0 {
        format!("(attribute_not_exists({name}) OR {name} = :seen_{name})")
    } else {
        format!("{name} = :seen_{name}")
    }
}

pub(crate) fn corrupt(what: &str) -> impl Fn(serde_dynamo::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

/// A transaction item putting `item` into `table`, under `condition` if any
/// (`attribute_not_exists(pk)`: create only).
pub(crate) fn transact_put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    OldestFirst,
    NewestFirst,
}

/// The first page (at most `limit` items, 1..=100) of one partition of an index, in sort-key
/// order.
pub(crate) async fn index_page(
    client: &Client,
    table: &str,
    index: &str,
    pk_name: &str,
    pk_value: &str,
    order: Order,
    limit: u32,
) -> Result<Vec<Item>, StoreError> {
    let output = client
        .query()
        .table_name(table)
        .index_name(index)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", pk_name)
        .expression_attribute_values(":pk", s(pk_value))
        .scan_index_forward(order == Order::OldestFirst)
        .limit(page_size(limit))
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(output.items.unwrap_or_default())
}

/// A query's page size: what the caller asked for, within 1..=100.
pub(crate) fn page_size(limit: u32) -> i32 {
    i32::try_from(limit.clamp(1, 100)).unwrap_or(25)
}

/// Every item `query` matches, following its pages: a partition read whole (never a scan), so a
/// partition that outgrows one 1 MB page is still read entirely.
pub(crate) async fn query_all(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let output = query
            .clone()
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        items.extend(output.items.unwrap_or_default());
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}

/// An index position as an opaque cursor: the last item's table and index keys.
pub(crate) fn encode_cursor(key: &Item) -> Option<String> {
    use base64::Engine;
    let plain: BTreeMap<&str, &str> = key
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "pk" | "sk") || k.starts_with("gsi"))
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
        .collect();
    let json = serde_json::to_vec(&plain).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

/// A cursor is only valid for the partition it came from, and within the query's range
/// (`sk_max`): anything else is refused here, before DynamoDB would refuse it as a bad request.
pub(crate) fn decode_cursor(
    raw: &str,
    pk_name: &str,
    pk_value: &str,
    sk_name: &str,
    sk_max: Option<&str>,
) -> Result<Item, StoreError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.as_bytes())
        .map_err(|_| StoreError::InvalidCursor)?;
    let plain: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
    let expected = ["pk", "sk", pk_name, sk_name];
    let in_range = plain
        .get(sk_name)
        .is_some_and(|sk| sk_max.is_none_or(|max| sk.as_str() <= max));
    if plain.len() != expected.len()
        || !expected
            .iter()
            .all(|k| plain.get(*k).is_some_and(|v| !v.is_empty() && v.len() <= 1024))
        || plain.get(pk_name).map(String::as_str) != Some(pk_value)
        || !in_range
    {
        return Err(StoreError::InvalidCursor);
    }
    Ok(plain.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
}

/// BatchGetItem takes at most 100 keys.
const BATCH: usize = 100;
/// Rounds of unprocessed keys (throttling) retried before the read gives up.
const BATCH_ROUNDS: u32 = 8;

/// Every item of `table` under `keys` (pk + sk), with only `projection` (every attribute without one), in batches of 100;
/// keys the service leaves unprocessed (throttling) are asked again a few times.
pub(crate) async fn batch_get(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    projection: Option<&str>,
) -> Result<Vec<Item>, StoreError> {
    let mut found = Vec::new();
    for chunk in keys.chunks(BATCH) {
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .set_projection_expression(projection.map(str::to_owned))
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))?,
        );
        let mut round = 0;
        while let Some(request) = pending.take() {
            if round == BATCH_ROUNDS {
                return Err(StoreError::Unavailable(format!(
                    "{table}: keys still unprocessed after {BATCH_ROUNDS} rounds"
                )));
            }
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << round.min(5))).await;
            }
            round += 1;
            let mut output = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(sdk_error)?;
            if let Some(items) = output.responses.as_mut().and_then(|r| r.remove(table)) {
                found.extend(items);
            }
            pending = output
                .unprocessed_keys
                .and_then(|mut left| left.remove(table))
                .filter(|left| !left.keys().is_empty());
        }
    }
    Ok(found)
}

/// The items that `entries` (index entries, or any items with the table's `pk` and `sk`) name,
/// read whole with [`batch_get`], in `entries`' order; one gone meanwhile is left out. For
/// indexes that project keys and filter attributes rather than whole items (issue 14).
pub(crate) async fn read_whole(client: &Client, table: &str, entries: &[Item]) -> Result<Vec<Item>, StoreError> {
    fn key_of(item: &Item) -> Option<(String, String)> {
        Some((
            item.get("pk")?.as_s().ok()?.clone(),
            item.get("sk")?.as_s().ok()?.clone(),
        ))
    }
    let order = entries
        .iter()
        .map(|entry| {
            key_of(entry).ok_or_else(|| StoreError::Corrupt(format!("{table}: an index entry without its key")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if order.is_empty() {
        return Ok(Vec::new());
    }
    let keys = order
        .iter()
        .map(|(pk, sk)| Item::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))]))
        .collect();
    let mut found: HashMap<(String, String), Item> = batch_get(client, table, keys, None)
        .await?
        .into_iter()
        .filter_map(|item| Some((key_of(&item)?, item)))
        .collect();
    Ok(order.iter().filter_map(|key| found.remove(key)).collect())
}

/// Requests a `BatchWriteItem` may carry.
const WRITE_BATCH: usize = 25;

/// Every put and delete of `writes` on `table`, in batches of 25; requests the service leaves
/// unprocessed (throttling) are sent again a few times, then the call fails (the caller redoes
/// the whole idempotent write).
pub(crate) async fn batch_write(
    client: &Client,
    table: &str,
    writes: Vec<aws_sdk_dynamodb::types::WriteRequest>,
) -> Result<(), StoreError> {
    for chunk in writes.chunks(WRITE_BATCH) {
        let mut pending = chunk.to_vec();
        let mut round = 0;
        while !pending.is_empty() {
            if round == BATCH_ROUNDS {
                return Err(StoreError::Unavailable(format!(
                    "{table}: writes still unprocessed after {BATCH_ROUNDS} rounds"
                )));
            }
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << round.min(5))).await;
            }
            round += 1;
            let output = client
                .batch_write_item()
                .request_items(table, std::mem::take(&mut pending))
                .send()
                .await
                .map_err(sdk_error)?;
            pending = output
                .unprocessed_items
                .and_then(|mut left| left.remove(table))
                .unwrap_or_default();
        }
    }
    Ok(())
}
