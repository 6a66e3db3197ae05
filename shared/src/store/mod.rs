//! Persistence ports. The traits speak domain types only; `dynamo` implements them on
//! DynamoDB and `memory` in process for unit tests.

use async_trait::async_trait;

use crate::domain::audit::AuditRecord;
use crate::domain::catalog::CampaignCatalog;
use crate::domain::presale::{Presale, PresaleId, PresaleStatus};
use crate::domain::recording::{CustomerHistory, Recording};

pub mod contacts;
pub mod dynamo;
pub mod invoices;
pub mod memory;
pub mod shipments;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the record changed (or exists) since it was read.
    #[error("conflict: {0:?}")]
    Conflict(ConflictKind),
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// The service could not be reached or throttled us: retrying may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data that no longer parses: a bug or a manual edit; never retried.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The service refused the request itself (validation, missing table): a bug or a
    /// misconfiguration; never retried.
    #[error("store error: {0}")]
    Backend(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    AlreadyExists,
    DuplicateCallId,
    StaleVersion,
}

/// A page of results and the opaque cursor of the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PresaleQuery {
    pub campaign_id: String,
    pub status: Option<PresaleStatus>,
    /// Agents see only their own pre-sales.
    pub agent_id: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// A pre-sale with the head of its audit chain.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPresale {
    pub presale: Presale,
    pub audit_head: String,
}

#[async_trait]
pub trait PresaleStore: Send + Sync {
    /// Insert a new pre-sale with its first audit record; fails if the id or the client's
    /// call id is already taken.
    async fn create(&self, presale: &Presale, audit: &AuditRecord) -> Result<(), StoreError>;

    async fn get(&self, id: &PresaleId) -> Result<Option<StoredPresale>, StoreError>;

    /// Replace the pre-sale if it is still at `expected_version` and `expected_status`, and
    /// append `audit`, in one transaction.
    async fn save(
        &self,
        presale: &Presale,
        expected_version: u64,
        expected_status: PresaleStatus,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    /// Newest first, from an index (never a scan).
    async fn list(&self, query: &PresaleQuery) -> Result<Page<Presale>, StoreError>;

    /// The pre-sale registered for a client's call id, if any.
    async fn find_by_call(&self, client_id: &str, call_id: &str) -> Result<Option<PresaleId>, StoreError>;

    /// The audit chain in `seq` order.
    async fn audit_trail(&self, id: &PresaleId) -> Result<Vec<AuditRecord>, StoreError>;

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

    /// The client's other pre-sales with the same document or the same phone (from indexes).
    async fn customer_history(&self, presale: &Presale) -> Result<CustomerHistory, StoreError>;

    /// A client's pre-sales waiting for review, highest risk first, then oldest (claimed ones
    /// included: the caller skips live claims).
    async fn review_queue(&self, client_id: &str, limit: u32) -> Result<Vec<Presale>, StoreError>;

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

    /// Outbox messages not yet confirmed sent, oldest first.
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;

    async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError>;

    /// Counter items under `pk` (e.g. a campaign's review metrics of one day).
    async fn counters(&self, pk: &str) -> Result<Vec<CounterRow>, StoreError>;
}

/// A message to publish after its state change commits; kept until the send is confirmed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxMessage {
    pub message_id: String,
    /// Which queue: a name the publisher maps to a URL ("sales").
    pub destination: String,
    /// The full JSON envelope (type, id, occurred_at, correlation_id, body).
    pub body: String,
    pub created_at_ns: i64,
}

/// `ADD` increments on one counter item, applied atomically with a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDelta {
    pub pk: String,
    pub sk: String,
    pub increments: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    pub outbox: Option<OutboxMessage>,
    pub counters: Vec<CounterDelta>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub sk: String,
    pub values: std::collections::BTreeMap<String, i64>,
}

/// What dispatch needs from a campaign's configuration.
#[async_trait]
pub trait FulfillmentDirectory: Send + Sync {
    /// Shipping data per SKU, and the campaign's fulfillment configuration (`None`: the
    /// defaults shipped in code).
    async fn fulfillment(
        &self,
        campaign_id: &str,
    ) -> Result<
        (
            std::collections::BTreeMap<String, crate::domain::fulfillment::ShippingSpec>,
            Option<crate::domain::fulfillment::FulfillmentConfig>,
        ),
        StoreError,
    >;
}

/// What invoicing needs from a client's configuration.
#[async_trait]
pub trait BillingDirectory: Send + Sync {
    /// The client's billing profile; `None` if the client has none configured.
    async fn billing_profile(
        &self,
        client_id: &str,
    ) -> Result<Option<crate::domain::invoice::BillingProfile>, StoreError>;
}

#[async_trait]
pub trait CampaignDirectory: Send + Sync {
    /// The campaign's configuration and price list; `None` if no such campaign.
    async fn catalog(&self, campaign_id: &str) -> Result<Option<CampaignCatalog>, StoreError>;
}

/// A stored idempotent response, and the fingerprint of the request that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is ours: process the request.
    Started,
    Completed {
        fingerprint: String,
        response_json: String,
    },
    InProgress {
        fingerprint: String,
    },
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claim `key` unless a live record holds it. `lock_until` bounds how long an in-progress
    /// claim blocks retries (the invocation deadline), `expires_at` how long the response is kept
    /// (all epoch seconds).
    async fn begin(
        &self,
        key: &str,
        fingerprint: &str,
        now: i64,
        lock_until: i64,
        expires_at: i64,
    ) -> Result<IdempotencyBegin, StoreError>;

    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response_json: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// Give the key back after a failure that the client should be able to retry.
    async fn release(&self, key: &str) -> Result<(), StoreError>;
}
