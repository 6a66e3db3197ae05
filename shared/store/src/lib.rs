//! Persistence: one module per table (and one for the documents bucket), each with its narrow
//! ports, its AWS adapter and its in-memory twin (behind the `testing` feature), in that order.
//! Ports speak domain types only; no SDK type crosses them.

pub mod accounts;
pub mod anchors;
pub mod billing;
pub mod config;
pub mod contacts;
pub mod counters;
pub mod credit_notes;
pub mod documents;
pub(crate) mod dynamo;
pub mod email_feedback;
pub mod idempotency;
pub mod invoices;
pub mod kpis;
pub mod ledger;
pub mod outbox;
pub mod payments;
pub mod presales;
pub mod reconciliation;
pub mod register;
pub mod reminders;
pub mod sdk;
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
    /// The validator already holds a live claim on another pre-sale.
    ValidatorBusy,
}

/// A page of results and the opaque cursor of the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
