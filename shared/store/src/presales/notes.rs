//! Notes on a pre-sale's audit chain: what happens to a pre-sale without changing its version
//! (a validator played the recording, renewed the lease on their claim). The note is chained
//! like any audit record (`AuditRecord::note`), and the pre-sale item is rewritten with the new
//! chain head, conditionally on the head and version read: concurrent notes cannot fork the
//! chain, and a decision made on the version the validator saw stays valid.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use backoffice_domain::audit::AuditRecord;
use backoffice_domain::presale::{Presale, PresaleId};

use super::DynamoPresaleStore;
use crate::dynamo::{Item, TransactFailure, corrupt, get_item, nanos, s, transact};
use crate::{ConflictKind, StoreError};

/// What a note does besides being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteEffect {
    /// Recorded once per `playback_id` (the client's id of one listening): a retried request
    /// finds the guard and records nothing.
    Playback { playback_id: String },
    /// The validator's claim item follows the pre-sale's new lease end.
    Renewal {
        validator_id: String,
        lease_until: time::OffsetDateTime,
    },
}

#[async_trait]
pub trait AuditNotes: Send + Sync {
    /// Append `audit` (a note: `audit.note > 0`, `audit.seq == presale.version`) and store
    /// `presale` as it stands after it, only if the chain's head is still `audit.prev_hash`
    /// and the version unchanged. `Conflict(AlreadyExists)`: the playback was recorded
    /// already; `Conflict(StaleVersion)`: the pre-sale or its chain moved on;
    /// `Conflict(ValidatorBusy)`: the claim item names another pre-sale.
    async fn append_note(&self, presale: &Presale, audit: &AuditRecord, effect: &NoteEffect) -> Result<(), StoreError>;

    /// The note a playback id recorded, if it did.
    async fn playback_note(&self, id: &PresaleId, playback_id: &str) -> Result<Option<AuditRecord>, StoreError>;
}

fn playback_sk(playback_id: &str) -> String {
    format!("PLAYBACK#{playback_id}")
}

#[async_trait]
impl AuditNotes for DynamoPresaleStore {
    async fn append_note(&self, presale: &Presale, audit: &AuditRecord, effect: &NoteEffect) -> Result<(), StoreError> {
        let head = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::presale_item(presale, &audit.hash)?))
            .condition_expression("#version = :version AND audit_head = :head")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", AttributeValue::N(presale.version.to_string()))
            .expression_attribute_values(":head", s(&audit.prev_hash))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().put(head).build(),
            self.put(Self::audit_item(audit)?, "attribute_not_exists(pk)")?,
        ];
        match effect {
            NoteEffect::Playback { playback_id } => {
                let mut guard: Item = serde_dynamo::to_item(audit).map_err(corrupt("serializing playback"))?;
                guard.insert("pk".into(), s(Self::presale_pk(&presale.id)));
                guard.insert("sk".into(), s(playback_sk(playback_id)));
                guard.insert("entity".into(), s("PLAYBACK"));
                items.push(self.put(guard, "attribute_not_exists(pk)")?);
            }
            NoteEffect::Renewal {
                validator_id,
                lease_until,
            } => {
                let mut claim = Item::new();
                claim.insert("pk".into(), s(Self::validator_pk(validator_id)));
                claim.insert("sk".into(), s("CLAIM"));
                claim.insert("entity".into(), s("VALIDATOR_CLAIM"));
                claim.insert("presale_id".into(), s(presale.id.as_str()));
                claim.insert("lease_until".into(), AttributeValue::N(nanos(*lease_until).to_string()));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(claim))
                    .condition_expression("presale_id = :presale")
                    .expression_attribute_values(":presale", s(presale.id.as_str()))
                    .build()
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
        }
        match transact(&self.client, items).await {
            Ok(()) => Ok(()),
            // The guard first: a retried playback also finds the head moved (by itself).
            Err(TransactFailure::Cancelled(c))
                if matches!(effect, NoteEffect::Playback { .. }) && c.condition_failed(2) =>
            {
                Err(StoreError::Conflict(ConflictKind::AlreadyExists))
            }
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(0) || c.condition_failed(1) => {
                Err(StoreError::Conflict(ConflictKind::StaleVersion))
            }
            Err(TransactFailure::Cancelled(c)) if c.any_condition_failed() => {
                Err(StoreError::Conflict(ConflictKind::ValidatorBusy))
            }
            Err(TransactFailure::Cancelled(c)) => Err(c.into()),
            Err(TransactFailure::Failed(e)) => Err(e),
        }
    }

    async fn playback_note(&self, id: &PresaleId, playback_id: &str) -> Result<Option<AuditRecord>, StoreError> {
        get_item(
            &self.client,
            &self.table,
            Self::presale_pk(id),
            playback_sk(playback_id),
        )
        .await?
        .map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading playback")))
        .transpose()
    }
}
