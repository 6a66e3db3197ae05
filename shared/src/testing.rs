//! Fixtures for the handler and domain tests of every crate (not used by the functions).

use std::collections::BTreeMap;

use crate::domain::catalog::{Campaign, CampaignCatalog, CatalogItem};
use crate::domain::money::{Currency, Money};

/// A campaign of `client` selling FIB-300 at PEN 149.90 and ROUTER at PEN 19.99, with the
/// default check thresholds and 3 attempts a day.
pub fn campaign_catalog(campaign_id: &str, client_id: &str) -> CampaignCatalog {
    let pen = Currency::parse("PEN").unwrap_or_else(|e| unreachable!("PEN is supported: {e}"));
    let item = |sku: &str, name: &str, minor| {
        (
            sku.to_owned(),
            CatalogItem {
                sku: sku.into(),
                name: name.into(),
                unit_price: Money::from_minor(minor, pen),
                active: true,
            },
        )
    };
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

/// ACME's billing profile: RUC 20100070970, IGV 18% on tax-inclusive prices, series F001/B001,
/// 30 days to pay, Lima time.
pub fn billing_profile(client_id: &str) -> crate::domain::invoice::BillingProfile {
    use crate::domain::identity::{Document, DocumentType};
    let ruc = Document::new(DocumentType::Ruc, "20100070970").unwrap_or_else(|e| unreachable!("a valid RUC: {e}"));
    crate::domain::invoice::BillingProfile {
        client_id: client_id.into(),
        legal_name: "ACME Telecom S.A.C.".into(),
        ruc,
        address: "Av. Javier Prado Este 1234, San Isidro, Lima".into(),
        finance_email: "finanzas@acme.example.com".into(),
        payment_terms_days: 30,
        tax: Default::default(),
        factura_series: "F001".into(),
        boleta_series: "B001".into(),
        utc_offset_minutes: -300,
    }
}

/// An invoice request for sale `S-{presale}` of `client`: one FIB-300 at 149.90, two ROUTER at
/// 19.99 and PEN 15.00 of shipping, for a DNI customer with an e-mail address.
pub fn invoice_request(presale_id: &str, client_id: &str) -> crate::domain::shipment::InvoiceRequested {
    use crate::domain::presale::LineItem;
    use crate::domain::shipment::{InvoiceRequested, ShippingLine};
    let pen = Currency::parse("PEN").unwrap_or_else(|e| unreachable!("PEN is supported: {e}"));
    let line = |sku: &str, name: &str, quantity: u32, minor: i64| LineItem {
        sku: sku.into(),
        name: name.into(),
        quantity,
        unit_price: Money::from_minor(minor, pen),
        line_total: Money::from_minor(minor * i64::from(quantity), pen),
    };
    InvoiceRequested {
        sale_id: format!("S-{presale_id}"),
        shipment_id: format!("SH-{presale_id}"),
        presale_id: presale_id.into(),
        client_id: client_id.into(),
        campaign_id: "acme-fibra".into(),
        customer: serde_json::json!({
            "document": {"type": "DNI", "number": "45678912"},
            "full_name": "María Fernanda Quispe Huamán",
            "phone": "+51987654321",
            "email": "maria.quispe@example.com",
            "address": {"line1": "Jr. Los Pinos 456", "district": "Miraflores", "province": "Lima", "region": "Lima", "country": "PE"}
        }),
        items: vec![
            line("FIB-300", "Fibra 300 Mbps - instalación", 1, 14990),
            line("ROUTER", "Router Wi-Fi 6", 2, 1999),
        ],
        shipping: ShippingLine {
            description: "Envío OLVA (LIMA_METRO, 1 bulto(s))".into(),
            amount: Money::from_minor(1500, pen),
        },
        tracking_reference: format!("OLVA-{presale_id}"),
    }
}
