//! Campaign configuration and its price list, as the intake rules need them.

use std::collections::BTreeMap;

use super::money::{Currency, Money};
use super::recording::CheckThresholds;
use super::zone::CampaignZone;

#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub campaign_id: String,
    /// The client company that outsourced the campaign; every record of it belongs to that tenant.
    pub client_id: String,
    pub name: String,
    pub currency: Currency,
    /// IANA zone of the operation: its local days count attempts, counters and reports.
    pub timezone: CampaignZone,
    pub active: bool,
    /// Thresholds of the automatic recording checks.
    pub checks: CheckThresholds,
    /// Contact attempts per customer and day before a dialer must stop.
    pub max_attempts_per_day: u32,
    /// B: records in the campaign's base (the KPIs' penetration), when configured.
    pub base_records: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogItem {
    pub sku: String,
    pub name: String,
    pub unit_price: Money,
    pub active: bool,
}

/// A campaign with the SKUs it sells, keyed by SKU.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignCatalog {
    pub campaign: Campaign,
    pub items: BTreeMap<String, CatalogItem>,
}
