//! Shipments: the port, its DynamoDB adapter (ShipmentsTable) and an in-memory one.
//!
//! | item        | pk                     | sk                | index                |
//! |-------------|------------------------|-------------------|----------------------|
//! | shipment    | `SHIPMENT#{id}`        | `META`            |                      |
//! | audit       | `SHIPMENT#{id}`        | `AUDIT#{seq:010}` |                      |
//! | event       | `SHIPMENT#{id}`        | `EVENT#{event id}` |                     |
//! | event id    | `COURIER_EVENT#{courier}#{event id}` | `META` |                     |
//! | outbox      | `OUTBOX#{message id}`  | `MESSAGE`         | outbox-pending (sparse) |

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use backoffice_domain::audit::AuditRecord;
use backoffice_domain::shipment::Shipment;

use crate::StoreError;
use crate::dynamo::{TransactFailure, corrupt, get_item, query_all, transact, transact_put};
use crate::outbox::{Outbox, OutboxMessage, Retry, mark_failed, mark_sent, outbox_put, parked_outbox, pending_outbox};
use crate::sdk::SdkClient;

#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    Created,
    /// This sale's shipment exists already (a redelivered SaleConfirmed).
    AlreadyExists,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredShipment {
    pub shipment: Shipment,
    pub audit_head: String,
    /// When the event that set the current status happened.
    pub last_event_at: Option<time::OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRecorded {
    Recorded,
    /// This courier event id was recorded before, on this shipment.
    Duplicate,
    /// The courier used this event id for another shipment: event ids are unique per courier.
    IdTaken,
}

/// What dispatch needs: create a sale's one shipment.
#[async_trait]
pub trait ShipmentCreate: Send + Sync {
    /// The shipment, its first audit record and its invoice request, in one transaction, only
    /// if no shipment exists for the sale.
    async fn create(
        &self,
        shipment: &Shipment,
        audit: &AuditRecord,
        outbox: &OutboxMessage,
    ) -> Result<Created, StoreError>;
}

/// What tracking needs: read a shipment and record couriers' events on it.
#[async_trait]
pub trait ShipmentTracking: Send + Sync {
    /// The shipment with its audit head and the time of its latest event.
    async fn load(&self, shipment_id: &str) -> Result<Option<StoredShipment>, StoreError>;
    /// The event (once per event id), the shipment at `expected_version + 1`, its audit
    /// record and the event's billing message if any (a return, cash collected), in one
    /// transaction.
    async fn record_event(
        &self,
        stored: &StoredShipment,
        expected_version: u64,
        event: &backoffice_domain::shipment::TrackingEvent,
        audit: &AuditRecord,
        outbox: Option<&OutboxMessage>,
    ) -> Result<EventRecorded, StoreError>;
    async fn events(&self, shipment_id: &str) -> Result<Vec<backoffice_domain::shipment::TrackingEvent>, StoreError>;
    async fn get(&self, shipment_id: &str) -> Result<Option<Shipment>, StoreError>;
}

#[derive(Clone, Debug)]
pub struct DynamoShipmentStore {
    client: SdkClient<Client>,
    table: String,
}

impl DynamoShipmentStore {
    pub fn new(client: impl Into<SdkClient<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
        }
    }

    /// Create only: the item must not exist yet.
    fn put(&self, item: HashMap<String, AttributeValue>) -> Result<TransactWriteItem, StoreError> {
        transact_put(&self.table, item, Some("attribute_not_exists(pk)"))
    }
}

#[async_trait]
impl ShipmentCreate for DynamoShipmentStore {
    async fn create(
        &self,
        shipment: &Shipment,
        audit: &AuditRecord,
        outbox: &OutboxMessage,
    ) -> Result<Created, StoreError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(shipment).map_err(corrupt("serializing shipment"))?;
        item.insert(
            "pk".into(),
            AttributeValue::S(format!("SHIPMENT#{}", shipment.shipment_id)),
        );
        item.insert("sk".into(), AttributeValue::S("META".into()));
        item.insert("audit_head".into(), AttributeValue::S(audit.hash.clone()));
        let mut audit_item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(audit).map_err(corrupt("serializing audit"))?;
        audit_item.insert(
            "pk".into(),
            AttributeValue::S(format!("SHIPMENT#{}", shipment.shipment_id)),
        );
        audit_item.insert("sk".into(), AttributeValue::S(format!("AUDIT#{:010}", audit.seq)));
        let items = vec![self.put(item)?, self.put(audit_item)?, outbox_put(&self.table, outbox)?];
        match transact(&self.client, items).await {
            Ok(()) => Ok(Created::Created),
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(0) => Ok(Created::AlreadyExists),
            Err(TransactFailure::Cancelled(c)) => Err(c.into()),
            Err(TransactFailure::Failed(e)) => Err(e),
        }
    }
}

#[async_trait]
impl ShipmentTracking for DynamoShipmentStore {
    async fn load(&self, shipment_id: &str) -> Result<Option<StoredShipment>, StoreError> {
        let Some(item) = get_item(&self.client, &self.table, format!("SHIPMENT#{shipment_id}"), "META").await? else {
            return Ok(None);
        };
        let audit_head = item
            .get("audit_head")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let last_event_at = item
            .get("last_event_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i128>().ok())
            .and_then(|n| time::OffsetDateTime::from_unix_timestamp_nanos(n).ok());
        let shipment = serde_dynamo::from_item(item).map_err(corrupt("reading shipment"))?;
        Ok(Some(StoredShipment {
            shipment,
            audit_head,
            last_event_at,
        }))
    }

    async fn record_event(
        &self,
        stored: &StoredShipment,
        expected_version: u64,
        event: &backoffice_domain::shipment::TrackingEvent,
        audit: &AuditRecord,
        outbox: Option<&OutboxMessage>,
    ) -> Result<EventRecorded, StoreError> {
        let shipment = &stored.shipment;
        let pk = format!("SHIPMENT#{}", shipment.shipment_id);
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(shipment).map_err(corrupt("serializing shipment"))?;
        item.insert("pk".into(), AttributeValue::S(pk.clone()));
        item.insert("sk".into(), AttributeValue::S("META".into()));
        item.insert("audit_head".into(), AttributeValue::S(audit.hash.clone()));
        if let Some(at) = stored.last_event_at {
            item.insert(
                "last_event_at".into(),
                AttributeValue::N(at.unix_timestamp_nanos().to_string()),
            );
        }
        let meta = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut event_item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(event).map_err(corrupt("serializing event"))?;
        event_item.insert("pk".into(), AttributeValue::S(pk.clone()));
        event_item.insert("sk".into(), AttributeValue::S(format!("EVENT#{}", event.event_id)));
        let mut audit_item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(audit).map_err(corrupt("serializing audit"))?;
        audit_item.insert("pk".into(), AttributeValue::S(pk));
        audit_item.insert("sk".into(), AttributeValue::S(format!("AUDIT#{:010}", audit.seq)));
        // The courier's event id, once per courier: a captured event cannot be replayed against
        // another of its shipments under the same id.
        let courier = &shipment.plan.courier_id;
        let mut guard = HashMap::new();
        guard.insert(
            "pk".to_owned(),
            AttributeValue::S(format!("COURIER_EVENT#{courier}#{}", event.event_id)),
        );
        guard.insert("sk".to_owned(), AttributeValue::S("META".into()));
        guard.insert(
            "shipment_id".to_owned(),
            AttributeValue::S(shipment.shipment_id.to_string()),
        );
        let guard = Put::builder()
            .table_name(&self.table)
            .set_item(Some(guard))
            .condition_expression("attribute_not_exists(pk) OR shipment_id = :s")
            .expression_attribute_values(":s", AttributeValue::S(shipment.shipment_id.to_string()))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().put(meta).build(),
            self.put(event_item)?,
            self.put(audit_item)?,
            TransactWriteItem::builder().put(guard).build(),
        ];
        if let Some(message) = outbox {
            items.push(outbox_put(&self.table, message)?);
        }
        match transact(&self.client, items).await {
            Ok(()) => Ok(EventRecorded::Recorded),
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(1) => Ok(EventRecorded::Duplicate),
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(3) => Ok(EventRecorded::IdTaken),
            Err(TransactFailure::Cancelled(_)) => Err(StoreError::Conflict(crate::ConflictKind::StaleVersion)),
            Err(TransactFailure::Failed(e)) => Err(e),
        }
    }

    async fn events(&self, shipment_id: &str) -> Result<Vec<backoffice_domain::shipment::TrackingEvent>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :e)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("SHIPMENT#{shipment_id}")))
            .expression_attribute_values(":e", AttributeValue::S("EVENT#".into()))
            .consistent_read(true);
        let mut events: Vec<backoffice_domain::shipment::TrackingEvent> = query_all(query)
            .await?
            .into_iter()
            .map(|mut item| {
                // The event type refuses unknown fields (it is also the webhook's input): drop the keys.
                item.remove("pk");
                item.remove("sk");
                serde_dynamo::from_item(item).map_err(corrupt("reading event"))
            })
            .collect::<Result<_, _>>()?;
        events.sort_by_key(|e| e.occurred_at);
        Ok(events)
    }

    async fn get(&self, shipment_id: &str) -> Result<Option<Shipment>, StoreError> {
        Ok(self.load(shipment_id).await?.map(|stored| stored.shipment))
    }
}

#[async_trait]
impl Outbox for DynamoShipmentStore {
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

// ---------------------------------------------------------------------------------------------
// In-memory twin: the same conditions, for handler tests.
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryShipmentStore;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// In-process adapter for handler tests.
    #[derive(Default)]
    pub struct MemoryShipmentStore {
        shipments: Mutex<BTreeMap<String, Shipment>>,
        outbox: Mutex<crate::outbox::MemoryOutbox>,
        events: Mutex<BTreeMap<String, Vec<backoffice_domain::shipment::TrackingEvent>>>,
        /// (courier, event id) → shipment id.
        event_ids: Mutex<BTreeMap<(String, String), String>>,
        last_event_at: Mutex<BTreeMap<String, time::OffsetDateTime>>,
    }

    fn poisoned<T>(_: T) -> StoreError {
        StoreError::Unavailable("in-memory store lock poisoned".into())
    }

    #[async_trait]
    impl ShipmentCreate for MemoryShipmentStore {
        async fn create(
            &self,
            shipment: &Shipment,
            _audit: &AuditRecord,
            outbox: &OutboxMessage,
        ) -> Result<Created, StoreError> {
            let mut shipments = self.shipments.lock().map_err(poisoned)?;
            if shipments.contains_key(shipment.shipment_id.as_str()) {
                return Ok(Created::AlreadyExists);
            }
            shipments.insert(shipment.shipment_id.to_string(), shipment.clone());
            self.outbox.lock().map_err(poisoned)?.insert(outbox);
            Ok(Created::Created)
        }
    }

    #[async_trait]
    impl ShipmentTracking for MemoryShipmentStore {
        async fn load(&self, shipment_id: &str) -> Result<Option<StoredShipment>, StoreError> {
            let last_event_at = self.last_event_at.lock().map_err(poisoned)?.get(shipment_id).copied();
            Ok(self
                .shipments
                .lock()
                .map_err(poisoned)?
                .get(shipment_id)
                .cloned()
                .map(|shipment| StoredShipment {
                    shipment,
                    audit_head: String::new(),
                    last_event_at,
                }))
        }

        async fn record_event(
            &self,
            stored: &StoredShipment,
            expected_version: u64,
            event: &backoffice_domain::shipment::TrackingEvent,
            _audit: &AuditRecord,
            outbox: Option<&OutboxMessage>,
        ) -> Result<EventRecorded, StoreError> {
            let mut shipments = self.shipments.lock().map_err(poisoned)?;
            let mut events = self.events.lock().map_err(poisoned)?;
            let history = events.entry(stored.shipment.shipment_id.to_string()).or_default();
            if history.iter().any(|e| e.event_id == event.event_id) {
                return Ok(EventRecorded::Duplicate);
            }
            let mut event_ids = self.event_ids.lock().map_err(poisoned)?;
            let id_key = (stored.shipment.plan.courier_id.clone(), event.event_id.clone());
            if event_ids
                .get(&id_key)
                .is_some_and(|other| other != stored.shipment.shipment_id.as_str())
            {
                return Ok(EventRecorded::IdTaken);
            }
            if shipments.get(stored.shipment.shipment_id.as_str()).map(|s| s.version) != Some(expected_version) {
                return Err(StoreError::Conflict(crate::ConflictKind::StaleVersion));
            }
            history.push(event.clone());
            if let Some(message) = outbox {
                self.outbox.lock().map_err(poisoned)?.insert(message);
            }
            event_ids.insert(id_key, stored.shipment.shipment_id.to_string());
            shipments.insert(stored.shipment.shipment_id.to_string(), stored.shipment.clone());
            if let Some(at) = stored.last_event_at {
                self.last_event_at
                    .lock()
                    .map_err(poisoned)?
                    .insert(stored.shipment.shipment_id.to_string(), at);
            }
            Ok(EventRecorded::Recorded)
        }

        async fn events(
            &self,
            shipment_id: &str,
        ) -> Result<Vec<backoffice_domain::shipment::TrackingEvent>, StoreError> {
            let mut events = self
                .events
                .lock()
                .map_err(poisoned)?
                .get(shipment_id)
                .cloned()
                .unwrap_or_default();
            events.sort_by_key(|e| e.occurred_at);
            Ok(events)
        }

        async fn get(&self, shipment_id: &str) -> Result<Option<Shipment>, StoreError> {
            Ok(self.shipments.lock().map_err(poisoned)?.get(shipment_id).cloned())
        }
    }

    #[async_trait]
    impl Outbox for MemoryShipmentStore {
        async fn pending_outbox(
            &self,
            now: time::OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<OutboxMessage>, StoreError> {
            Ok(self.outbox.lock().map_err(poisoned)?.pending(now, limit))
        }

        async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError> {
            self.outbox.lock().map_err(poisoned)?.mark_sent(message_id);
            Ok(())
        }

        async fn mark_failed(&self, message: &OutboxMessage, retry: Retry) -> Result<(), StoreError> {
            self.outbox.lock().map_err(poisoned)?.mark_failed(message, retry);
            Ok(())
        }

        async fn parked_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
            let mut parked = self.outbox.lock().map_err(poisoned)?.parked();
            parked.truncate(limit as usize);
            Ok(parked)
        }
    }
}
