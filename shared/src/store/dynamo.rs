//! DynamoDB adapters. Single-table layout per bounded context; keys and indexes are declared in
//! infra/template.yaml:
//!
//! | item                | pk                        | sk              | indexes                              |
//! |---------------------|---------------------------|-----------------|--------------------------------------|
//! | pre-sale            | `PRESALE#{id}`            | `META`          | by-campaign, by-campaign-status, by-customer-document, by-customer-phone |
//! | audit record        | `PRESALE#{id}`            | `AUDIT#{seq:010}` |                                    |
//! | call id uniqueness  | `CALL#{client}#{call_id}` | `META`          |                                      |
//! | recording version   | `RECORDING#{client}#{call_id}` | `SHA#{sha256}` |                                   |
//! | unrecognized upload | `UNRECOGNIZED#{date}`     | `{key}#{version}` |                                    |
//! | campaign config     | `CAMPAIGN#{id}`           | `CONFIG`        | (ConfigTable)                        |
//! | catalog entry       | `CAMPAIGN#{id}`           | `SKU#{sku}`     | (ConfigTable)                        |

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use base64::Engine;
use serde::Deserialize;

use crate::domain::audit::AuditRecord;
use crate::domain::catalog::{Campaign, CampaignCatalog, CatalogItem};
use crate::domain::money::{Currency, Money};
use crate::domain::presale::{Presale, PresaleId, PresaleStatus};
use crate::domain::recording::{CheckThresholds, CustomerHistory, Recording};

use super::{
    CampaignDirectory, ConflictKind, CounterDelta, CounterRow, Effects, IdempotencyBegin, IdempotencyStore,
    OutboxMessage, Page, PresaleQuery, PresaleStore, StoreError, StoredPresale,
};

pub(crate) type Item = HashMap<String, AttributeValue>;

const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

type Response = aws_sdk_dynamodb::config::http::HttpResponse;
type TransactError = aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

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

/// The per-item reasons of a cancelled transaction ("ConditionalCheckFailed",
/// "TransactionConflict", "None"…), in the order of its items; `None` if it was not cancelled.
pub(crate) fn cancellation_reasons(err: &SdkError<TransactError, Response>) -> Option<Vec<String>> {
    let SdkError::ServiceError(service) = err else {
        return None;
    };
    let TransactError::TransactionCanceledException(cancel) = service.err() else {
        return None;
    };
    Some(
        cancel
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_owned())
            .collect(),
    )
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn string_attr(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
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

// ------------------------------------------------------------------------------------------
// Pre-sales
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct DynamoPresaleStore {
    client: Client,
    table: String,
}

const BY_CAMPAIGN: &str = "by-campaign";
const BY_CAMPAIGN_STATUS: &str = "by-campaign-status";
const BY_CUSTOMER_DOCUMENT: &str = "by-customer-document";
const BY_CUSTOMER_PHONE: &str = "by-customer-phone";
const REVIEW_QUEUE: &str = "review-queue";
const OUTBOX_INDEX: &str = "outbox-pending";
const OUTBOX_PENDING: &str = "OUTBOX#PENDING";

impl DynamoPresaleStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn presale_pk(id: &PresaleId) -> String {
        format!("PRESALE#{id}")
    }

    fn call_pk(client_id: &str, call_id: &str) -> String {
        format!("CALL#{client_id}#{call_id}")
    }

    fn presale_item(presale: &Presale, audit_head: &str) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(presale).map_err(corrupt("serializing pre-sale"))?;
        // Fixed-width creation time keeps index sort keys in chronological order.
        let created = format!("{:020}#{}", presale.created_at.unix_timestamp_nanos(), presale.id);
        item.insert("pk".into(), s(Self::presale_pk(&presale.id)));
        item.insert("sk".into(), s("META"));
        item.insert("entity".into(), s("PRESALE"));
        item.insert("gsi1pk".into(), s(format!("CAMPAIGN#{}", presale.campaign_id)));
        item.insert("gsi1sk".into(), s(created.clone()));
        item.insert(
            "gsi2pk".into(),
            s(format!("CAMPAIGN#{}#STATUS#{}", presale.campaign_id, presale.status)),
        );
        item.insert("gsi2sk".into(), s(created.clone()));
        item.insert("gsi3pk".into(), s(Self::document_key(presale)));
        item.insert("gsi3sk".into(), s(created.clone()));
        item.insert(
            "gsi4pk".into(),
            s(format!(
                "PHONE#{}#{}",
                presale.client_id,
                presale.customer.phone.as_str()
            )),
        );
        item.insert("gsi4sk".into(), s(created));
        if presale.status == PresaleStatus::ReadyForReview {
            // Ascending order = highest risk first, then longest waiting.
            let urgency = 100 - u32::from(presale.risk_score.unwrap_or(0).min(100));
            let since = presale.ready_at.unwrap_or(presale.updated_at).unix_timestamp_nanos();
            item.insert("gsi5pk".into(), s(format!("REVIEW#{}", presale.client_id)));
            item.insert("gsi5sk".into(), s(format!("{urgency:03}#{since:020}#{}", presale.id)));
        }
        item.insert("audit_head".into(), s(audit_head));
        Ok(item)
    }

    fn document_key(presale: &Presale) -> String {
        let document = &presale.customer.document;
        format!("DOC#{}#{}#{}", presale.client_id, document.kind(), document.number())
    }

    fn recording_pk(client_id: &str, call_id: &str) -> String {
        format!("RECORDING#{client_id}#{call_id}")
    }

    async fn query_index(&self, index: &str, pk_name: &str, pk_value: String) -> Result<Vec<Presale>, StoreError> {
        let items = index_page(
            &self.client,
            &self.table,
            index,
            pk_name,
            &pk_value,
            Order::NewestFirst,
            50,
        )
        .await?;
        items
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading pre-sale")))
            .collect()
    }

    fn audit_item(record: &AuditRecord) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(record).map_err(corrupt("serializing audit record"))?;
        item.insert("pk".into(), s(format!("PRESALE#{}", record.subject)));
        item.insert("sk".into(), s(format!("AUDIT#{:010}", record.seq)));
        item.insert("entity".into(), s("AUDIT"));
        Ok(item)
    }

    fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        transact_put(&self.table, item, Some(condition))
    }

    /// Which of the transaction's items failed its condition, if the service said.
    fn cancelled_indexes(err: &SdkError<TransactError, Response>) -> Option<Vec<usize>> {
        let reasons = cancellation_reasons(err)?;
        Some(
            reasons
                .iter()
                .enumerate()
                .filter(|(_, r)| *r == "ConditionalCheckFailed")
                .map(|(i, _)| i)
                .collect(),
        )
    }

    fn encode_cursor(key: &Item) -> Option<String> {
        let plain: BTreeMap<&str, &str> = key
            .iter()
            .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
            .collect();
        let json = serde_json::to_vec(&plain).ok()?;
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    /// A cursor is only valid for the partition it came from: anything else is refused here,
    /// before DynamoDB would reject it with a 500-looking validation error.
    fn decode_cursor(raw: &str, pk_name: &str, pk_value: &str, sk_name: &str) -> Result<Item, StoreError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw.as_bytes())
            .map_err(|_| StoreError::InvalidCursor)?;
        let plain: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
        let expected: [&str; 4] = ["pk", "sk", pk_name, sk_name];
        if plain.len() != 4
            || !expected.iter().all(|k| plain.contains_key(*k))
            || plain.get(pk_name).map(String::as_str) != Some(pk_value)
        {
            return Err(StoreError::InvalidCursor);
        }
        Ok(plain.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
    }
}

#[async_trait]
impl PresaleStore for DynamoPresaleStore {
    async fn create(&self, presale: &Presale, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut call = Item::new();
        call.insert("pk".into(), s(Self::call_pk(&presale.client_id, &presale.call_id)));
        call.insert("sk".into(), s("META"));
        call.insert("entity".into(), s("CALL"));
        call.insert("presale_id".into(), s(presale.id.as_str()));
        let items = vec![
            self.put(Self::presale_item(presale, &audit.hash)?, "attribute_not_exists(pk)")?,
            self.put(call, "attribute_not_exists(pk)")?,
            self.put(Self::audit_item(audit)?, "attribute_not_exists(pk)")?,
        ];
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match Self::cancelled_indexes(&err) {
                Some(failed) if failed.contains(&1) => Err(StoreError::Conflict(ConflictKind::DuplicateCallId)),
                Some(failed) if !failed.is_empty() => Err(StoreError::Conflict(ConflictKind::AlreadyExists)),
                _ => Err(sdk_error(err)),
            },
        }
    }

    async fn get(&self, id: &PresaleId) -> Result<Option<StoredPresale>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(Self::presale_pk(id)))
            .key("sk", s("META"))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(item) = output.item else { return Ok(None) };
        let audit_head = string_attr(&item, "audit_head").unwrap_or_default();
        let presale: Presale = serde_dynamo::from_item(item).map_err(corrupt("reading pre-sale"))?;
        Ok(Some(StoredPresale { presale, audit_head }))
    }

    async fn save(
        &self,
        presale: &Presale,
        expected_version: u64,
        expected_status: PresaleStatus,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.save_with(presale, expected_version, expected_status, audit, &Effects::default())
            .await
    }

    async fn list(&self, query: &PresaleQuery) -> Result<Page<Presale>, StoreError> {
        let (index, pk_name, sk_name, pk_value) = match query.status {
            Some(status) => (
                BY_CAMPAIGN_STATUS,
                "gsi2pk",
                "gsi2sk",
                format!("CAMPAIGN#{}#STATUS#{status}", query.campaign_id),
            ),
            None => (
                BY_CAMPAIGN,
                "gsi1pk",
                "gsi1sk",
                format!("CAMPAIGN#{}", query.campaign_id),
            ),
        };
        let start = match &query.cursor {
            Some(raw) => Some(Self::decode_cursor(raw, pk_name, &pk_value, sk_name)?),
            None => None,
        };
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", s(pk_value))
            .scan_index_forward(false)
            .limit(page_size(query.limit))
            .set_exclusive_start_key(start);
        if let Some(agent) = &query.agent_id {
            request = request
                .filter_expression("#agent = :agent")
                .expression_attribute_names("#agent", "agent_id")
                .expression_attribute_values(":agent", s(agent));
        }
        let output = request.send().await.map_err(sdk_error)?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| serde_dynamo::from_item::<_, Presale>(item).map_err(corrupt("reading pre-sale")))
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = output.last_evaluated_key.as_ref().and_then(Self::encode_cursor);
        Ok(Page { items, next_cursor })
    }

    async fn find_by_call(&self, client_id: &str, call_id: &str) -> Result<Option<PresaleId>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(Self::call_pk(client_id, call_id)))
            .key("sk", s("META"))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match output.item.as_ref().and_then(|item| string_attr(item, "presale_id")) {
            None => Ok(None),
            Some(id) => PresaleId::parse(&id)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.detail)),
        }
    }

    async fn audit_trail(&self, id: &PresaleId) -> Result<Vec<AuditRecord>, StoreError> {
        let mut records = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :audit)")
                .expression_attribute_values(":pk", s(Self::presale_pk(id)))
                .expression_attribute_values(":audit", s("AUDIT#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            for item in output.items.unwrap_or_default() {
                records.push(serde_dynamo::from_item(item).map_err(corrupt("reading audit record"))?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(records)
    }

    async fn put_recording(&self, recording: &Recording) -> Result<bool, StoreError> {
        let mut item: Item = serde_dynamo::to_item(recording).map_err(corrupt("serializing recording"))?;
        item.insert(
            "pk".into(),
            s(Self::recording_pk(&recording.client_id, &recording.call_id)),
        );
        item.insert("sk".into(), s(format!("SHA#{}", recording.sha256)));
        item.insert("entity".into(), s("RECORDING"));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn recordings(&self, client_id: &str, call_id: &str) -> Result<Vec<Recording>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(Self::recording_pk(client_id, call_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let mut versions = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| serde_dynamo::from_item::<_, Recording>(item).map_err(corrupt("reading recording")))
            .collect::<Result<Vec<_>, _>>()?;
        versions.sort_by_key(|r| std::cmp::Reverse(r.received_at));
        Ok(versions)
    }

    async fn record_unrecognized(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        reason: &str,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("UNRECOGNIZED#{}", at.date())))
            .item("sk", s(format!("{key}#{}", version_id.unwrap_or("-"))))
            .item("entity", s("UNRECOGNIZED_RECORDING"))
            .item("bucket", s(bucket))
            .item("key", s(key))
            .item("reason", s(reason))
            .item("at", s(at.unix_timestamp().to_string()))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn customer_history(&self, presale: &Presale) -> Result<CustomerHistory, StoreError> {
        let same_document = self
            .query_index(BY_CUSTOMER_DOCUMENT, "gsi3pk", Self::document_key(presale))
            .await?;
        let same_phone = self
            .query_index(
                BY_CUSTOMER_PHONE,
                "gsi4pk",
                format!("PHONE#{}#{}", presale.client_id, presale.customer.phone.as_str()),
            )
            .await?;
        Ok(CustomerHistory {
            same_document,
            same_phone,
        })
    }

    async fn review_queue(&self, client_id: &str, limit: u32) -> Result<Vec<Presale>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(REVIEW_QUEUE)
            .key_condition_expression("gsi5pk = :pk")
            .expression_attribute_values(":pk", s(format!("REVIEW#{client_id}")))
            .limit(page_size(limit))
            .send()
            .await
            .map_err(sdk_error)?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading pre-sale")))
            .collect()
    }

    async fn save_with(
        &self,
        presale: &Presale,
        expected_version: u64,
        expected_status: PresaleStatus,
        audit: &AuditRecord,
        effects: &Effects,
    ) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::presale_item(presale, &audit.hash)?))
            .condition_expression("#version = :version AND #status = :status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":version", AttributeValue::N(expected_version.to_string()))
            .expression_attribute_values(":status", s(expected_status.as_str()))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.put(Self::audit_item(audit)?, "attribute_not_exists(pk)")?,
        ];
        if let Some(message) = &effects.outbox {
            items.push(outbox_put(&self.table, message)?);
        }
        for counter in &effects.counters {
            items.push(counter_update(&self.table, counter)?);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match Self::cancelled_indexes(&err) {
                Some(failed) if !failed.is_empty() => Err(StoreError::Conflict(ConflictKind::StaleVersion)),
                _ => Err(sdk_error(err)),
            },
        }
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        pending_outbox(&self.client, &self.table, limit).await
    }

    async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError> {
        mark_sent(&self.client, &self.table, message_id).await
    }

    async fn counters(&self, pk: &str) -> Result<Vec<CounterRow>, StoreError> {
        counter_rows(&self.client, &self.table, pk).await
    }
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
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
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

/// Every counter item of one partition, numbers only.
pub(crate) async fn counter_rows(client: &Client, table: &str, pk: &str) -> Result<Vec<CounterRow>, StoreError> {
    let output = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(pk))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(output
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|item| CounterRow {
            sk: string_attr(&item, "sk").unwrap_or_default(),
            values: item
                .iter()
                .filter_map(|(k, v)| {
                    v.as_n()
                        .ok()
                        .and_then(|n| n.parse::<i64>().ok())
                        .map(|n| (k.clone(), n))
                })
                .collect(),
        })
        .collect())
}

/// `ADD a :1, b :1` on one counter item (created on first use).
fn counter_update(table: &str, counter: &CounterDelta) -> Result<TransactWriteItem, StoreError> {
    let mut update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .key("pk", s(counter.pk.clone()))
        .key("sk", s(counter.sk.clone()));
    let mut clauses = Vec::new();
    for (i, (name, by)) in counter.increments.iter().enumerate() {
        clauses.push(format!("#c{i} :v{i}"));
        update = update
            .expression_attribute_names(format!("#c{i}"), name)
            .expression_attribute_values(format!(":v{i}"), AttributeValue::N(by.to_string()));
    }
    let update = update
        .update_expression(format!("ADD {}", clauses.join(", ")))
        .build()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

// ------------------------------------------------------------------------------------------
// Campaign configuration
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct DynamoCampaignDirectory {
    client: Client,
    table: String,
}

#[derive(Deserialize)]
struct CampaignRow {
    campaign_id: String,
    client_id: String,
    name: String,
    currency: String,
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    checks: Option<CheckThresholds>,
    #[serde(default = "default_attempts")]
    max_attempts_per_day: u32,
}

fn default_attempts() -> u32 {
    3
}

#[derive(Deserialize)]
struct SkuRow {
    sku: String,
    name: String,
    unit_price_minor: i64,
    currency: String,
    #[serde(default = "yes")]
    active: bool,
}

fn default_timezone() -> String {
    "America/Lima".into()
}

fn yes() -> bool {
    true
}

impl DynamoCampaignDirectory {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl CampaignDirectory for DynamoCampaignDirectory {
    async fn catalog(&self, campaign_id: &str) -> Result<Option<CampaignCatalog>, StoreError> {
        let mut rows = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("CAMPAIGN#{campaign_id}")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            rows.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        let mut campaign = None;
        let mut skus = Vec::new();
        for row in rows {
            match string_attr(&row, "sk").as_deref() {
                Some("CONFIG") => {
                    campaign =
                        Some(serde_dynamo::from_item::<_, CampaignRow>(row).map_err(corrupt("reading campaign"))?)
                }
                Some(sk) if sk.starts_with("SKU#") => {
                    skus.push(serde_dynamo::from_item::<_, SkuRow>(row).map_err(corrupt("reading catalog entry"))?)
                }
                _ => {}
            }
        }
        let Some(row) = campaign else { return Ok(None) };
        let currency = Currency::parse(&row.currency)
            .map_err(|e| StoreError::Corrupt(format!("campaign {campaign_id}: {}", e.detail)))?;
        let mut items = BTreeMap::new();
        for sku in skus {
            if sku.currency != currency.code() {
                // A price in another currency cannot be summed with the rest: leave the SKU
                // out (it reads as unknown) and say so loudly for whoever keeps the catalog.
                tracing::error!(campaign_id, sku = %sku.sku, "catalog entry priced in {} but the campaign sells in {}", sku.currency, currency.code());
                continue;
            }
            items.insert(
                sku.sku.clone(),
                CatalogItem {
                    sku: sku.sku,
                    name: sku.name,
                    unit_price: Money::from_minor(sku.unit_price_minor, currency),
                    active: sku.active,
                },
            );
        }
        let campaign = Campaign {
            campaign_id: row.campaign_id,
            client_id: row.client_id,
            name: row.name,
            currency,
            timezone: row.timezone,
            active: row.active,
            checks: row.checks.unwrap_or_default(),
            max_attempts_per_day: row.max_attempts_per_day,
        };
        Ok(Some(CampaignCatalog { campaign, items }))
    }
}

#[derive(Deserialize)]
struct ShippingRow {
    sku: String,
    weight_grams: u32,
    length_mm: u32,
    width_mm: u32,
    height_mm: u32,
    #[serde(default)]
    ships_alone: bool,
}

#[async_trait]
impl super::FulfillmentDirectory for DynamoCampaignDirectory {
    async fn fulfillment(
        &self,
        campaign_id: &str,
    ) -> Result<
        (
            BTreeMap<String, crate::domain::fulfillment::ShippingSpec>,
            Option<crate::domain::fulfillment::FulfillmentConfig>,
        ),
        StoreError,
    > {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("CAMPAIGN#{campaign_id}")))
            .send()
            .await
            .map_err(sdk_error)?;
        let mut specs = BTreeMap::new();
        let mut config = None;
        for row in output.items.unwrap_or_default() {
            match string_attr(&row, "sk").as_deref() {
                Some(sk) if sk.starts_with("SKU#") && row.contains_key("weight_grams") => {
                    let r: ShippingRow = serde_dynamo::from_item(row).map_err(corrupt("reading shipping data"))?;
                    let spec = crate::domain::fulfillment::ShippingSpec {
                        sku: r.sku.clone(),
                        weight_grams: r.weight_grams,
                        length_mm: r.length_mm,
                        width_mm: r.width_mm,
                        height_mm: r.height_mm,
                        ships_alone: r.ships_alone,
                    };
                    specs.insert(r.sku, spec);
                }
                Some("FULFILLMENT") => {
                    let json = string_attr(&row, "config")
                        .ok_or_else(|| StoreError::Corrupt("FULFILLMENT item without config".into()))?;
                    config = Some(
                        serde_json::from_str(&json)
                            .map_err(|e| StoreError::Corrupt(format!("fulfillment config: {e}")))?,
                    );
                }
                _ => {}
            }
        }
        Ok((specs, config))
    }
}

/// `CLIENT#{id}` / `CONFIG`: the client company, and its `billing` map when it is invoiced
/// through the back office. The legal name and RUC default to the client's own.
#[derive(Deserialize)]
struct ClientRow {
    client_id: String,
    name: String,
    ruc: String,
    #[serde(default)]
    billing: Option<BillingRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BillingRow {
    #[serde(default)]
    legal_name: Option<String>,
    #[serde(default)]
    address: String,
    finance_email: String,
    #[serde(default = "default_payment_terms")]
    payment_terms_days: u16,
    #[serde(default)]
    tax: crate::domain::invoice::TaxConfig,
    #[serde(default = "default_factura_series")]
    factura_series: String,
    #[serde(default = "default_boleta_series")]
    boleta_series: String,
    #[serde(default = "default_utc_offset")]
    utc_offset_minutes: i16,
}

fn default_payment_terms() -> u16 {
    30
}
fn default_factura_series() -> String {
    "F001".into()
}
fn default_boleta_series() -> String {
    "B001".into()
}
/// Lima (UTC−5, no daylight saving).
fn default_utc_offset() -> i16 {
    -300
}

#[async_trait]
impl super::BillingDirectory for DynamoCampaignDirectory {
    async fn billing_profile(
        &self,
        client_id: &str,
    ) -> Result<Option<crate::domain::invoice::BillingProfile>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("CLIENT#{client_id}")))
            .key("sk", s("CONFIG"))
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(item) = output.item else { return Ok(None) };
        let row: ClientRow = serde_dynamo::from_item(item).map_err(corrupt("reading client configuration"))?;
        let Some(billing) = row.billing else { return Ok(None) };
        let ruc = crate::domain::identity::Document::new(crate::domain::identity::DocumentType::Ruc, &row.ruc)
            .map_err(|e| StoreError::Corrupt(format!("client {client_id}: ruc: {}", e.detail)))?;
        Ok(Some(crate::domain::invoice::BillingProfile {
            client_id: row.client_id,
            legal_name: billing.legal_name.unwrap_or(row.name),
            ruc,
            address: billing.address,
            finance_email: billing.finance_email,
            payment_terms_days: billing.payment_terms_days,
            tax: billing.tax,
            factura_series: billing.factura_series,
            boleta_series: billing.boleta_series,
            utc_offset_minutes: billing.utc_offset_minutes,
        }))
    }
}

// ------------------------------------------------------------------------------------------
// Idempotency
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct DynamoIdempotencyStore {
    client: Client,
    table: String,
}

impl DynamoIdempotencyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.item)
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn begin(
        &self,
        key: &str,
        fingerprint: &str,
        now: i64,
        lock_until: i64,
        expires_at: i64,
    ) -> Result<IdempotencyBegin, StoreError> {
        // Two attempts: the record we collided with may vanish (released) before we read it.
        for _ in 0..2 {
            let attempt = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(key))
                .item("status", s("IN_PROGRESS"))
                .item("fingerprint", s(fingerprint))
                .item("lock_until", AttributeValue::N(lock_until.to_string()))
                .item("expires_at", AttributeValue::N(expires_at.to_string()))
                // TTL deletes late: an expired record is free even while it still exists.
                .condition_expression(
                    "attribute_not_exists(pk) OR expires_at < :now OR (#status = :in_progress AND lock_until < :now)",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .expression_attribute_values(":in_progress", s("IN_PROGRESS"))
                .send()
                .await;
            match attempt {
                Ok(_) => return Ok(IdempotencyBegin::Started),
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {}
                Err(err) => return Err(sdk_error(err)),
            }
            let Some(item) = self.read(key).await? else { continue };
            let stored_fingerprint = string_attr(&item, "fingerprint").unwrap_or_default();
            return Ok(match string_attr(&item, "response") {
                Some(response_json) => IdempotencyBegin::Completed {
                    fingerprint: stored_fingerprint,
                    response_json,
                },
                None => IdempotencyBegin::InProgress {
                    fingerprint: stored_fingerprint,
                },
            });
        }
        Ok(IdempotencyBegin::InProgress {
            fingerprint: fingerprint.to_owned(),
        })
    }

    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response_json: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("status", s("COMPLETE"))
            .item("fingerprint", s(fingerprint))
            .item("response", s(response_json))
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
