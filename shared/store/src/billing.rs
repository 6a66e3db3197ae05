//! Client billing runs (issue 17, ADR 0028), on InvoicesTable beside the invoices they lead to:
//!
//! | item        | pk                      | sk            | what |
//! |-------------|-------------------------|---------------|------|
//! | closed run  | `BILLRUN#{client}`      | `{YYYY-MM}`   | when it closed, its pricing (lines, evidence, totals) as JSON, the evidence file's key, the invoice asked for, the credit notes it owes on earlier runs' invoices |
//! | billed sale | `BILLEDSALE#{client}`   | `{presale id}`| the billed item (month, version, price, amount), `reversed_in` once reversed |
//!
//! A run is written once: `attribute_not_exists` makes a second close of the same month a
//! conflict, and the caller reads the stored run. Its billed sales are put before it (idempotent
//! puts of the same content), so a close interrupted between the two leaves no run and is done
//! again whole. Contacts are not recorded one by one: the close instants decide which run bills
//! them (ADR 0028).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use backoffice_domain::client_billing::{BilledItem, MonthPricing, ReversalCredit};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::dynamo::{Item, batch_write, query_all, s, sdk_error, string_attr};
use crate::sdk::SdkClient;
use crate::{ConflictKind, StoreError};

/// A month's run, closed: frozen as it was billed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedRun {
    pub client_id: String,
    pub month: String,
    #[serde(with = "time::serde::rfc3339")]
    pub closed_at: OffsetDateTime,
    pub pricing: MonthPricing,
    /// The evidence CSV in the invoices bucket.
    pub evidence_key: String,
    /// The invoice's request id (its `ServiceInvoiceRequested` request id), when the run charged
    /// anything.
    #[serde(default)]
    pub invoice_request: Option<String>,
    /// The credit notes this run owes on earlier runs' invoices for the sales it reversed, one per
    /// earlier run (request id: [`ClosedRun::credit_request`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credits: Vec<ReversalCredit>,
}

impl ClosedRun {
    /// `{client}-{YYYY-MM}`: the id `GET /billing/runs/{id}` reads.
    pub fn id(&self) -> String {
        run_id(&self.client_id, &self.month)
    }

    /// The `CreditNoteRequested` request id of this run's credit on `credit`'s run: stable, so
    /// every re-send is the same request and makes at most one note.
    pub fn credit_request(&self, credit: &ReversalCredit) -> String {
        format!("{}-credit-{}", self.id(), credit.billed_in)
    }
}

pub fn run_id(client_id: &str, month: &str) -> String {
    format!("{client_id}-{month}")
}

/// A sale some run billed, and the run that reversed it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BilledSale {
    pub item: BilledItem,
    #[serde(default)]
    pub reversed_in: Option<String>,
}

#[async_trait]
pub trait BillingRuns: Send + Sync {
    /// The client's closed runs, oldest month first.
    async fn runs(&self, client_id: &str) -> Result<Vec<ClosedRun>, StoreError>;
    /// Every sale billed to the client, reversed or not.
    async fn billed_sales(&self, client_id: &str) -> Result<Vec<BilledSale>, StoreError>;
    /// Record the run's billed sales and the reversals it made, then the run, unless that month
    /// is closed already (`Conflict(AlreadyExists)`).
    async fn close(&self, run: &ClosedRun, sales: &[BilledSale]) -> Result<(), StoreError>;
}

#[derive(Clone, Debug)]
pub struct DynamoBillingRuns {
    client: SdkClient<Client>,
    table: String,
}

impl DynamoBillingRuns {
    pub fn new(client: impl Into<SdkClient<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
        }
    }

    async fn partition(&self, pk: String) -> Result<Vec<Item>, StoreError> {
        query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk)),
        )
        .await
    }
}

fn json_attr<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|e| StoreError::Backend(format!("serializing: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(item: &Item, what: &str) -> Result<T, StoreError> {
    let raw = string_attr(item, "json").ok_or_else(|| StoreError::Corrupt(format!("{what} without its json")))?;
    serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

#[async_trait]
impl BillingRuns for DynamoBillingRuns {
    async fn runs(&self, client_id: &str) -> Result<Vec<ClosedRun>, StoreError> {
        self.partition(format!("BILLRUN#{client_id}"))
            .await?
            .iter()
            .map(|item| from_json(item, "billing run"))
            .collect()
    }

    async fn billed_sales(&self, client_id: &str) -> Result<Vec<BilledSale>, StoreError> {
        self.partition(format!("BILLEDSALE#{client_id}"))
            .await?
            .iter()
            .map(|item| from_json(item, "billed sale"))
            .collect()
    }

    async fn close(&self, run: &ClosedRun, sales: &[BilledSale]) -> Result<(), StoreError> {
        let mut writes = Vec::with_capacity(sales.len());
        for sale in sales {
            let item: Item = HashMap::from([
                ("pk".to_owned(), s(format!("BILLEDSALE#{}", run.client_id))),
                ("sk".to_owned(), s(sale.item.key().to_owned())),
                ("json".to_owned(), json_attr(sale)?),
            ]);
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        batch_write(&self.client, &self.table, writes).await?;
        let item: Item = HashMap::from([
            ("pk".to_owned(), s(format!("BILLRUN#{}", run.client_id))),
            ("sk".to_owned(), s(run.month.clone())),
            ("closed_at".to_owned(), s(run.closed_at.to_string())),
            ("json".to_owned(), json_attr(run)?),
        ]);
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict(ConflictKind::AlreadyExists))
            }
            Err(e) => Err(sdk_error(e)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryBillingRuns;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    pub struct MemoryBillingRuns {
        runs: Mutex<BTreeMap<(String, String), ClosedRun>>,
        sales: Mutex<BTreeMap<(String, String), BilledSale>>,
    }

    fn poisoned<T>(_: T) -> StoreError {
        StoreError::Unavailable("in-memory store lock poisoned".into())
    }

    #[async_trait]
    impl BillingRuns for MemoryBillingRuns {
        async fn runs(&self, client_id: &str) -> Result<Vec<ClosedRun>, StoreError> {
            Ok(self
                .runs
                .lock()
                .map_err(poisoned)?
                .iter()
                .filter(|((client, _), _)| client == client_id)
                .map(|(_, run)| run.clone())
                .collect())
        }

        async fn billed_sales(&self, client_id: &str) -> Result<Vec<BilledSale>, StoreError> {
            Ok(self
                .sales
                .lock()
                .map_err(poisoned)?
                .iter()
                .filter(|((client, _), _)| client == client_id)
                .map(|(_, sale)| sale.clone())
                .collect())
        }

        async fn close(&self, run: &ClosedRun, sales: &[BilledSale]) -> Result<(), StoreError> {
            {
                let mut stored = self.sales.lock().map_err(poisoned)?;
                for sale in sales {
                    stored.insert((run.client_id.clone(), sale.item.key().to_owned()), sale.clone());
                }
            }
            let mut runs = self.runs.lock().map_err(poisoned)?;
            let key = (run.client_id.clone(), run.month.clone());
            if runs.contains_key(&key) {
                return Err(StoreError::Conflict(ConflictKind::AlreadyExists));
            }
            runs.insert(key, run.clone());
            Ok(())
        }
    }
}
