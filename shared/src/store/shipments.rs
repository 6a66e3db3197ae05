//! Shipments: the port, its DynamoDB adapter (ShipmentsTable) and an in-memory one.
//!
//! | item        | pk                     | sk                | index                |
//! |-------------|------------------------|-------------------|----------------------|
//! | shipment    | `SHIPMENT#{id}`        | `META`            |                      |
//! | audit       | `SHIPMENT#{id}`        | `AUDIT#{seq:010}` |                      |
//! | outbox      | `OUTBOX#{message id}`  | `MESSAGE`         | outbox-pending (sparse) |

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use crate::domain::audit::AuditRecord;
use crate::domain::shipment::Shipment;

use super::dynamo::{mark_sent, outbox_put, pending_outbox, sdk_error};
use super::{OutboxMessage, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    Created,
    /// This sale's shipment exists already (a redelivered SaleConfirmed).
    AlreadyExists,
}

#[async_trait]
pub trait ShipmentStore: Send + Sync {
    /// The shipment, its first audit record and its invoice request, in one transaction, only
    /// if no shipment exists for the sale.
    async fn create(&self, shipment: &Shipment, audit: &AuditRecord, outbox: &OutboxMessage) -> Result<Created, StoreError>;
    async fn get(&self, shipment_id: &str) -> Result<Option<Shipment>, StoreError>;
    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;
    async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError>;
}

#[derive(Clone, Debug)]
pub struct DynamoShipmentStore {
    client: Client,
    table: String,
}

impl DynamoShipmentStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn put(&self, item: HashMap<String, AttributeValue>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

fn corrupt(what: &'static str) -> impl Fn(serde_dynamo::Error) -> StoreError {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

#[async_trait]
impl ShipmentStore for DynamoShipmentStore {
    async fn create(&self, shipment: &Shipment, audit: &AuditRecord, outbox: &OutboxMessage) -> Result<Created, StoreError> {
        let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(shipment).map_err(corrupt("serializing shipment"))?;
        item.insert("pk".into(), AttributeValue::S(format!("SHIPMENT#{}", shipment.shipment_id)));
        item.insert("sk".into(), AttributeValue::S("META".into()));
        item.insert("audit_head".into(), AttributeValue::S(audit.hash.clone()));
        let mut audit_item: HashMap<String, AttributeValue> = serde_dynamo::to_item(audit).map_err(corrupt("serializing audit"))?;
        audit_item.insert("pk".into(), AttributeValue::S(format!("SHIPMENT#{}", shipment.shipment_id)));
        audit_item.insert("sk".into(), AttributeValue::S(format!("AUDIT#{:010}", audit.seq)));
        let items = vec![self.put(item)?, self.put(audit_item)?, outbox_put(&self.table, outbox)?];
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Created::Created),
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                let reasons: Vec<String> = match e.err() {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                        c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect()
                    }
                    _ => vec![],
                };
                if reasons.first().is_some_and(|r| r == "ConditionalCheckFailed") {
                    Ok(Created::AlreadyExists)
                } else {
                    Err(StoreError::Unavailable(format!("shipment transaction cancelled: {reasons:?}")))
                }
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn get(&self, shipment_id: &str) -> Result<Option<Shipment>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("SHIPMENT#{shipment_id}")))
            .key("sk", AttributeValue::S("META".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        output.item.map(|item| serde_dynamo::from_item(item).map_err(corrupt("reading shipment"))).transpose()
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        pending_outbox(&self.client, &self.table, limit).await
    }

    async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError> {
        mark_sent(&self.client, &self.table, message_id).await
    }
}

/// In-process adapter for handler tests.
#[derive(Default)]
pub struct MemoryShipmentStore {
    shipments: Mutex<BTreeMap<String, Shipment>>,
    outbox: Mutex<BTreeMap<String, (OutboxMessage, bool)>>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("in-memory store lock poisoned".into())
}

#[async_trait]
impl ShipmentStore for MemoryShipmentStore {
    async fn create(&self, shipment: &Shipment, _audit: &AuditRecord, outbox: &OutboxMessage) -> Result<Created, StoreError> {
        let mut shipments = self.shipments.lock().map_err(poisoned)?;
        if shipments.contains_key(&shipment.shipment_id) {
            return Ok(Created::AlreadyExists);
        }
        shipments.insert(shipment.shipment_id.clone(), shipment.clone());
        self.outbox.lock().map_err(poisoned)?.insert(outbox.message_id.clone(), (outbox.clone(), false));
        Ok(Created::Created)
    }

    async fn get(&self, shipment_id: &str) -> Result<Option<Shipment>, StoreError> {
        Ok(self.shipments.lock().map_err(poisoned)?.get(shipment_id).cloned())
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        let outbox = self.outbox.lock().map_err(poisoned)?;
        Ok(outbox.values().filter(|(_, sent)| !sent).map(|(m, _)| m.clone()).take(limit as usize).collect())
    }

    async fn mark_sent(&self, message_id: &str) -> Result<(), StoreError> {
        if let Some(entry) = self.outbox.lock().map_err(poisoned)?.get_mut(message_id) {
            entry.1 = true;
        }
        Ok(())
    }
}
