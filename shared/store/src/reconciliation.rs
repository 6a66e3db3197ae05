//! What reconciliation reads, across three tables, by key only (never a scan): the approved
//! sales of a time window, whether each has its shipment, and whether each shipment's sale has
//! its invoice. Read-only ports; the adapters project only the attributes they need.
//!
//! | read                           | table          | how                                                  |
//! |--------------------------------|----------------|------------------------------------------------------|
//! | approved sales created in a window | PresalesTable | Query `approved`: `gsi7pk = APPROVED`, `gsi2sk` (creation time) between the window's ends |
//! | a sale's shipment, and when    | ShipmentsTable | BatchGetItem `SHIPMENT#SH-S-{presale}` / `META`      |
//! | a sale's invoice               | InvoicesTable  | BatchGetItem `SALE#S-{presale}` / `INVOICE` (the guard issuing writes) |
//!
//! The `approved` index is sparse: only an approved pre-sale carries its key (`gsi7pk`), sorted
//! by `gsi2sk` = `{created ns:020}#{id}`; it projects only the client, the campaign and the
//! decision (docs/decisions/0013-operations-and-least-privilege.md, amended by issue 14).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use backoffice_domain::events::{SaleId, ShipmentId};
use backoffice_domain::presale::{PresaleId, PresaleStatus};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::StoreError;
use crate::dynamo::{Item, batch_get, nanos, query_all, s, string_attr};
use crate::sdk::SdkClient;

/// An approved pre-sale: a sale that must be shipped, then invoiced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedSale {
    pub presale_id: PresaleId,
    pub client_id: String,
    pub campaign_id: String,
    pub created_at: OffsetDateTime,
    pub approved_at: OffsetDateTime,
}

impl ApprovedSale {
    pub fn sale_id(&self) -> SaleId {
        SaleId::of(&self.presale_id)
    }
}

#[async_trait]
pub trait ApprovedSales: Send + Sync {
    /// Approved pre-sales created in `[from, to)`, oldest first, from an index (never a scan).
    async fn approved_created_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<ApprovedSale>, StoreError>;
}

#[async_trait]
pub trait ShipmentLookup: Send + Sync {
    /// When each of `sales`' shipment was created; a sale without a shipment is absent.
    async fn shipments_created(&self, sales: &[SaleId]) -> Result<HashMap<SaleId, OffsetDateTime>, StoreError>;
}

#[async_trait]
pub trait InvoiceLookup: Send + Sync {
    /// Which of `sales` have their invoice.
    async fn invoiced(&self, sales: &[SaleId]) -> Result<HashSet<SaleId>, StoreError>;
}

// ---------------------------------------------------------------------------------------------
// DynamoDB
// ---------------------------------------------------------------------------------------------

const APPROVED_INDEX: &str = "approved";

/// PresalesTable's sparse `approved` index.
#[derive(Clone, Debug)]
pub struct DynamoApprovedSales {
    client: SdkClient<Client>,
    table: String,
}

impl DynamoApprovedSales {
    pub fn new(client: impl Into<SdkClient<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
        }
    }
}

/// What the `approved` index projects of a pre-sale.
#[derive(Deserialize)]
struct ApprovedRow {
    pk: String,
    gsi2sk: String,
    client_id: String,
    campaign_id: String,
    #[serde(default)]
    decision: Option<DecisionRow>,
}

#[derive(Deserialize)]
struct DecisionRow {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

impl ApprovedRow {
    fn into_sale(self) -> Result<ApprovedSale, String> {
        let id = self.pk.strip_prefix("PRESALE#").ok_or("the key is not a pre-sale's")?;
        let presale_id = PresaleId::parse(id).map_err(|e| e.detail)?;
        let created_at = self
            .gsi2sk
            .split('#')
            .next()
            .and_then(|ns| ns.parse::<i128>().ok())
            .and_then(|ns| OffsetDateTime::from_unix_timestamp_nanos(ns).ok())
            .ok_or("gsi2sk does not start with the creation time")?;
        let approved_at = self.decision.ok_or("approved without a decision")?.at;
        Ok(ApprovedSale {
            presale_id,
            client_id: self.client_id,
            campaign_id: self.campaign_id,
            created_at,
            approved_at,
        })
    }
}

#[async_trait]
impl ApprovedSales for DynamoApprovedSales {
    async fn approved_created_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<ApprovedSale>, StoreError> {
        // gsi2sk is `{created ns:020}#{id}`: the bare instants bound it as text.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(APPROVED_INDEX)
            .key_condition_expression("gsi7pk = :approved AND gsi2sk BETWEEN :from AND :to")
            .expression_attribute_values(":approved", s(PresaleStatus::Approved.as_str()))
            .expression_attribute_values(":from", s(format!("{:020}", nanos(from))))
            .expression_attribute_values(":to", s(format!("{:020}", nanos(to))));
        let mut sales = Vec::new();
        for item in query_all(query).await? {
            let pk = string_attr(&item, "pk").unwrap_or_default();
            let read = serde_dynamo::from_item::<_, ApprovedRow>(item)
                .map_err(|e| e.to_string())
                .and_then(ApprovedRow::into_sale);
            match read {
                Ok(sale) => sales.push(sale),
                // One unreadable item must not blind the whole reconciliation: say which.
                Err(reason) => tracing::error!(pk, reason, "approved pre-sale unreadable; left out of reconciliation"),
            }
        }
        Ok(sales)
    }
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// ShipmentsTable, by the shipment id each sale's shipment has.
#[derive(Clone, Debug)]
pub struct DynamoShipmentLookup {
    client: SdkClient<Client>,
    table: String,
}

impl DynamoShipmentLookup {
    pub fn new(client: impl Into<SdkClient<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
        }
    }
}

#[async_trait]
impl ShipmentLookup for DynamoShipmentLookup {
    async fn shipments_created(&self, sales: &[SaleId]) -> Result<HashMap<SaleId, OffsetDateTime>, StoreError> {
        let by_pk: HashMap<String, &SaleId> = sales
            .iter()
            .map(|sale| (format!("SHIPMENT#{}", ShipmentId::of(sale)), sale))
            .collect();
        let keys = by_pk.keys().map(|pk| key(pk.clone(), "META")).collect();
        let mut created = HashMap::new();
        for item in batch_get(&self.client, &self.table, keys, Some("pk, created_at")).await? {
            let pk = string_attr(&item, "pk").unwrap_or_default();
            let Some(sale) = by_pk.get(&pk) else { continue };
            let at = string_attr(&item, "created_at")
                .and_then(|raw| OffsetDateTime::parse(&raw, &time::format_description::well_known::Rfc3339).ok())
                .ok_or_else(|| StoreError::Corrupt(format!("{pk}: created_at is not an RFC 3339 instant")))?;
            created.insert((*sale).clone(), at);
        }
        Ok(created)
    }
}

/// InvoicesTable, by the guard item issuing writes for every invoiced sale.
#[derive(Clone, Debug)]
pub struct DynamoInvoiceLookup {
    client: SdkClient<Client>,
    table: String,
}

impl DynamoInvoiceLookup {
    pub fn new(client: impl Into<SdkClient<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
        }
    }
}

#[async_trait]
impl InvoiceLookup for DynamoInvoiceLookup {
    async fn invoiced(&self, sales: &[SaleId]) -> Result<HashSet<SaleId>, StoreError> {
        let by_pk: HashMap<String, &SaleId> = sales.iter().map(|sale| (format!("SALE#{sale}"), sale)).collect();
        let keys = by_pk.keys().map(|pk| key(pk.clone(), "INVOICE")).collect();
        let items = batch_get(&self.client, &self.table, keys, Some("pk")).await?;
        Ok(items
            .iter()
            .filter_map(|item| by_pk.get(&string_attr(item, "pk")?).map(|sale| (*sale).clone()))
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemorySaleTrail;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::sync::Mutex;

    use super::*;

    fn poisoned<T>(_: T) -> StoreError {
        StoreError::Unavailable("in-memory store lock poisoned".into())
    }

    /// Approved sales, their shipments and their invoices, in memory.
    #[derive(Default)]
    pub struct MemorySaleTrail {
        approved: Mutex<Vec<ApprovedSale>>,
        shipments: Mutex<HashMap<SaleId, OffsetDateTime>>,
        invoiced: Mutex<HashSet<SaleId>>,
    }

    impl MemorySaleTrail {
        pub fn with_approved(self, sale: ApprovedSale) -> Self {
            if let Ok(mut approved) = self.approved.lock() {
                approved.push(sale);
            }
            self
        }

        /// `sale`'s shipment, created at `at`.
        pub fn with_shipment(self, sale: SaleId, at: OffsetDateTime) -> Self {
            if let Ok(mut shipments) = self.shipments.lock() {
                shipments.insert(sale, at);
            }
            self
        }

        pub fn with_invoice(self, sale: SaleId) -> Self {
            if let Ok(mut invoiced) = self.invoiced.lock() {
                invoiced.insert(sale);
            }
            self
        }
    }

    #[async_trait]
    impl ApprovedSales for MemorySaleTrail {
        async fn approved_created_between(
            &self,
            from: OffsetDateTime,
            to: OffsetDateTime,
        ) -> Result<Vec<ApprovedSale>, StoreError> {
            let mut sales: Vec<ApprovedSale> = self
                .approved
                .lock()
                .map_err(poisoned)?
                .iter()
                .filter(|sale| sale.created_at >= from && sale.created_at < to)
                .cloned()
                .collect();
            sales.sort_by_key(|sale| sale.created_at);
            Ok(sales)
        }
    }

    #[async_trait]
    impl ShipmentLookup for MemorySaleTrail {
        async fn shipments_created(&self, sales: &[SaleId]) -> Result<HashMap<SaleId, OffsetDateTime>, StoreError> {
            let shipments = self.shipments.lock().map_err(poisoned)?;
            Ok(sales
                .iter()
                .filter_map(|sale| shipments.get(sale).map(|at| (sale.clone(), *at)))
                .collect())
        }
    }

    #[async_trait]
    impl InvoiceLookup for MemorySaleTrail {
        async fn invoiced(&self, sales: &[SaleId]) -> Result<HashSet<SaleId>, StoreError> {
            let invoiced = self.invoiced.lock().map_err(poisoned)?;
            Ok(sales.iter().filter(|sale| invoiced.contains(*sale)).cloned().collect())
        }
    }
}
