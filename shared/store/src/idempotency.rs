//! The idempotency table (IdempotencyTable): one record per `Idempotency-Key`, IN_PROGRESS
//! until the first response is stored, then that response for every repeat.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::StoreError;
use crate::dynamo::{Item, s, sdk_error, string_attr};
use crate::sdk::SdkClient;

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

// ---------------------------------------------------------------------------------------------
// DynamoDB
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct DynamoIdempotencyStore {
    client: SdkClient<Client>,
    table: String,
}

impl DynamoIdempotencyStore {
    pub fn new(client: impl Into<SdkClient<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
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

// ---------------------------------------------------------------------------------------------
// In-memory twin
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryIdempotencyStore;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    fn poisoned<T>(_: T) -> StoreError {
        StoreError::Unavailable("in-memory store lock poisoned".into())
    }

    #[derive(Debug, Clone)]
    struct IdemRecord {
        fingerprint: String,
        response_json: Option<String>,
        lock_until: i64,
        expires_at: i64,
    }

    #[derive(Default)]
    pub struct MemoryIdempotencyStore {
        records: Mutex<HashMap<String, IdemRecord>>,
    }

    impl MemoryIdempotencyStore {
        pub fn new() -> Self {
            Self::default()
        }
    }

    #[async_trait]
    impl IdempotencyStore for MemoryIdempotencyStore {
        async fn begin(
            &self,
            key: &str,
            fingerprint: &str,
            now: i64,
            lock_until: i64,
            expires_at: i64,
        ) -> Result<IdempotencyBegin, StoreError> {
            let mut records = self.records.lock().map_err(poisoned)?;
            if let Some(existing) = records.get(key) {
                let live = existing.expires_at > now && (existing.response_json.is_some() || existing.lock_until > now);
                if live {
                    return Ok(match &existing.response_json {
                        Some(json) => IdempotencyBegin::Completed {
                            fingerprint: existing.fingerprint.clone(),
                            response_json: json.clone(),
                        },
                        None => IdempotencyBegin::InProgress {
                            fingerprint: existing.fingerprint.clone(),
                        },
                    });
                }
            }
            records.insert(
                key.to_owned(),
                IdemRecord {
                    fingerprint: fingerprint.to_owned(),
                    response_json: None,
                    lock_until,
                    expires_at,
                },
            );
            Ok(IdempotencyBegin::Started)
        }

        async fn complete(
            &self,
            key: &str,
            fingerprint: &str,
            response_json: &str,
            expires_at: i64,
        ) -> Result<(), StoreError> {
            let mut records = self.records.lock().map_err(poisoned)?;
            records.insert(
                key.to_owned(),
                IdemRecord {
                    fingerprint: fingerprint.to_owned(),
                    response_json: Some(response_json.to_owned()),
                    lock_until: 0,
                    expires_at,
                },
            );
            Ok(())
        }

        async fn release(&self, key: &str) -> Result<(), StoreError> {
            self.records.lock().map_err(poisoned)?.remove(key);
            Ok(())
        }
    }
}
