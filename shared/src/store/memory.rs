//! In-process adapters with the same semantics as the DynamoDB ones (conditional writes,
//! all-or-nothing transactions), for handler unit tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::audit::AuditRecord;
use crate::domain::catalog::CampaignCatalog;
use crate::domain::presale::{Presale, PresaleId, PresaleStatus};
use crate::domain::recording::{CustomerHistory, Recording};

use super::{
    CampaignDirectory, ConflictKind, CounterRow, Effects, IdempotencyBegin, IdempotencyStore, OutboxMessage, Page,
    PresaleQuery, PresaleStore, StoreError, StoredPresale,
};

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
    outbox: BTreeMap<String, (OutboxMessage, bool)>,
    counters: BTreeMap<(String, String), BTreeMap<String, i64>>,
}

#[derive(Default)]
pub struct MemoryPresaleStore {
    state: Mutex<PresaleState>,
}

impl MemoryPresaleStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Test hook: overwrite a stored pre-sale as if another writer had changed it.
    pub fn put_raw(&self, stored: StoredPresale) {
        if let Ok(mut state) = self.state.lock() {
            state.presales.insert(stored.presale.id.clone(), stored);
        }
    }
}

#[async_trait]
impl PresaleStore for MemoryPresaleStore {
    async fn create(&self, presale: &Presale, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut state = self.state.lock().map_err(poisoned)?;
        if state.presales.contains_key(&presale.id) {
            return Err(StoreError::Conflict(ConflictKind::AlreadyExists));
        }
        let call = (presale.client_id.clone(), presale.call_id.clone());
        if state.calls.contains_key(&call) {
            return Err(StoreError::Conflict(ConflictKind::DuplicateCallId));
        }
        state.calls.insert(call, presale.id.clone());
        state.audit.insert(presale.id.clone(), vec![audit.clone()]);
        state.presales.insert(
            presale.id.clone(),
            StoredPresale {
                presale: presale.clone(),
                audit_head: audit.hash.clone(),
            },
        );
        Ok(())
    }

    async fn get(&self, id: &PresaleId) -> Result<Option<StoredPresale>, StoreError> {
        Ok(self.state.lock().map_err(poisoned)?.presales.get(id).cloned())
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

    async fn save_with(
        &self,
        presale: &Presale,
        expected_version: u64,
        expected_status: PresaleStatus,
        audit: &AuditRecord,
        effects: &Effects,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().map_err(poisoned)?;
        if let Some(message) = &effects.outbox {
            if state.outbox.contains_key(&message.message_id) {
                return Err(StoreError::Conflict(ConflictKind::AlreadyExists));
            }
        }
        let current = state
            .presales
            .get(&presale.id)
            .ok_or(StoreError::Conflict(ConflictKind::StaleVersion))?;
        if current.presale.version != expected_version || current.presale.status != expected_status {
            return Err(StoreError::Conflict(ConflictKind::StaleVersion));
        }
        state.audit.entry(presale.id.clone()).or_default().push(audit.clone());
        state.presales.insert(
            presale.id.clone(),
            StoredPresale {
                presale: presale.clone(),
                audit_head: audit.hash.clone(),
            },
        );
        if let Some(message) = &effects.outbox {
            state
                .outbox
                .insert(message.message_id.clone(), (message.clone(), false));
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

    async fn list(&self, query: &PresaleQuery) -> Result<Page<Presale>, StoreError> {
        let state = self.state.lock().map_err(poisoned)?;
        let mut matching: Vec<&Presale> = state
            .presales
            .values()
            .map(|s| &s.presale)
            .filter(|p| p.campaign_id == query.campaign_id)
            .filter(|p| query.status.is_none_or(|s| p.status == s))
            .filter(|p| query.agent_id.as_ref().is_none_or(|a| &p.agent_id == a))
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

    async fn find_by_call(&self, client_id: &str, call_id: &str) -> Result<Option<PresaleId>, StoreError> {
        Ok(self
            .state
            .lock()
            .map_err(poisoned)?
            .calls
            .get(&(client_id.to_owned(), call_id.to_owned()))
            .cloned())
    }

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

    async fn review_queue(&self, client_id: &str, limit: u32) -> Result<Vec<Presale>, StoreError> {
        let state = self.state.lock().map_err(poisoned)?;
        let mut queue: Vec<Presale> = state
            .presales
            .values()
            .map(|s| &s.presale)
            .filter(|p| p.client_id == client_id && p.status == PresaleStatus::ReadyForReview)
            .cloned()
            .collect();
        queue.sort_by_key(|p| {
            (
                std::cmp::Reverse(p.risk_score.unwrap_or(0)),
                p.ready_at.unwrap_or(p.updated_at),
                p.id.clone(),
            )
        });
        queue.truncate(limit as usize);
        Ok(queue)
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        let state = self.state.lock().map_err(poisoned)?;
        let mut pending: Vec<OutboxMessage> = state
            .outbox
            .values()
            .filter(|(_, sent)| !sent)
            .map(|(m, _)| m.clone())
            .collect();
        pending.sort_by_key(|m| m.created_at_ns);
        pending.truncate(limit as usize);
        Ok(pending)
    }

    async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError> {
        if let Some(entry) = self.state.lock().map_err(poisoned)?.outbox.get_mut(message_id) {
            entry.1 = true;
        }
        Ok(())
    }

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

#[derive(Default)]
pub struct MemoryCampaignDirectory {
    catalogs: Mutex<HashMap<String, CampaignCatalog>>,
}

impl MemoryCampaignDirectory {
    pub fn with(catalogs: impl IntoIterator<Item = CampaignCatalog>) -> Self {
        let map = catalogs
            .into_iter()
            .map(|c| (c.campaign.campaign_id.clone(), c))
            .collect();
        Self {
            catalogs: Mutex::new(map),
        }
    }
}

#[async_trait]
impl CampaignDirectory for MemoryCampaignDirectory {
    async fn catalog(&self, campaign_id: &str) -> Result<Option<CampaignCatalog>, StoreError> {
        Ok(self.catalogs.lock().map_err(poisoned)?.get(campaign_id).cloned())
    }
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
