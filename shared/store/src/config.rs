//! The configuration table (ConfigTable): campaigns and their price lists, shipping data per
//! SKU and fulfillment configuration, client companies and their billing profiles. Seed data
//! lives in `infra/local/seed.json`; nothing here invents a business default.
//!
//! | item                 | pk                | sk                  |
//! |----------------------|-------------------|---------------------|
//! | campaign config      | `CAMPAIGN#{id}`   | `CONFIG`            |
//! | catalog entry        | `CAMPAIGN#{id}`   | `SKU#{sku}`         |
//! | shipping data        | `CAMPAIGN#{id}`   | `SHIPPING#{sku}`    |
//! | fulfillment config   | `CAMPAIGN#{id}`   | `FULFILLMENT`       |
//! | disposition catalogs | `CAMPAIGN#{id}`   | `DISPOSITIONS#…` (see `contacts`) |
//! | client company       | `CLIENT#{id}`     | `CONFIG` (with its `billing` map and its `contract` with the call center) |
//! | client directory     | `CLIENTS`         | `CLIENT#{id}` (one per client: who the dunning visits) |
//! | campaign directory   | `CAMPAIGNS`       | `CAMPAIGN#{id}` (one per campaign: whose KPIs are reported) |

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use backoffice_domain::catalog::{Campaign, CampaignCatalog, CatalogItem};
use backoffice_domain::client_billing::Contract;
use backoffice_domain::fulfillment::{FulfillmentConfig, ShippingSpec};
use backoffice_domain::invoice::BillingProfile;
use backoffice_domain::money::{Currency, Money};
use backoffice_domain::recording::CheckThresholds;
use backoffice_domain::zone::CampaignZone;
use serde::Deserialize;

use crate::StoreError;
use crate::dynamo::{Item, corrupt, query_all, s, sdk_error, string_attr};
use crate::sdk::SdkClient;

/// What dispatch needs from a campaign's configuration.
#[async_trait]
pub trait FulfillmentDirectory: Send + Sync {
    /// Shipping data per SKU, and the campaign's fulfillment configuration (`None`: the
    /// campaign has none, and cannot be dispatched until it does).
    async fn fulfillment(
        &self,
        campaign_id: &str,
    ) -> Result<(BTreeMap<String, ShippingSpec>, Option<FulfillmentConfig>), StoreError>;
}

/// What invoicing needs from a client's configuration.
#[async_trait]
pub trait BillingDirectory: Send + Sync {
    /// The client's billing profile; `None` if the client has none configured.
    async fn billing_profile(&self, client_id: &str) -> Result<Option<BillingProfile>, StoreError>;
}

/// The client companies, for jobs that visit each of them (the dunning).
#[async_trait]
pub trait ClientDirectory: Send + Sync {
    /// Every client listed in the directory partition (`CLIENTS`), by id.
    async fn clients(&self) -> Result<Vec<String>, StoreError>;
}

/// A client company's contract with the call center: what each month of its campaigns is billed
/// (client billing). Stored as the `contract` map of `CLIENT#{id}` / `CONFIG`.
#[async_trait]
pub trait ContractDirectory: Send + Sync {
    async fn contract(&self, client_id: &str) -> Result<Option<Contract>, StoreError>;
}

/// A contract as stored, with the revision its next replacement must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContract {
    pub contract: Contract,
    /// 0 for a contract written before revisions existed (seeded), else how many times the API
    /// wrote it.
    pub revision: u64,
}

/// Admins' reads and writes of a contract: never from a cache, replaced only at the revision
/// read (no lost update).
#[async_trait]
pub trait ContractAdmin: Send + Sync {
    /// The contract now, and whether the client exists at all (`CLIENT#{id}` / `CONFIG`).
    async fn stored_contract(&self, client_id: &str) -> Result<(bool, Option<StoredContract>), StoreError>;
    /// Replace the contract of an existing client if its revision is still `expected`.
    async fn put_contract(&self, contract: &Contract, expected: u64) -> Result<ContractWrite, StoreError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractWrite {
    /// Written, at this revision.
    Written(u64),
    /// The contract changed since `expected` was read.
    Stale,
    /// No such client.
    NoClient,
}

/// The campaigns, for jobs that visit each of them (the KPI reports).
#[async_trait]
pub trait CampaignList: Send + Sync {
    /// Every campaign of the `CAMPAIGNS` directory, sorted.
    async fn campaigns(&self) -> Result<Vec<String>, StoreError>;
}

/// A campaign's configuration and price list.
#[async_trait]
pub trait CampaignDirectory: Send + Sync {
    /// The campaign's configuration and price list; `None` if no such campaign.
    async fn catalog(&self, campaign_id: &str) -> Result<Option<CampaignCatalog>, StoreError>;
}

// ---------------------------------------------------------------------------------------------
// DynamoDB
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct DynamoCampaignDirectory {
    client: SdkClient<Client>,
    table: String,
    cache: Option<Arc<ReadCache>>,
}

/// Configuration changes a few times a day and is read on every step of every sale: a warm
/// instance keeps the items it read for a while (ADR 0020). Only what exists is kept, so a
/// campaign or client configured a moment ago is found at once; a change to an existing one
/// reaches each warm instance within the time to live.
#[derive(Debug)]
struct ReadCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Kept>>,
}

/// When the items of one key were read, and the items.
type Kept = (Instant, Arc<Vec<Item>>);

impl ReadCache {
    fn fresh(&self, key: &str) -> Option<Arc<Vec<Item>>> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(read_at, _)| read_at.elapsed() < self.ttl)
            .map(|(_, rows)| Arc::clone(rows))
    }

    fn keep(&self, key: String, rows: Arc<Vec<Item>>) {
        if let Ok(mut entries) = self.entries.lock() {
            // Bounded by the campaigns and clients an instance serves; drop the stale ones.
            entries.retain(|_, (read_at, _)| read_at.elapsed() < self.ttl);
            entries.insert(key, (Instant::now(), rows));
        }
    }
}

#[derive(Deserialize)]
struct CampaignRow {
    campaign_id: String,
    client_id: String,
    name: String,
    currency: String,
    /// IANA zone of the campaign's local days.
    timezone: String,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    checks: Option<CheckThresholds>,
    max_attempts_per_day: u32,
    #[serde(default)]
    base_records: Option<u64>,
}

#[derive(Deserialize)]
struct SkuRow {
    sku: String,
    name: String,
    unit_price_minor: i64,
    currency: String,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

impl DynamoCampaignDirectory {
    pub fn new(client: impl Into<SdkClient<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
            cache: None,
        }
    }

    /// Keeps what it reads for `ttl` (zero: reads every time).
    pub fn cached_for(mut self, ttl: Duration) -> Self {
        self.cache = (!ttl.is_zero()).then(|| {
            Arc::new(ReadCache {
                ttl,
                entries: Mutex::new(HashMap::new()),
            })
        });
        self
    }

    /// Every item of a campaign: its configuration, catalog, shipping data and fulfillment —
    /// one read serves the catalog and the fulfillment data alike.
    async fn campaign_partition(&self, campaign_id: &str) -> Result<Arc<Vec<Item>>, StoreError> {
        let pk = format!("CAMPAIGN#{campaign_id}");
        if let Some(rows) = self.cache.as_ref().and_then(|c| c.fresh(&pk)) {
            return Ok(rows);
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&pk));
        // Read whole: a campaign with many catalog versions spans several pages.
        let rows = Arc::new(query_all(query).await?);
        self.remember(pk, &rows);
        Ok(rows)
    }

    /// `CLIENT#{id}` / `CONFIG`, if it exists.
    async fn client_item(&self, client_id: &str) -> Result<Arc<Vec<Item>>, StoreError> {
        let pk = format!("CLIENT#{client_id}");
        if let Some(rows) = self.cache.as_ref().and_then(|c| c.fresh(&pk)) {
            return Ok(rows);
        }
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s("CONFIG"))
            .send()
            .await
            .map_err(sdk_error)?;
        let rows = Arc::new(output.item.into_iter().collect::<Vec<_>>());
        self.remember(pk, &rows);
        Ok(rows)
    }

    fn remember(&self, pk: String, rows: &Arc<Vec<Item>>) {
        if let Some(cache) = self.cache.as_ref().filter(|_| !rows.is_empty()) {
            cache.keep(pk, Arc::clone(rows));
        }
    }
}

#[async_trait]
impl CampaignDirectory for DynamoCampaignDirectory {
    async fn catalog(&self, campaign_id: &str) -> Result<Option<CampaignCatalog>, StoreError> {
        let rows = self.campaign_partition(campaign_id).await?;
        let mut campaign = None;
        let mut skus = Vec::new();
        for row in rows.iter().cloned() {
            match string_attr(&row, "sk").as_deref() {
                Some("CONFIG") => {
                    campaign =
                        Some(serde_dynamo::from_item::<_, CampaignRow>(row).map_err(corrupt("reading campaign"))?)
                }
                Some(sk) if sk.starts_with("SKU#") => {
                    skus.push(serde_dynamo::from_item::<_, SkuRow>(row).map_err(corrupt("reading catalog entry"))?)
                }
                _ => {}
            }
        }
        let Some(row) = campaign else { return Ok(None) };
        let currency = Currency::parse(&row.currency)
            .map_err(|e| StoreError::Corrupt(format!("campaign {campaign_id}: {}", e.detail)))?;
        let mut items = BTreeMap::new();
        for sku in skus {
            if sku.currency != currency.code() {
                // A price in another currency cannot be summed with the rest: leave the SKU
                // out (it reads as unknown) and say so loudly for whoever keeps the catalog.
                tracing::error!(campaign_id, sku = %sku.sku, "catalog entry priced in {} but the campaign sells in {}", sku.currency, currency.code());
                continue;
            }
            items.insert(
                sku.sku.clone(),
                CatalogItem {
                    sku: sku.sku,
                    name: sku.name,
                    unit_price: Money::from_minor(sku.unit_price_minor, currency),
                    active: sku.active,
                },
            );
        }
        let campaign = Campaign {
            campaign_id: row.campaign_id,
            client_id: row.client_id,
            name: row.name,
            currency,
            timezone: CampaignZone::parse(&row.timezone)
                .map_err(|e| StoreError::Corrupt(format!("campaign {campaign_id}: {}", e.detail)))?,
            active: row.active,
            checks: row.checks.unwrap_or_default(),
            max_attempts_per_day: row.max_attempts_per_day,
            base_records: row.base_records,
        };
        Ok(Some(CampaignCatalog { campaign, items }))
    }
}

#[derive(Deserialize)]
struct ShippingRow {
    sku: String,
    weight_grams: u32,
    length_mm: u32,
    width_mm: u32,
    height_mm: u32,
    #[serde(default)]
    ships_alone: bool,
}

#[async_trait]
impl FulfillmentDirectory for DynamoCampaignDirectory {
    async fn fulfillment(
        &self,
        campaign_id: &str,
    ) -> Result<
        (
            BTreeMap<String, backoffice_domain::fulfillment::ShippingSpec>,
            Option<backoffice_domain::fulfillment::FulfillmentConfig>,
        ),
        StoreError,
    > {
        let rows = self.campaign_partition(campaign_id).await?;
        let mut specs = BTreeMap::new();
        let mut config = None;
        for row in rows.iter().cloned() {
            match string_attr(&row, "sk").as_deref() {
                Some(sk) if sk.starts_with("SKU#") && row.contains_key("weight_grams") => {
                    let r: ShippingRow = serde_dynamo::from_item(row).map_err(corrupt("reading shipping data"))?;
                    let spec = backoffice_domain::fulfillment::ShippingSpec {
                        sku: r.sku.clone(),
                        weight_grams: r.weight_grams,
                        length_mm: r.length_mm,
                        width_mm: r.width_mm,
                        height_mm: r.height_mm,
                        ships_alone: r.ships_alone,
                    };
                    specs.insert(r.sku, spec);
                }
                Some("FULFILLMENT") => {
                    let json = string_attr(&row, "config")
                        .ok_or_else(|| StoreError::Corrupt("FULFILLMENT item without config".into()))?;
                    config = Some(
                        serde_json::from_str(&json)
                            .map_err(|e| StoreError::Corrupt(format!("fulfillment config: {e}")))?,
                    );
                }
                _ => {}
            }
        }
        Ok((specs, config))
    }
}

/// `CLIENT#{id}` / `CONFIG`: the client company, and its `billing` map when it is invoiced
/// through the back office. The legal name and RUC default to the client's own.
#[derive(Deserialize)]
struct ClientRow {
    client_id: String,
    name: String,
    ruc: String,
    #[serde(default)]
    billing: Option<BillingRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BillingRow {
    #[serde(default)]
    legal_name: Option<String>,
    #[serde(default)]
    address: String,
    finance_email: String,
    payment_terms_days: u16,
    tax: backoffice_domain::invoice::TaxConfig,
    factura_series: String,
    boleta_series: String,
    #[serde(default = "backoffice_domain::invoice::default_factura_credit_note_series")]
    factura_credit_note_series: String,
    #[serde(default = "backoffice_domain::invoice::default_boleta_credit_note_series")]
    boleta_credit_note_series: String,
    /// IANA zone of the issue date (`America/Lima`).
    #[serde(default)]
    timezone: Option<String>,
    /// Deprecated: what profiles written before `timezone` carry; read only without a zone.
    #[serde(default)]
    utc_offset_minutes: Option<i16>,
    /// Days from the due date of the payment reminders (validated as they are read).
    #[serde(default)]
    dunning_offsets: backoffice_domain::dunning::DunningOffsets,
}

impl ClientRow {
    /// The billing profile this client's item describes, if it has a `billing` map.
    fn billing_profile(self, client_id: &str) -> Result<Option<BillingProfile>, StoreError> {
        let Some(billing) = self.billing else { return Ok(None) };
        let corrupt =
            |field: &str, detail: String| StoreError::Corrupt(format!("client {client_id}: {field}: {detail}"));
        let ruc = backoffice_domain::identity::Document::new(backoffice_domain::identity::DocumentType::Ruc, &self.ruc)
            .map_err(|e| corrupt("ruc", e.detail))?;
        let timezone = billing
            .timezone
            .as_deref()
            .map(CampaignZone::parse)
            .transpose()
            .map_err(|e| corrupt("billing.timezone", e.detail))?;
        Ok(Some(BillingProfile {
            client_id: self.client_id,
            legal_name: billing.legal_name.unwrap_or(self.name),
            ruc,
            address: billing.address,
            finance_email: billing.finance_email,
            payment_terms_days: billing.payment_terms_days,
            tax: billing.tax,
            factura_series: billing.factura_series,
            boleta_series: billing.boleta_series,
            factura_credit_note_series: billing.factura_credit_note_series,
            boleta_credit_note_series: billing.boleta_credit_note_series,
            timezone,
            utc_offset_minutes: billing.utc_offset_minutes,
            dunning_offsets: billing.dunning_offsets,
        }))
    }
}

#[async_trait]
impl BillingDirectory for DynamoCampaignDirectory {
    async fn billing_profile(
        &self,
        client_id: &str,
    ) -> Result<Option<backoffice_domain::invoice::BillingProfile>, StoreError> {
        let rows = self.client_item(client_id).await?;
        let Some(item) = rows.first().cloned() else {
            return Ok(None);
        };
        let row: ClientRow = serde_dynamo::from_item(item).map_err(corrupt("reading client configuration"))?;
        row.billing_profile(client_id)
    }
}

#[async_trait]
impl ClientDirectory for DynamoCampaignDirectory {
    async fn clients(&self) -> Result<Vec<String>, StoreError> {
        // One small partition (a row per client company), not a scan of the table.
        let rows = query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :client)")
                .expression_attribute_values(":pk", s("CLIENTS"))
                .expression_attribute_values(":client", s("CLIENT#")),
        )
        .await?;
        let mut clients: Vec<String> = rows
            .iter()
            .filter_map(|row| string_attr(row, "sk")?.strip_prefix("CLIENT#").map(str::to_owned))
            .filter(|id| !id.is_empty())
            .collect();
        clients.sort();
        Ok(clients)
    }
}

#[async_trait]
impl ContractDirectory for DynamoCampaignDirectory {
    async fn contract(&self, client_id: &str) -> Result<Option<Contract>, StoreError> {
        let rows = self.client_item(client_id).await?;
        let Some(map) = rows
            .first()
            .and_then(|item| item.get("contract"))
            .and_then(|c| c.as_m().ok())
        else {
            return Ok(None);
        };
        serde_dynamo::from_item(map.clone())
            .map(Some)
            .map_err(corrupt("reading the client's contract"))
    }
}

#[async_trait]
impl ContractAdmin for DynamoCampaignDirectory {
    async fn stored_contract(&self, client_id: &str) -> Result<(bool, Option<StoredContract>), StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("CLIENT#{client_id}")))
            .key("sk", s("CONFIG"))
            .projection_expression("pk, #c, contract_revision")
            .expression_attribute_names("#c", "contract")
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(item) = output.item else {
            return Ok((false, None));
        };
        let Some(map) = item.get("contract").and_then(|c| c.as_m().ok()) else {
            return Ok((true, None));
        };
        let contract = serde_dynamo::from_item(map.clone()).map_err(corrupt("reading the client's contract"))?;
        let revision = item
            .get("contract_revision")
            .and_then(|v| v.as_n().ok())
            .map(|n| n.parse::<u64>())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("contract_revision: {e}")))?
            .unwrap_or(0);
        Ok((true, Some(StoredContract { contract, revision })))
    }

    async fn put_contract(&self, contract: &Contract, expected: u64) -> Result<ContractWrite, StoreError> {
        let map: Item = serde_dynamo::to_item(contract).map_err(corrupt("writing the client's contract"))?;
        let next = expected + 1;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("CLIENT#{}", contract.client_id)))
            .key("sk", s("CONFIG"))
            .update_expression("SET #c = :c, contract_revision = :next")
            .expression_attribute_names("#c", "contract")
            .expression_attribute_values(":c", aws_sdk_dynamodb::types::AttributeValue::M(map))
            .expression_attribute_values(":next", aws_sdk_dynamodb::types::AttributeValue::N(next.to_string()));
        // Revision 0 is a contract written before revisions (or none): no revision attribute.
        let update = if expected == 0 {
            update.condition_expression("attribute_exists(pk) AND attribute_not_exists(contract_revision)")
        } else {
            update
                .condition_expression("contract_revision = :expected")
                .expression_attribute_values(
                    ":expected",
                    aws_sdk_dynamodb::types::AttributeValue::N(expected.to_string()),
                )
        };
        match update.send().await {
            Ok(_) => Ok(ContractWrite::Written(next)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                match self.stored_contract(&contract.client_id).await? {
                    (false, _) => Ok(ContractWrite::NoClient),
                    _ => Ok(ContractWrite::Stale),
                }
            }
            Err(e) => Err(sdk_error(e)),
        }
    }
}

#[async_trait]
impl CampaignList for DynamoCampaignDirectory {
    async fn campaigns(&self) -> Result<Vec<String>, StoreError> {
        let rows = query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :campaign)")
                .expression_attribute_values(":pk", s("CAMPAIGNS"))
                .expression_attribute_values(":campaign", s("CAMPAIGN#")),
        )
        .await?;
        let mut campaigns: Vec<String> = rows
            .iter()
            .filter_map(|row| string_attr(row, "sk")?.strip_prefix("CAMPAIGN#").map(str::to_owned))
            .filter(|id| !id.is_empty())
            .collect();
        campaigns.sort();
        Ok(campaigns)
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryCampaignDirectory;

#[cfg(any(test, feature = "testing"))]
mod memory {

    use super::*;

    fn poisoned<T>(_: T) -> StoreError {
        StoreError::Unavailable("in-memory store lock poisoned".into())
    }

    type Fulfillment = (BTreeMap<String, ShippingSpec>, Option<FulfillmentConfig>);

    /// The configuration table in memory: campaigns, their fulfillment, clients' billing.
    #[derive(Default)]
    pub struct MemoryCampaignDirectory {
        catalogs: Mutex<HashMap<String, CampaignCatalog>>,
        fulfillment: Mutex<HashMap<String, Fulfillment>>,
        billing: Mutex<HashMap<String, BillingProfile>>,
        contracts: Mutex<HashMap<String, Contract>>,
        revisions: Mutex<HashMap<String, u64>>,
    }

    impl MemoryCampaignDirectory {
        pub fn with(catalogs: impl IntoIterator<Item = CampaignCatalog>) -> Self {
            let map = catalogs
                .into_iter()
                .map(|c| (c.campaign.campaign_id.clone(), c))
                .collect();
            Self {
                catalogs: Mutex::new(map),
                ..Self::default()
            }
        }

        /// The campaign's shipping data per SKU and its fulfillment configuration, if any.
        pub fn with_fulfillment(
            self,
            campaign_id: &str,
            specs: impl IntoIterator<Item = ShippingSpec>,
            config: Option<FulfillmentConfig>,
        ) -> Self {
            let specs = specs.into_iter().map(|s| (s.sku.clone(), s)).collect();
            if let Ok(mut map) = self.fulfillment.lock() {
                map.insert(campaign_id.to_owned(), (specs, config));
            }
            self
        }

        /// A client's contract with the call center.
        pub fn with_contract(self, contract: Contract) -> Self {
            if let Ok(mut map) = self.contracts.lock() {
                map.insert(contract.client_id.clone(), contract);
            }
            self
        }

        /// A client's billing profile.
        pub fn with_billing(self, profile: BillingProfile) -> Self {
            if let Ok(mut map) = self.billing.lock() {
                map.insert(profile.client_id.clone(), profile);
            }
            self
        }
    }

    #[async_trait]
    impl CampaignDirectory for MemoryCampaignDirectory {
        async fn catalog(&self, campaign_id: &str) -> Result<Option<CampaignCatalog>, StoreError> {
            Ok(self.catalogs.lock().map_err(poisoned)?.get(campaign_id).cloned())
        }
    }

    #[async_trait]
    impl FulfillmentDirectory for MemoryCampaignDirectory {
        async fn fulfillment(&self, campaign_id: &str) -> Result<Fulfillment, StoreError> {
            Ok(self
                .fulfillment
                .lock()
                .map_err(poisoned)?
                .get(campaign_id)
                .cloned()
                .unwrap_or_default())
        }
    }

    #[async_trait]
    impl ContractDirectory for MemoryCampaignDirectory {
        async fn contract(&self, client_id: &str) -> Result<Option<Contract>, StoreError> {
            Ok(self.contracts.lock().map_err(poisoned)?.get(client_id).cloned())
        }
    }

    /// A client exists when it has a billing profile or a contract.
    #[async_trait]
    impl ContractAdmin for MemoryCampaignDirectory {
        async fn stored_contract(&self, client_id: &str) -> Result<(bool, Option<StoredContract>), StoreError> {
            let exists = self.billing.lock().map_err(poisoned)?.contains_key(client_id);
            let contract = self.contracts.lock().map_err(poisoned)?.get(client_id).cloned();
            let revision = self
                .revisions
                .lock()
                .map_err(poisoned)?
                .get(client_id)
                .copied()
                .unwrap_or(0);
            Ok((
                exists || contract.is_some(),
                contract.map(|contract| StoredContract { contract, revision }),
            ))
        }

        async fn put_contract(&self, contract: &Contract, expected: u64) -> Result<ContractWrite, StoreError> {
            let (exists, _) = self.stored_contract(&contract.client_id).await?;
            if !exists {
                return Ok(ContractWrite::NoClient);
            }
            let mut revisions = self.revisions.lock().map_err(poisoned)?;
            let current = revisions.get(&contract.client_id).copied().unwrap_or(0);
            if current != expected {
                return Ok(ContractWrite::Stale);
            }
            revisions.insert(contract.client_id.clone(), expected + 1);
            self.contracts
                .lock()
                .map_err(poisoned)?
                .insert(contract.client_id.clone(), contract.clone());
            Ok(ContractWrite::Written(expected + 1))
        }
    }

    /// The directory lists every configured campaign.
    #[async_trait]
    impl CampaignList for MemoryCampaignDirectory {
        async fn campaigns(&self) -> Result<Vec<String>, StoreError> {
            let mut campaigns: Vec<String> = self.catalogs.lock().map_err(poisoned)?.keys().cloned().collect();
            campaigns.sort();
            Ok(campaigns)
        }
    }

    /// The directory lists every client with a billing profile.
    #[async_trait]
    impl ClientDirectory for MemoryCampaignDirectory {
        async fn clients(&self) -> Result<Vec<String>, StoreError> {
            let mut clients: Vec<String> = self.billing.lock().map_err(poisoned)?.keys().cloned().collect();
            clients.sort();
            Ok(clients)
        }
    }

    #[async_trait]
    impl BillingDirectory for MemoryCampaignDirectory {
        async fn billing_profile(&self, client_id: &str) -> Result<Option<BillingProfile>, StoreError> {
            Ok(self.billing.lock().map_err(poisoned)?.get(client_id).cloned())
        }
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn the_read_cache_keeps_what_exists_for_its_time_to_live_only() {
        let cache = ReadCache {
            ttl: Duration::from_millis(40),
            entries: Mutex::new(HashMap::new()),
        };
        cache.keep("CAMPAIGN#c".into(), Arc::new(vec![Item::new()]));
        assert_eq!(cache.fresh("CAMPAIGN#c").map(|rows| rows.len()), Some(1));
        assert!(cache.fresh("CAMPAIGN#other").is_none());
        std::thread::sleep(Duration::from_millis(50));
        assert!(cache.fresh("CAMPAIGN#c").is_none(), "expired rows are read again");
    }
}

#[cfg(test)]
mod tests {
    use backoffice_domain::invoice::{InvoiceDraft, InvoiceError};
    use backoffice_domain::testing::{billing_profile, invoice_request};
    use serde_json::{Value, json};
    use time::macros::{date, datetime};

    use super::*;

    /// The seed's `CLIENT#acme` item, as the table holds it.
    fn seed_client() -> Value {
        let seed: Value =
            serde_json::from_str(include_str!("../../../infra/local/seed.json")).expect("seed.json parses");
        seed["ConfigTable"]
            .as_array()
            .and_then(|items| items.iter().find(|item| item["pk"] == "CLIENT#acme"))
            .cloned()
            .expect("the seed has CLIENT#acme")
    }

    fn profile_of(item: Value) -> Result<Option<BillingProfile>, StoreError> {
        serde_json::from_value::<ClientRow>(item)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .billing_profile("acme")
    }

    fn with_billing(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        let mut item = seed_client();
        if let Some(billing) = item["billing"].as_object_mut() {
            change(billing);
        }
        item
    }

    fn issue_date(profile: &BillingProfile, at: time::OffsetDateTime) -> Result<time::Date, InvoiceError> {
        InvoiceDraft::prepare(&invoice_request("p1", "acme"), profile, at)
            .map(|draft| draft.numbered(1).expect("numbered").issue_date)
    }

    #[test]
    fn the_seed_client_reads_as_the_fixture_profile() {
        assert_eq!(profile_of(seed_client()).ok().flatten(), Some(billing_profile("acme")));
    }

    #[test]
    fn lima_evenings_are_invoiced_on_lima_s_day() {
        let profile = profile_of(seed_client()).ok().flatten().expect("a profile");
        // 19:00 to 23:59 on 30 November in Lima are 00:00 to 04:59 UTC on 1 December.
        for minutes in (0..5 * 60).step_by(20) {
            let at = datetime!(2026-12-01 00:00 UTC) + time::Duration::minutes(minutes);
            assert_eq!(issue_date(&profile, at), Ok(date!(2026 - 11 - 30)), "{at}");
        }
        assert_eq!(
            issue_date(&profile, datetime!(2026-12-01 05:00 UTC)),
            Ok(date!(2026 - 12 - 01))
        );
    }

    #[test]
    fn the_issue_date_follows_daylight_saving_time() {
        // Santiago is UTC−3 in January, UTC−4 in July: 03:30 UTC is 00:30 on a summer night
        // but still 23:30 the day before in winter. A fixed offset is wrong for half the year.
        let santiago = profile_of(with_billing(|b| {
            b.insert("timezone".into(), json!("America/Santiago"));
        }))
        .ok()
        .flatten()
        .expect("a profile");
        assert_eq!(
            issue_date(&santiago, datetime!(2026-01-16 03:30 UTC)),
            Ok(date!(2026 - 01 - 16))
        );
        assert_eq!(
            issue_date(&santiago, datetime!(2026-07-16 03:30 UTC)),
            Ok(date!(2026 - 07 - 15))
        );
        let fixed = BillingProfile {
            timezone: None,
            utc_offset_minutes: Some(-240),
            ..santiago
        };
        assert_eq!(
            issue_date(&fixed, datetime!(2026-01-16 03:30 UTC)),
            Ok(date!(2026 - 01 - 15)),
            "wrong"
        );
    }

    #[test]
    fn a_profile_stored_with_an_offset_only_still_issues_as_before() {
        let legacy = with_billing(|b| {
            b.remove("timezone");
            b.insert("utc_offset_minutes".into(), json!(-300));
        });
        let profile = profile_of(legacy).ok().flatten().expect("a legacy profile reads");
        assert_eq!(
            (profile.timezone.as_ref(), profile.utc_offset_minutes),
            (None, Some(-300))
        );
        assert_eq!(
            issue_date(&profile, datetime!(2026-12-01 04:30 UTC)),
            Ok(date!(2026 - 11 - 30))
        );

        // Both present: the zone wins over the offset beside it.
        let both = profile_of(with_billing(|b| {
            b.insert("timezone".into(), json!("America/Santiago"));
            b.insert("utc_offset_minutes".into(), json!(-240));
        }))
        .ok()
        .flatten()
        .expect("a profile");
        assert_eq!(
            issue_date(&both, datetime!(2026-01-16 03:30 UTC)),
            Ok(date!(2026 - 01 - 16))
        );
    }

    #[test]
    fn a_profile_without_a_zone_or_with_an_unknown_one_is_a_clear_error() {
        // Neither: it reads (adapters invent no default), and invoicing refuses it as config.
        let zoneless = profile_of(with_billing(|b| {
            b.remove("timezone");
        }))
        .ok()
        .flatten()
        .expect("reads");
        assert!(matches!(
            issue_date(&zoneless, datetime!(2026-12-01 04:30 UTC)),
            Err(InvoiceError::Config(detail)) if detail.contains("no timezone")
        ));
        assert!(matches!(
            profile_of(with_billing(|b| {
                b.insert("timezone".into(), json!("Lima/Peru"));
            })),
            Err(StoreError::Corrupt(detail)) if detail.contains("billing.timezone")
        ));
        let far = profile_of(with_billing(|b| {
            b.remove("timezone");
            b.insert("utc_offset_minutes".into(), json!(26 * 60));
        }))
        .ok()
        .flatten()
        .expect("reads");
        assert!(matches!(far.validate(), Err(InvoiceError::Config(_))));
    }

    #[test]
    fn dunning_offsets_are_read_from_the_profile_and_checked() {
        let seeded = profile_of(seed_client()).ok().flatten().expect("a profile");
        assert_eq!(
            seeded.dunning_offsets,
            backoffice_domain::dunning::DunningOffsets::default()
        );
        let custom = profile_of(with_billing(|b| {
            b.insert("dunning_offsets".into(), json!([7, -1]));
        }))
        .ok()
        .flatten()
        .expect("a profile");
        assert_eq!(custom.dunning_offsets.as_slice(), &[-1, 7]);
        for bad in [json!([1, 1]), json!([200]), json!("1")] {
            assert!(
                profile_of(with_billing(|b| {
                    b.insert("dunning_offsets".into(), bad.clone());
                }))
                .is_err(),
                "{bad}"
            );
        }
    }
}
