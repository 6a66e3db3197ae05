//! Fixtures for the handler and domain tests of every crate (not used by the functions).

use std::collections::BTreeMap;

use crate::domain::catalog::{Campaign, CampaignCatalog, CatalogItem};
use crate::domain::money::{Currency, Money};

/// A campaign of `client` selling FIB-300 at PEN 149.90 and ROUTER at PEN 19.99, with the
/// default check thresholds and 3 attempts a day.
pub fn campaign_catalog(campaign_id: &str, client_id: &str) -> CampaignCatalog {
    let pen = Currency::parse("PEN").unwrap_or_else(|e| unreachable!("PEN is supported: {e}"));
    let item = |sku: &str, name: &str, minor| (sku.to_owned(), CatalogItem { sku: sku.into(), name: name.into(), unit_price: Money::from_minor(minor, pen), active: true });
    CampaignCatalog {
        campaign: Campaign {
            campaign_id: campaign_id.into(),
            client_id: client_id.into(),
            name: "Fibra".into(),
            currency: pen,
            timezone: "America/Lima".into(),
            active: true,
            checks: Default::default(),
            max_attempts_per_day: 3,
        },
        items: BTreeMap::from([item("FIB-300", "Fibra 300", 14990), item("ROUTER", "Router", 1999)]),
    }
}
