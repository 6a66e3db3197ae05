//! The pre-sales table (PresalesTable): pre-sales with their audit chains, call-id guards,
//! recording versions, the review queue, review counters and the outbox of `SaleConfirmed`.
//!
//! | item                | pk                        | sk              | indexes                              |
//! |---------------------|---------------------------|-----------------|--------------------------------------|
//! | pre-sale            | `PRESALE#{id}`            | `META`          | by-campaign, by-campaign-status, by-customer-document, by-customer-phone, review-queue (sparse), approved (sparse) |
//! | audit record        | `PRESALE#{id}`            | `AUDIT#{seq:010}` (a note: `…#{note:04}`) |                |
//! | playback guard      | `PRESALE#{id}`            | `PLAYBACK#{playback id}` |                             |
//! | call id uniqueness  | `CALL#{client}#{call_id}` | `META` (`waiting_since` when a recording came first) |          |
//! | recording version   | `RECORDING#{client}#{call_id}` | `SHA#{sha256}` |                                   |
//! | unrecognized upload | `UNRECOGNIZED#{date}`     | `{key}#{version}` |                                    |
//! | waiting recording   | `WAITING#{date}`          | `{client}#{call_id}` |                                 |
//! | outbox message      | `OUTBOX#{message id}`     | `MESSAGE`       | outbox-pending (sparse)              |
//! | review counters     | `METRICS#{campaign}#{day}` | `…`            |                                      |
//! | validator's claim   | `VALIDATOR#{user id}`     | `CLAIM`         |                                      |
//!
//! The four indexes of every pre-sale sort by one attribute, `gsi2sk` (`{created ns:020}#{id}`):
//! one copy of it instead of four keeps the pre-sale under 2 KB, a write unit less on each of
//! its transactional writes (issue 14).
//!
//! The review-queue index holds a client's queue in one partition, `REVIEW#{client}`: waiting
//! pre-sales first (`{urgency:03}#…`, digits), then claimed ones (`CLAIMED#{lease end}#…`),
//! sorted by lease end. One query reads both: claims never hide waiting work (they sort after
//! it), and expired leases come first among the claims (issue 14: one query per claim instead
//! of two). Claims taken before this layout sit under `REVIEW#{client}#CLAIMED`, read only when
//! nothing else is claimable. The validator's claim item makes "one claim per validator" a
//! condition of the same transaction that takes the claim.
//!
//! One narrow port per thing a handler does ([`PresaleGet`], [`PresaleWrite`], …), so a function
//! depends only on what it calls; [`DynamoPresaleStore`] implements them all, and so does its
//! in-memory twin for handler tests.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use backoffice_domain::audit::AuditRecord;
use backoffice_domain::presale::{Presale, PresaleId, PresaleStatus};
use backoffice_domain::recording::{CustomerHistory, Recording};

use crate::counters::{CounterDelta, CounterRow, Counters, counter_rows, counter_update};
use crate::dynamo::{
    Item, Order, TransactFailure, batch_get, corrupt, get_item, index_page, nanos, page_size, query_all, s, sdk_error,
    string_attr, transact, transact_put, update_condition_failed,
};
use crate::outbox::{Outbox, OutboxMessage, Retry, mark_failed, mark_sent, outbox_put, parked_outbox, pending_outbox};
use crate::sdk::SdkClient;
use crate::{ConflictKind, Page, StoreError};

mod attach;
mod notes;
pub use attach::{AttachOutcome, Version, attach, recheck, thresholds_of};
pub use notes::{AuditNotes, NoteEffect};

#[derive(Debug, Clone)]
pub struct PresaleQuery {
    pub campaign_id: String,
    pub status: Option<PresaleStatus>,
    /// Agents see only their own pre-sales.
    pub agent_id: Option<String>,
    /// Only pre-sales registered before this instant (from the index's sort key).
    pub created_before: Option<time::OffsetDateTime>,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// A pre-sale with the head of its audit chain.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPresale {
    pub presale: Presale,
    pub audit_head: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    pub outbox: Option<OutboxMessage>,
    pub counters: Vec<CounterDelta>,
    /// The validator's one claim, taken or given back in the same transaction.
    pub claim: Option<ClaimLock>,
    /// A recording version stored with the pre-sale it is bound to (as
    /// [`RecordingVersions::put_recording`] would, in the binding's own transaction: issue 14).
    pub recording: Option<Recording>,
}

/// The change to a validator's single claim that goes with a pre-sale write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimLock {
    /// Hold `presale_id` until `lease_until`. Fails with [`ConflictKind::ValidatorBusy`] while the
    /// validator holds a live claim on another pre-sale, unless that one is `replacing` (a claim
    /// the caller found ended: decided, returned or moved on without the lock being freed).
    Take {
        validator_id: String,
        presale_id: PresaleId,
        lease_until: time::OffsetDateTime,
        now: time::OffsetDateTime,
        replacing: Option<PresaleId>,
    },
    /// Give the claim on `presale_id` back (a release or a decision).
    Free {
        validator_id: String,
        presale_id: PresaleId,
    },
}

/// The pre-sale a validator's claim item points to, and its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    pub presale_id: PresaleId,
    pub lease_until: time::OffsetDateTime,
}

/// A pre-sale waiting in the review queue: what orders it, not the pre-sale (the index carries
/// only this; the claim reads the pre-sale itself, consistently).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct QueueEntry {
    #[serde(rename = "id")]
    pub presale_id: PresaleId,
    #[serde(default)]
    pub risk_score: Option<u8>,
    #[serde(default, with = "backoffice_domain::wire::instant::option")]
    pub ready_at: Option<time::OffsetDateTime>,
    #[serde(with = "backoffice_domain::wire::instant")]
    pub updated_at: time::OffsetDateTime,
}

impl QueueEntry {
    pub fn of(presale: &Presale) -> Self {
        Self {
            presale_id: presale.id.clone(),
            risk_score: presale.risk_score,
            ready_at: presale.ready_at,
            updated_at: presale.updated_at,
        }
    }

    /// Highest risk first, then longest waiting.
    pub fn priority(&self) -> (std::cmp::Reverse<u8>, time::OffsetDateTime, PresaleId) {
        (
            std::cmp::Reverse(self.risk_score.unwrap_or(0)),
            self.ready_at.unwrap_or(self.updated_at),
            self.presale_id.clone(),
        )
    }
}

#[async_trait]
pub trait PresaleGet: Send + Sync {
    async fn get(&self, id: &PresaleId) -> Result<Option<StoredPresale>, StoreError>;
}

/// Many pre-sales read by id at once (client billing: the sales a month bills or reverses).
#[async_trait]
pub trait PresaleBatch: Send + Sync {
    /// The pre-sales of `ids` that exist.
    async fn presales(&self, ids: &[PresaleId]) -> Result<Vec<Presale>, StoreError>;
}

#[async_trait]
pub trait PresaleWrite: Send + Sync {
    /// Insert a new pre-sale with its first audit record; fails if the id or the client's
    /// call id is already taken. True when a recording of the call arrived first
    /// ([`WaitingRecordings::mark_waiting`]): the caller binds it. Nothing is read to learn
    /// that on the usual path, a pre-sale before its recording (issue 14).
    async fn create(&self, presale: &Presale, audit: &AuditRecord) -> Result<bool, StoreError>;

    /// Replace the pre-sale if it is still at `expected_version` and `expected_status`, and
    /// append `audit`, in one transaction.
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

    /// `save`, plus side effects committed in the same transaction: an outbox message and
    /// counter increments.
    async fn save_with(
        &self,
        presale: &Presale,
        expected_version: u64,
        expected_status: PresaleStatus,
        audit: &AuditRecord,
        effects: &Effects,
    ) -> Result<(), StoreError>;
}

#[async_trait]
pub trait PresaleList: Send + Sync {
    /// Newest first, from an index (never a scan).
    async fn list(&self, query: &PresaleQuery) -> Result<Page<Presale>, StoreError>;
}

#[async_trait]
pub trait CallLookup: Send + Sync {
    /// The pre-sale registered for a client's call id, if any.
    async fn find_by_call(&self, client_id: &str, call_id: &str) -> Result<Option<PresaleId>, StoreError>;
}

#[async_trait]
pub trait AuditRead: Send + Sync {
    /// The audit chain in `seq` order.
    async fn audit_trail(&self, id: &PresaleId) -> Result<Vec<AuditRecord>, StoreError>;
}

#[async_trait]
pub trait RecordingVersions: Send + Sync {
    /// Keep one version of a call's recording, keyed by its bytes' SHA-256. `false` when those
    /// exact bytes were already stored (a redelivered event).
    async fn put_recording(&self, recording: &Recording) -> Result<bool, StoreError>;

    /// The recordings stored for a client's call, newest first.
    async fn recordings(&self, client_id: &str, call_id: &str) -> Result<Vec<Recording>, StoreError>;

    /// Remember an object whose key does not follow the convention, with the reason.
    async fn record_unrecognized(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        reason: &str,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// Recordings that arrived before their pre-sale, noted per day of arrival (UTC: an internal
/// bucket, not a business day) so that a sweep can bind them if the registration's own
/// binding failed, without scanning.
#[async_trait]
pub trait WaitingRecordings: Send + Sync {
    /// Note the call's stored recording as waiting for its pre-sale: on the call's item, where
    /// the registration's own write finds it, and in the day's list for the sweep. False when
    /// a pre-sale holds the call by now (registered since it was looked for): bind it.
    async fn mark_waiting(&self, client_id: &str, call_id: &str, at: time::OffsetDateTime) -> Result<bool, StoreError>;

    /// The (client, call id) pairs noted on `day`.
    async fn waiting(&self, day: time::Date, limit: u32) -> Result<Vec<(String, String)>, StoreError>;

    async fn clear_waiting(&self, client_id: &str, call_id: &str, day: time::Date) -> Result<(), StoreError>;
}

#[async_trait]
pub trait CustomerHistoryLookup: Send + Sync {
    /// The client's other pre-sales with the same document or the same phone (from indexes).
    async fn customer_history(&self, presale: &Presale) -> Result<CustomerHistory, StoreError>;
}

#[async_trait]
pub trait ReviewQueue: Send + Sync {
    /// A client's pre-sales waiting for review and not under a live claim at `now` (unclaimed
    /// ones, highest risk first, then oldest; then those whose lease has ended). Live claims are
    /// kept apart, so any number of them never hides waiting work.
    async fn review_queue(
        &self,
        client_id: &str,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<QueueEntry>, StoreError>;

    /// The pre-sale the validator's claim item points to, if any (its lease may have ended).
    async fn held_claim(&self, validator_id: &str) -> Result<Option<HeldClaim>, StoreError>;
}

// ---------------------------------------------------------------------------------------------
// DynamoDB
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct DynamoPresaleStore {
    client: SdkClient<Client>,
    table: String,
}

const BY_CAMPAIGN: &str = "by-campaign";
const BY_CAMPAIGN_STATUS: &str = "by-campaign-status";
const BY_CUSTOMER_DOCUMENT: &str = "by-customer-document";
const BY_CUSTOMER_PHONE: &str = "by-customer-phone";
const REVIEW_QUEUE: &str = "review-queue";
/// Where claimed pre-sales start in a client's review queue: after every waiting one, whose
/// sort keys start with a digit.
const CLAIMED_PREFIX: &str = "CLAIMED#";

impl DynamoPresaleStore {
    pub fn new(client: impl Into<SdkClient<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
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
        item.insert(
            "gsi2pk".into(),
            s(format!("CAMPAIGN#{}#STATUS#{}", presale.campaign_id, presale.status)),
        );
        item.insert("gsi2sk".into(), s(created));
        item.insert("gsi3pk".into(), s(Self::document_key(presale)));
        item.insert(
            "gsi4pk".into(),
            s(format!(
                "PHONE#{}#{}",
                presale.client_id,
                presale.customer.phone.as_str()
            )),
        );
        // The sparse `approved` index: approved pre-sales only (reconciliation, client billing).
        if presale.status == PresaleStatus::Approved {
            item.insert("gsi7pk".into(), s(PresaleStatus::Approved.as_str()));
        }
        if presale.status == PresaleStatus::ReadyForReview {
            let (pk, sk) = Self::queue_key(presale);
            item.insert("gsi5pk".into(), s(pk));
            item.insert("gsi5sk".into(), s(sk));
        }
        item.insert("audit_head".into(), s(audit_head));
        Ok(item)
    }

    /// Where a pre-sale waiting for review sits in the review-queue index.
    fn queue_key(presale: &Presale) -> (String, String) {
        match &presale.claim {
            // Claimed: after every waiting one, by lease end (expired leases sort first).
            Some(claim) => (
                format!("REVIEW#{}", presale.client_id),
                format!("{CLAIMED_PREFIX}{:020}#{}", nanos(claim.lease_until), presale.id),
            ),
            // Waiting: ascending order = highest risk first, then longest waiting.
            None => {
                let urgency = 100 - u32::from(presale.risk_score.unwrap_or(0).min(100));
                let since = nanos(presale.ready_at.unwrap_or(presale.updated_at));
                (
                    format!("REVIEW#{}", presale.client_id),
                    format!("{urgency:03}#{since:020}#{}", presale.id),
                )
            }
        }
    }

    /// A recording version's item: `RECORDING#{client}#{call}`, `SHA#{sha256}` (same bytes, same
    /// item).
    fn recording_item(recording: &Recording) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(recording).map_err(corrupt("serializing recording"))?;
        item.insert(
            "pk".into(),
            s(Self::recording_pk(&recording.client_id, &recording.call_id)),
        );
        item.insert("sk".into(), s(format!("SHA#{}", recording.sha256)));
        item.insert("entity".into(), s("RECORDING"));
        Ok(item)
    }

    fn validator_pk(validator_id: &str) -> String {
        format!("VALIDATOR#{validator_id}")
    }

    /// The transaction item that takes or frees the validator's single claim.
    fn claim_lock_item(&self, lock: &ClaimLock) -> Result<TransactWriteItem, StoreError> {
        let built = match lock {
            ClaimLock::Take {
                validator_id,
                presale_id,
                lease_until,
                now,
                replacing,
            } => {
                let mut item = Item::new();
                item.insert("pk".into(), s(Self::validator_pk(validator_id)));
                item.insert("sk".into(), s("CLAIM"));
                item.insert("entity".into(), s("VALIDATOR_CLAIM"));
                item.insert("presale_id".into(), s(presale_id.as_str()));
                item.insert("lease_until".into(), AttributeValue::N(nanos(*lease_until).to_string()));
                let mut condition =
                    "attribute_not_exists(pk) OR presale_id = :presale OR lease_until <= :now".to_owned();
                let mut put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .expression_attribute_values(":presale", s(presale_id.as_str()))
                    .expression_attribute_values(":now", AttributeValue::N(nanos(*now).to_string()));
                if let Some(ended) = replacing {
                    condition.push_str(" OR presale_id = :ended");
                    put = put.expression_attribute_values(":ended", s(ended.as_str()));
                }
                TransactWriteItem::builder()
                    .put(
                        put.condition_expression(condition)
                            .build()
                            .map_err(|e| StoreError::Backend(e.to_string()))?,
                    )
                    .build()
            }
            ClaimLock::Free {
                validator_id,
                presale_id,
            } => TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .key("pk", s(Self::validator_pk(validator_id)))
                        .key("sk", s("CLAIM"))
                        // Never free a claim on another pre-sale (the whole change then conflicts).
                        .condition_expression("attribute_not_exists(pk) OR presale_id = :presale")
                        .expression_attribute_values(":presale", s(presale_id.as_str()))
                        .build()
                        .map_err(|e| StoreError::Backend(e.to_string()))?,
                )
                .build(),
        };
        Ok(built)
    }

    fn document_key(presale: &Presale) -> String {
        let document = &presale.customer.document;
        format!("DOC#{}#{}#{}", presale.client_id, document.kind(), document.number())
    }

    fn recording_pk(client_id: &str, call_id: &str) -> String {
        format!("RECORDING#{client_id}#{call_id}")
    }

    /// The `pk`s an index query found, newest first (the fraud indexes carry keys only).
    async fn index_pks(&self, index: &str, pk_name: &str, pk_value: String) -> Result<Vec<String>, StoreError> {
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
        Ok(items.iter().filter_map(|item| string_attr(item, "pk")).collect())
    }

    /// The pre-sales under `pks`, read whole in one batch: the indexes project keys (and what
    /// their filters need) only, so a pre-sale's updates do not rewrite six copies of it (ADR 0020).
    async fn whole(&self, pks: &[String]) -> Result<HashMap<String, Presale>, StoreError> {
        let unique: std::collections::BTreeSet<&String> = pks.iter().collect();
        if unique.is_empty() {
            return Ok(HashMap::new());
        }
        let keys = unique
            .into_iter()
            .map(|pk| HashMap::from([("pk".to_owned(), s(pk.clone())), ("sk".to_owned(), s("META"))]))
            .collect();
        batch_get(&self.client, &self.table, keys, None)
            .await?
            .into_iter()
            .map(|item| {
                let pk = string_attr(&item, "pk").unwrap_or_default();
                serde_dynamo::from_item(item)
                    .map(|presale| (pk, presale))
                    .map_err(corrupt("reading pre-sale"))
            })
            .collect()
    }

    fn audit_item(record: &AuditRecord) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(record).map_err(corrupt("serializing audit record"))?;
        item.insert("pk".into(), s(format!("PRESALE#{}", record.subject)));
        // A note sorts after the change it follows and before the next one.
        let sk = match record.note {
            0 => format!("AUDIT#{:010}", record.seq),
            note => format!("AUDIT#{:010}#{note:04}", record.seq),
        };
        item.insert("sk".into(), s(sk));
        item.insert("entity".into(), s("AUDIT"));
        Ok(item)
    }

    fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        transact_put(&self.table, item, Some(condition))
    }
}

#[async_trait]
impl PresaleGet for DynamoPresaleStore {
    async fn get(&self, id: &PresaleId) -> Result<Option<StoredPresale>, StoreError> {
        let Some(item) = get_item(&self.client, &self.table, Self::presale_pk(id), "META").await? else {
            return Ok(None);
        };
        let audit_head = string_attr(&item, "audit_head").unwrap_or_default();
        let presale: Presale = serde_dynamo::from_item(item).map_err(corrupt("reading pre-sale"))?;
        Ok(Some(StoredPresale { presale, audit_head }))
    }
}

#[async_trait]
impl PresaleBatch for DynamoPresaleStore {
    async fn presales(&self, ids: &[PresaleId]) -> Result<Vec<Presale>, StoreError> {
        let pks: Vec<String> = ids.iter().map(Self::presale_pk).collect();
        Ok(self.whole(&pks).await?.into_values().collect())
    }
}

#[async_trait]
impl PresaleWrite for DynamoPresaleStore {
    async fn create(&self, presale: &Presale, audit: &AuditRecord) -> Result<bool, StoreError> {
        let mut call = Item::new();
        call.insert("pk".into(), s(Self::call_pk(&presale.client_id, &presale.call_id)));
        call.insert("sk".into(), s("META"));
        call.insert("entity".into(), s("CALL"));
        call.insert("presale_id".into(), s(presale.id.as_str()));
        let items = |call_condition: &str| -> Result<Vec<TransactWriteItem>, StoreError> {
            Ok(vec![
                self.put(Self::presale_item(presale, &audit.hash)?, "attribute_not_exists(pk)")?,
                self.put(call.clone(), call_condition)?,
                self.put(Self::audit_item(audit)?, "attribute_not_exists(pk)")?,
            ])
        };
        // Usually the call has no item yet. A recording that came first left one without a
        // pre-sale (`mark_waiting`): it is read only then, and the pre-sale takes the call.
        let mut waiting = false;
        let mut condition = "attribute_not_exists(pk)";
        loop {
            match transact(&self.client, items(condition)?).await {
                Ok(()) => return Ok(waiting),
                Err(TransactFailure::Cancelled(c)) if c.condition_failed(1) && !waiting => {
                    let held = get_item(
                        &self.client,
                        &self.table,
                        Self::call_pk(&presale.client_id, &presale.call_id),
                        "META",
                    )
                    .await?;
                    if held.as_ref().is_none_or(|item| item.contains_key("presale_id")) {
                        return Err(StoreError::Conflict(ConflictKind::DuplicateCallId));
                    }
                    waiting = true;
                    condition = "attribute_not_exists(presale_id)";
                }
                Err(TransactFailure::Cancelled(c)) if c.condition_failed(1) => {
                    return Err(StoreError::Conflict(ConflictKind::DuplicateCallId));
                }
                Err(TransactFailure::Cancelled(c)) if c.any_condition_failed() => {
                    return Err(StoreError::Conflict(ConflictKind::AlreadyExists));
                }
                Err(TransactFailure::Cancelled(c)) => return Err(c.into()),
                Err(TransactFailure::Failed(e)) => return Err(e),
            }
        }
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
            // The head too: a note appended since the read (a playback) keeps the version, and
            // a record chained to the old head would fork the chain.
            .condition_expression("#version = :version AND #status = :status AND audit_head = :head")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":version", AttributeValue::N(expected_version.to_string()))
            .expression_attribute_values(":status", s(expected_status.as_str()))
            .expression_attribute_values(":head", s(&audit.prev_hash))
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
        if let Some(recording) = &effects.recording {
            // Unconditional: the same bytes make the same item, and a pre-sale binds a version
            // only once (its own condition).
            items.push(transact_put(&self.table, Self::recording_item(recording)?, None)?);
        }
        let lock_at = items.len();
        if let Some(lock) = &effects.claim {
            items.push(self.claim_lock_item(lock)?);
        }
        match transact(&self.client, items).await {
            Ok(()) => Ok(()),
            // The pre-sale's own condition wins: a stale read explains the rest.
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(0) => {
                Err(StoreError::Conflict(ConflictKind::StaleVersion))
            }
            Err(TransactFailure::Cancelled(c)) if effects.claim.is_some() && c.condition_failed(lock_at) => {
                Err(StoreError::Conflict(ConflictKind::ValidatorBusy))
            }
            Err(TransactFailure::Cancelled(c)) if c.any_condition_failed() => {
                Err(StoreError::Conflict(ConflictKind::StaleVersion))
            }
            Err(TransactFailure::Cancelled(c)) => Err(c.into()),
            Err(TransactFailure::Failed(e)) => Err(e),
        }
    }
}

#[async_trait]
impl PresaleList for DynamoPresaleStore {
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
                "gsi2sk",
                format!("CAMPAIGN#{}", query.campaign_id),
            ),
        };
        let start = match &query.cursor {
            Some(raw) => Some(crate::dynamo::decode_cursor(raw, pk_name, &pk_value, sk_name, None)?),
            None => None,
        };
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", s(pk_value))
            .scan_index_forward(false)
            .limit(page_size(query.limit))
            .set_exclusive_start_key(start);
        request = match query.created_before {
            // `{created:020}#{id}` < `{before:020}` exactly when created < before.
            Some(before) => request
                .key_condition_expression("#pk = :pk AND #sk < :before")
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":before", s(format!("{:020}", nanos(before)))),
            None => request.key_condition_expression("#pk = :pk"),
        };
        if let Some(agent) = &query.agent_id {
            request = request
                .filter_expression("#agent = :agent")
                .expression_attribute_names("#agent", "agent_id")
                .expression_attribute_values(":agent", s(agent));
        }
        let output = request.send().await.map_err(sdk_error)?;
        let pks: Vec<String> = output
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| string_attr(item, "pk"))
            .collect();
        let mut whole = self.whole(&pks).await?;
        // In the index's order; one deleted meanwhile is simply not listed.
        let items = pks.iter().filter_map(|pk| whole.remove(pk)).collect();
        let next_cursor = output
            .last_evaluated_key
            .as_ref()
            .and_then(crate::dynamo::encode_cursor);
        Ok(Page { items, next_cursor })
    }
}

#[async_trait]
impl CallLookup for DynamoPresaleStore {
    async fn find_by_call(&self, client_id: &str, call_id: &str) -> Result<Option<PresaleId>, StoreError> {
        let item = get_item(&self.client, &self.table, Self::call_pk(client_id, call_id), "META").await?;
        match item.as_ref().and_then(|item| string_attr(item, "presale_id")) {
            None => Ok(None),
            Some(id) => PresaleId::parse(&id)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.detail)),
        }
    }
}

#[async_trait]
impl AuditRead for DynamoPresaleStore {
    async fn audit_trail(&self, id: &PresaleId) -> Result<Vec<AuditRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :audit)")
            .expression_attribute_values(":pk", s(Self::presale_pk(id)))
            .expression_attribute_values(":audit", s("AUDIT#"))
            .consistent_read(true);
        query_all(query)
            .await?
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading audit record")))
            .collect()
    }
}

#[async_trait]
impl RecordingVersions for DynamoPresaleStore {
    async fn put_recording(&self, recording: &Recording) -> Result<bool, StoreError> {
        let item = Self::recording_item(recording)?;
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
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(Self::recording_pk(client_id, call_id)))
            .consistent_read(true);
        let mut versions = query_all(query)
            .await?
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
}

/// How long the marks of a recording whose pre-sale never came are kept: DynamoDB's TTL
/// (`expires_at`, in epoch seconds) deletes them after that. A pre-sale is registered on its
/// call's day; the registration replaces the call's item whole, TTL included. The recording
/// itself (its object and its `RECORDING#` version item) is kept.
const WAITING_KEPT: time::Duration = time::Duration::days(90);

fn waiting_expiry(at: time::OffsetDateTime) -> String {
    (at + WAITING_KEPT).unix_timestamp().to_string()
}

#[async_trait]
impl WaitingRecordings for DynamoPresaleStore {
    async fn mark_waiting(&self, client_id: &str, call_id: &str, at: time::OffsetDateTime) -> Result<bool, StoreError> {
        // The call's item first: once a pre-sale holds the call, nothing waits. Should this stop
        // between the two writes, the message's redelivery writes the day's list.
        let marked = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(Self::call_pk(client_id, call_id)))
            .key("sk", s("META"))
            .update_expression(
                "SET entity = :entity, waiting_since = if_not_exists(waiting_since, :at), \
                 expires_at = if_not_exists(expires_at, :expires)",
            )
            .condition_expression("attribute_not_exists(presale_id)")
            .expression_attribute_values(":entity", s("CALL"))
            .expression_attribute_values(":at", AttributeValue::N(nanos(at).to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(waiting_expiry(at)))
            .send()
            .await;
        match marked {
            Ok(_) => {}
            Err(err) if update_condition_failed(&err) => return Ok(false),
            Err(err) => return Err(sdk_error(err)),
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("WAITING#{}", at.date())))
            .item("sk", s(format!("{client_id}#{call_id}")))
            .item("entity", s("WAITING_RECORDING"))
            .item("client_id", s(client_id))
            .item("call_id", s(call_id))
            .item("expires_at", AttributeValue::N(waiting_expiry(at)))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(true)
    }

    async fn waiting(&self, day: time::Date, limit: u32) -> Result<Vec<(String, String)>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("WAITING#{day}")))
            .limit(page_size(limit))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output
            .items()
            .iter()
            .filter_map(|item| Some((string_attr(item, "client_id")?, string_attr(item, "call_id")?)))
            .collect())
    }

    async fn clear_waiting(&self, client_id: &str, call_id: &str, day: time::Date) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("WAITING#{day}")))
            .key("sk", s(format!("{client_id}#{call_id}")))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}

#[async_trait]
impl CustomerHistoryLookup for DynamoPresaleStore {
    async fn customer_history(&self, presale: &Presale) -> Result<CustomerHistory, StoreError> {
        let document = self
            .index_pks(BY_CUSTOMER_DOCUMENT, "gsi3pk", Self::document_key(presale))
            .await?;
        let phone = self
            .index_pks(
                BY_CUSTOMER_PHONE,
                "gsi4pk",
                format!("PHONE#{}#{}", presale.client_id, presale.customer.phone.as_str()),
            )
            .await?;
        // The pre-sale itself is no history of its own: a first purchase reads nothing more.
        let own = Self::presale_pk(&presale.id);
        let others = |pks: Vec<String>| pks.into_iter().filter(|pk| *pk != own).collect::<Vec<_>>();
        let (document, phone) = (others(document), others(phone));
        let whole = self.whole(&[document.as_slice(), phone.as_slice()].concat()).await?;
        let pick = |pks: &[String]| pks.iter().filter_map(|pk| whole.get(pk).cloned()).collect::<Vec<_>>();
        Ok(CustomerHistory {
            same_document: pick(&document),
            same_phone: pick(&phone),
        })
    }
}

#[async_trait]
impl ReviewQueue for DynamoPresaleStore {
    async fn review_queue(
        &self,
        client_id: &str,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        // Waiting entries sort before claimed ones, and lapsed claims before live ones: the first
        // `limit` entries are what the two queries of the old layout returned together.
        let lapsed_before = format!("{CLAIMED_PREFIX}{:020}", nanos(now));
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(REVIEW_QUEUE)
            .key_condition_expression("gsi5pk = :pk")
            .filter_expression("NOT begins_with(gsi5sk, :claimed) OR gsi5sk < :lapsed")
            .expression_attribute_values(":pk", s(format!("REVIEW#{client_id}")))
            .expression_attribute_values(":claimed", s(CLAIMED_PREFIX))
            .expression_attribute_values(":lapsed", s(lapsed_before))
            .limit(page_size(limit))
            .send()
            .await
            .map_err(sdk_error)?;
        let mut items = page.items.unwrap_or_default();
        if items.is_empty() {
            // Claims taken before the one-partition layout, until their pre-sales are written again.
            let legacy = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(REVIEW_QUEUE)
                .key_condition_expression("gsi5pk = :pk AND gsi5sk < :now")
                .expression_attribute_values(":pk", s(format!("REVIEW#{client_id}#CLAIMED")))
                .expression_attribute_values(":now", s(format!("{:020}", nanos(now))))
                .limit(page_size(limit))
                .send()
                .await
                .map_err(sdk_error)?;
            items = legacy.items.unwrap_or_default();
        }
        items
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading review queue entry")))
            .collect()
    }

    async fn held_claim(&self, validator_id: &str) -> Result<Option<HeldClaim>, StoreError> {
        let Some(item) = get_item(&self.client, &self.table, Self::validator_pk(validator_id), "CLAIM").await? else {
            return Ok(None);
        };
        let presale_id = string_attr(&item, "presale_id")
            .ok_or_else(|| StoreError::Corrupt("claim item without presale_id".into()))?;
        let lease_until = item
            .get("lease_until")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i128>().ok())
            .and_then(|n| time::OffsetDateTime::from_unix_timestamp_nanos(n).ok())
            .ok_or_else(|| StoreError::Corrupt("claim item without a valid lease_until".into()))?;
        Ok(Some(HeldClaim {
            presale_id: PresaleId::parse(&presale_id).map_err(|e| StoreError::Corrupt(format!("claim item: {e}")))?,
            lease_until,
        }))
    }
}

#[async_trait]
impl Outbox for DynamoPresaleStore {
    async fn pending_outbox(&self, now: time::OffsetDateTime, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        pending_outbox(&self.client, &self.table, now, limit).await
    }

    async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError> {
        mark_sent(&self.client, &self.table, message_id).await
    }

    async fn mark_failed(&self, message: &OutboxMessage, retry: Retry) -> Result<(), StoreError> {
        mark_failed(&self.client, &self.table, message, retry).await
    }

    async fn parked_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        parked_outbox(&self.client, &self.table, limit).await
    }
}

#[async_trait]
impl Counters for DynamoPresaleStore {
    async fn counters(&self, pk: &str) -> Result<Vec<CounterRow>, StoreError> {
        counter_rows(&self.client, &self.table, pk).await
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin: the same conditions and all-or-nothing transactions, for handler tests.
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryPresaleStore;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;

    use super::*;

    fn poisoned<T>(_: T) -> StoreError {
        StoreError::Unavailable("in-memory store lock poisoned".into())
    }

    #[derive(Default)]
    struct PresaleState {
        presales: BTreeMap<PresaleId, StoredPresale>,
        calls: HashMap<(String, String), PresaleId>,
        audit: HashMap<PresaleId, Vec<AuditRecord>>,
        recordings: HashMap<(String, String), Vec<Recording>>,
        unrecognized: Vec<(String, String)>,
        outbox: crate::outbox::MemoryOutbox,
        counters: BTreeMap<(String, String), BTreeMap<String, i64>>,
        claims: HashMap<String, HeldClaim>,
        waiting: std::collections::BTreeSet<(time::Date, String, String)>,
        /// Calls whose recording came before any pre-sale (the call item's `waiting_since`).
        waiting_calls: std::collections::HashSet<(String, String)>,
        playbacks: HashMap<(PresaleId, String), AuditRecord>,
    }

    /// The validator-claim item's condition and write, as the DynamoDB adapter does them.
    fn apply_claim_lock(claims: &mut HashMap<String, HeldClaim>, lock: &ClaimLock) -> Result<(), StoreError> {
        match lock {
            ClaimLock::Take {
                validator_id,
                presale_id,
                lease_until,
                now,
                replacing,
            } => {
                if let Some(held) = claims.get(validator_id)
                    && held.presale_id != *presale_id
                    && held.lease_until > *now
                    && replacing.as_ref() != Some(&held.presale_id)
                {
                    return Err(StoreError::Conflict(ConflictKind::ValidatorBusy));
                }
                claims.insert(
                    validator_id.clone(),
                    HeldClaim {
                        presale_id: presale_id.clone(),
                        lease_until: *lease_until,
                    },
                );
            }
            ClaimLock::Free {
                validator_id,
                presale_id,
            } => {
                if let Some(held) = claims.get(validator_id) {
                    if held.presale_id != *presale_id {
                        return Err(StoreError::Conflict(ConflictKind::ValidatorBusy));
                    }
                    claims.remove(validator_id);
                }
            }
        }
        Ok(())
    }

    #[derive(Default)]
    pub struct MemoryPresaleStore {
        state: Mutex<PresaleState>,
        /// A note another request commits right before the next `save_with` (a race).
        racing_note: Mutex<Option<AuditRecord>>,
    }

    impl MemoryPresaleStore {
        pub fn new() -> Self {
            Self::default()
        }

        /// Test hook: `note` (chained on the head at that moment) is appended just before the
        /// next `save_with` runs, as a playback committed between a handler's read and write.
        pub fn note_before_next_save(&self, note: AuditRecord) {
            if let Ok(mut racing) = self.racing_note.lock() {
                *racing = Some(note);
            }
        }

        /// Test hook: overwrite a stored pre-sale as if another writer had changed it.
        pub fn put_raw(&self, stored: StoredPresale) {
            if let Ok(mut state) = self.state.lock() {
                state.presales.insert(stored.presale.id.clone(), stored);
            }
        }
    }

    #[async_trait]
    impl PresaleGet for MemoryPresaleStore {
        async fn get(&self, id: &PresaleId) -> Result<Option<StoredPresale>, StoreError> {
            Ok(self.state.lock().map_err(poisoned)?.presales.get(id).cloned())
        }
    }

    #[async_trait]
    impl PresaleBatch for MemoryPresaleStore {
        async fn presales(&self, ids: &[PresaleId]) -> Result<Vec<Presale>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            Ok(ids
                .iter()
                .filter_map(|id| state.presales.get(id).map(|s| s.presale.clone()))
                .collect())
        }
    }

    #[async_trait]
    impl PresaleWrite for MemoryPresaleStore {
        async fn create(&self, presale: &Presale, audit: &AuditRecord) -> Result<bool, StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            if state.presales.contains_key(&presale.id) {
                return Err(StoreError::Conflict(ConflictKind::AlreadyExists));
            }
            let call = (presale.client_id.clone(), presale.call_id.clone());
            if state.calls.contains_key(&call) {
                return Err(StoreError::Conflict(ConflictKind::DuplicateCallId));
            }
            let waiting = state.waiting_calls.remove(&call);
            state.calls.insert(call, presale.id.clone());
            state.audit.insert(presale.id.clone(), vec![audit.clone()]);
            state.presales.insert(
                presale.id.clone(),
                StoredPresale {
                    presale: presale.clone(),
                    audit_head: audit.hash.clone(),
                },
            );
            Ok(waiting)
        }

        async fn save_with(
            &self,
            presale: &Presale,
            expected_version: u64,
            expected_status: PresaleStatus,
            audit: &AuditRecord,
            effects: &Effects,
        ) -> Result<(), StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            if let Some(note) = self.racing_note.lock().map_err(poisoned)?.take()
                && let Some(stored) = state.presales.get_mut(&presale.id)
            {
                stored.audit_head = note.hash.clone();
                state.audit.entry(presale.id.clone()).or_default().push(note);
            }
            if let Some(message) = &effects.outbox
                && state.outbox.contains(&message.message_id)
            {
                return Err(StoreError::Conflict(ConflictKind::AlreadyExists));
            }
            let current = state
                .presales
                .get(&presale.id)
                .ok_or(StoreError::Conflict(ConflictKind::StaleVersion))?;
            if current.presale.version != expected_version
                || current.presale.status != expected_status
                || current.audit_head != audit.prev_hash
            {
                return Err(StoreError::Conflict(ConflictKind::StaleVersion));
            }
            // All or nothing: the claim item is checked on a copy before anything is written.
            let mut claims = state.claims.clone();
            if let Some(lock) = &effects.claim {
                apply_claim_lock(&mut claims, lock)?;
            }
            state.claims = claims;
            state.audit.entry(presale.id.clone()).or_default().push(audit.clone());
            state.presales.insert(
                presale.id.clone(),
                StoredPresale {
                    presale: presale.clone(),
                    audit_head: audit.hash.clone(),
                },
            );
            if let Some(message) = &effects.outbox {
                state.outbox.insert(message);
            }
            if let Some(recording) = &effects.recording {
                let versions = state
                    .recordings
                    .entry((recording.client_id.clone(), recording.call_id.clone()))
                    .or_default();
                versions.retain(|r| r.sha256 != recording.sha256);
                versions.push(recording.clone());
            }
            for counter in &effects.counters {
                let row = state
                    .counters
                    .entry((counter.pk.clone(), counter.sk.clone()))
                    .or_default();
                for (name, by) in &counter.increments {
                    *row.entry(name.clone()).or_default() += by;
                }
            }
            Ok(())
        }
    }

    #[async_trait]
    impl PresaleList for MemoryPresaleStore {
        async fn list(&self, query: &PresaleQuery) -> Result<Page<Presale>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            let mut matching: Vec<&Presale> = state
                .presales
                .values()
                .map(|s| &s.presale)
                .filter(|p| p.campaign_id == query.campaign_id)
                .filter(|p| query.status.is_none_or(|s| p.status == s))
                .filter(|p| query.agent_id.as_ref().is_none_or(|a| &p.agent_id == a))
                .filter(|p| query.created_before.is_none_or(|before| p.created_at < before))
                .collect();
            matching.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
            let start = match &query.cursor {
                None => 0,
                Some(cursor) => cursor.parse::<usize>().map_err(|_| StoreError::InvalidCursor)?,
            };
            let limit = query.limit.max(1) as usize;
            let items: Vec<Presale> = matching.iter().skip(start).take(limit).map(|p| (*p).clone()).collect();
            let next = start + items.len();
            Ok(Page {
                next_cursor: (next < matching.len()).then(|| next.to_string()),
                items,
            })
        }
    }

    #[async_trait]
    impl CallLookup for MemoryPresaleStore {
        async fn find_by_call(&self, client_id: &str, call_id: &str) -> Result<Option<PresaleId>, StoreError> {
            Ok(self
                .state
                .lock()
                .map_err(poisoned)?
                .calls
                .get(&(client_id.to_owned(), call_id.to_owned()))
                .cloned())
        }
    }

    #[async_trait]
    impl AuditNotes for MemoryPresaleStore {
        async fn append_note(
            &self,
            presale: &Presale,
            audit: &AuditRecord,
            effect: &NoteEffect,
        ) -> Result<(), StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            if let NoteEffect::Playback { playback_id } = effect
                && state.playbacks.contains_key(&(presale.id.clone(), playback_id.clone()))
            {
                return Err(StoreError::Conflict(ConflictKind::AlreadyExists));
            }
            let current = state
                .presales
                .get(&presale.id)
                .ok_or(StoreError::Conflict(ConflictKind::StaleVersion))?;
            if current.presale.version != presale.version || current.audit_head != audit.prev_hash {
                return Err(StoreError::Conflict(ConflictKind::StaleVersion));
            }
            match effect {
                NoteEffect::Playback { playback_id } => {
                    state
                        .playbacks
                        .insert((presale.id.clone(), playback_id.clone()), audit.clone());
                }
                NoteEffect::Renewal {
                    validator_id,
                    lease_until,
                } => match state.claims.get_mut(validator_id) {
                    Some(held) if held.presale_id == presale.id => held.lease_until = *lease_until,
                    _ => return Err(StoreError::Conflict(ConflictKind::ValidatorBusy)),
                },
            }
            state.audit.entry(presale.id.clone()).or_default().push(audit.clone());
            state.presales.insert(
                presale.id.clone(),
                StoredPresale {
                    presale: presale.clone(),
                    audit_head: audit.hash.clone(),
                },
            );
            Ok(())
        }

        async fn playback_note(&self, id: &PresaleId, playback_id: &str) -> Result<Option<AuditRecord>, StoreError> {
            Ok(self
                .state
                .lock()
                .map_err(poisoned)?
                .playbacks
                .get(&(id.clone(), playback_id.to_owned()))
                .cloned())
        }
    }

    #[async_trait]
    impl AuditRead for MemoryPresaleStore {
        async fn audit_trail(&self, id: &PresaleId) -> Result<Vec<AuditRecord>, StoreError> {
            Ok(self
                .state
                .lock()
                .map_err(poisoned)?
                .audit
                .get(id)
                .cloned()
                .unwrap_or_default())
        }
    }

    #[async_trait]
    impl RecordingVersions for MemoryPresaleStore {
        async fn put_recording(&self, recording: &Recording) -> Result<bool, StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            let versions = state
                .recordings
                .entry((recording.client_id.clone(), recording.call_id.clone()))
                .or_default();
            if versions.iter().any(|r| r.sha256 == recording.sha256) {
                return Ok(false);
            }
            versions.push(recording.clone());
            Ok(true)
        }

        async fn recordings(&self, client_id: &str, call_id: &str) -> Result<Vec<Recording>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            let mut versions = state
                .recordings
                .get(&(client_id.to_owned(), call_id.to_owned()))
                .cloned()
                .unwrap_or_default();
            versions.sort_by_key(|r| std::cmp::Reverse(r.received_at));
            Ok(versions)
        }

        async fn record_unrecognized(
            &self,
            _bucket: &str,
            key: &str,
            _version_id: Option<&str>,
            reason: &str,
            _at: time::OffsetDateTime,
        ) -> Result<(), StoreError> {
            self.state
                .lock()
                .map_err(poisoned)?
                .unrecognized
                .push((key.to_owned(), reason.to_owned()));
            Ok(())
        }
    }

    #[async_trait]
    impl WaitingRecordings for MemoryPresaleStore {
        async fn mark_waiting(
            &self,
            client_id: &str,
            call_id: &str,
            at: time::OffsetDateTime,
        ) -> Result<bool, StoreError> {
            let mut state = self.state.lock().map_err(poisoned)?;
            let call = (client_id.to_owned(), call_id.to_owned());
            if state.calls.contains_key(&call) {
                return Ok(false);
            }
            state.waiting_calls.insert(call);
            state
                .waiting
                .insert((at.date(), client_id.to_owned(), call_id.to_owned()));
            Ok(true)
        }

        async fn waiting(&self, day: time::Date, limit: u32) -> Result<Vec<(String, String)>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            Ok(state
                .waiting
                .iter()
                .filter(|(d, _, _)| *d == day)
                .take(limit as usize)
                .map(|(_, client, call)| (client.clone(), call.clone()))
                .collect())
        }

        async fn clear_waiting(&self, client_id: &str, call_id: &str, day: time::Date) -> Result<(), StoreError> {
            self.state
                .lock()
                .map_err(poisoned)?
                .waiting
                .remove(&(day, client_id.to_owned(), call_id.to_owned()));
            Ok(())
        }
    }

    #[async_trait]
    impl CustomerHistoryLookup for MemoryPresaleStore {
        async fn customer_history(&self, presale: &Presale) -> Result<CustomerHistory, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            let same_client = || {
                state
                    .presales
                    .values()
                    .map(|s| &s.presale)
                    .filter(|p| p.client_id == presale.client_id)
            };
            Ok(CustomerHistory {
                same_document: same_client()
                    .filter(|p| p.customer.document == presale.customer.document)
                    .cloned()
                    .collect(),
                same_phone: same_client()
                    .filter(|p| p.customer.phone == presale.customer.phone)
                    .cloned()
                    .collect(),
            })
        }
    }

    #[async_trait]
    impl ReviewQueue for MemoryPresaleStore {
        async fn review_queue(
            &self,
            client_id: &str,
            now: time::OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<QueueEntry>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            let ready = || {
                state
                    .presales
                    .values()
                    .map(|s| &s.presale)
                    .filter(|p| p.client_id == client_id && p.status == PresaleStatus::ReadyForReview)
            };
            let mut waiting: Vec<Presale> = ready().filter(|p| p.claim.is_none()).cloned().collect();
            waiting.sort_by_key(|p| {
                (
                    std::cmp::Reverse(p.risk_score.unwrap_or(0)),
                    p.ready_at.unwrap_or(p.updated_at),
                    p.id.clone(),
                )
            });
            let mut lapsed: Vec<Presale> = ready()
                .filter(|p| p.claim.as_ref().is_some_and(|c| !c.is_live(now)))
                .cloned()
                .collect();
            lapsed.sort_by_key(|p| (p.claim.as_ref().map(|c| c.lease_until), p.id.clone()));
            waiting.extend(lapsed);
            waiting.truncate(limit as usize);
            Ok(waiting.iter().map(QueueEntry::of).collect())
        }

        async fn held_claim(&self, validator_id: &str) -> Result<Option<HeldClaim>, StoreError> {
            Ok(self.state.lock().map_err(poisoned)?.claims.get(validator_id).cloned())
        }
    }

    #[async_trait]
    impl Outbox for MemoryPresaleStore {
        async fn pending_outbox(
            &self,
            now: time::OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<OutboxMessage>, StoreError> {
            Ok(self.state.lock().map_err(poisoned)?.outbox.pending(now, limit))
        }

        async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError> {
            self.state.lock().map_err(poisoned)?.outbox.mark_sent(message_id);
            Ok(())
        }

        async fn mark_failed(&self, message: &OutboxMessage, retry: Retry) -> Result<(), StoreError> {
            self.state.lock().map_err(poisoned)?.outbox.mark_failed(message, retry);
            Ok(())
        }

        async fn parked_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
            let mut parked = self.state.lock().map_err(poisoned)?.outbox.parked();
            parked.truncate(limit as usize);
            Ok(parked)
        }
    }

    #[async_trait]
    impl Counters for MemoryPresaleStore {
        async fn counters(&self, pk: &str) -> Result<Vec<CounterRow>, StoreError> {
            let state = self.state.lock().map_err(poisoned)?;
            Ok(state
                .counters
                .iter()
                .filter(|((p, _), _)| p == pk)
                .map(|((_, sk), values)| CounterRow {
                    sk: sk.clone(),
                    values: values.clone(),
                })
                .collect())
        }
    }
}
