//! Fixtures for the handler and domain tests of every crate, behind the `testing` feature (a
//! function's normal build never compiles them).

use std::collections::BTreeMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::catalog::{Campaign, CampaignCatalog, CatalogItem};
use crate::money::{Currency, Money};

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
            timezone: crate::zone::CampaignZone::parse("America/Lima").unwrap_or_else(|e| unreachable!("{e:?}")),
            active: true,
            checks: Default::default(),
            max_attempts_per_day: 3,
            base_records: None,
        },
        items: BTreeMap::from([item("FIB-300", "Fibra 300", 14990), item("ROUTER", "Router", 1999)]),
    }
}

/// ACME's billing profile: RUC 20100070970, IGV 18% on tax-inclusive prices, series F001/B001,
/// 30 days to pay, Lima time.
pub fn billing_profile(client_id: &str) -> crate::invoice::BillingProfile {
    use crate::identity::{Document, DocumentType};
    let ruc = Document::new(DocumentType::Ruc, "20100070970").unwrap_or_else(|e| unreachable!("a valid RUC: {e}"));
    crate::invoice::BillingProfile {
        client_id: client_id.into(),
        legal_name: "ACME Telecom S.A.C.".into(),
        ruc,
        address: "Av. Javier Prado Este 1234, San Isidro, Lima".into(),
        finance_email: "finanzas@acme.example.com".into(),
        payment_terms_days: 30,
        tax: Default::default(),
        factura_series: "F001".into(),
        boleta_series: "B001".into(),
        factura_credit_note_series: "FC01".into(),
        boleta_credit_note_series: "BC01".into(),
        timezone: Some(crate::zone::CampaignZone::parse("America/Lima").unwrap_or_else(|e| unreachable!("{e:?}"))),
        utc_offset_minutes: None,
        dunning_offsets: Default::default(),
    }
}

/// The call center's request to invoice `client_id` for 2026-10: 120 effective contacts at
/// 2.50 and 10 verified sales at 35.00, net of IGV, 30 days to pay.
pub fn service_invoice_request(seller_id: &str, client_id: &str) -> crate::events::ServiceInvoiceRequested {
    use crate::events::{ServiceInvoiceRequested, ServiceLine};
    let pen = Currency::parse("PEN").unwrap_or_else(|e| unreachable!("PEN is supported: {e}"));
    ServiceInvoiceRequested {
        request_id: format!("{client_id}-2026-10"),
        seller_id: seller_id.into(),
        client_id: client_id.into(),
        month: "2026-10".into(),
        evidence_key: format!("billing/{client_id}/2026-10/evidencia-{client_id}-2026-10.csv"),
        payment_terms_days: 30,
        lines: vec![
            ServiceLine {
                description: "Contactos efectivos".into(),
                quantity: 120,
                unit_price: Money::from_minor(250, pen),
            },
            ServiceLine {
                description: "Ventas verificadas".into(),
                quantity: 10,
                unit_price: Money::from_minor(3500, pen),
            },
        ],
    }
}

/// An invoice request for the sale of pre-sale [`presale_id`]`(presale)` of `client`: one FIB-300 at 149.90, two ROUTER at
/// 19.99 and PEN 15.00 of shipping, for a DNI customer with an e-mail address.
pub fn invoice_request(presale: &str, client_id: &str) -> crate::events::InvoiceRequested {
    use crate::events::{InvoiceRequested, SaleId, ShipmentId};
    use crate::presale::LineItem;
    use crate::shipment::ShippingLine;
    let presale_id = presale_id(presale);
    let sale_id = SaleId::of(&presale_id);
    let pen = Currency::parse("PEN").unwrap_or_else(|e| unreachable!("PEN is supported: {e}"));
    let line = |sku: &str, name: &str, quantity: u32, minor: i64| LineItem {
        sku: sku.into(),
        name: name.into(),
        quantity,
        unit_price: Money::from_minor(minor, pen),
        line_total: Money::from_minor(minor * i64::from(quantity), pen),
    };
    InvoiceRequested {
        sale_id: sale_id.clone(),
        shipment_id: ShipmentId::of(&sale_id),
        presale_id,
        client_id: client_id.into(),
        campaign_id: "acme-fibra".into(),
        customer: customer(),
        items: vec![
            line("FIB-300", "Fibra 300 Mbps - instalación", 1, 14990),
            line("ROUTER", "Router Wi-Fi 6", 2, 1999),
        ],
        shipping: ShippingLine {
            description: "Envío OLVA (LIMA_METRO, 1 bulto(s))".into(),
            amount: Money::from_minor(1500, pen),
        },
        tracking_reference: format!("OLVA-{}", sale_id.as_str()),
    }
}

/// The one test clock: it stands still at the instant it was given until a test moves it.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn at(instant: OffsetDateTime) -> Self {
        Self(Mutex::new(instant))
    }

    pub fn set(&self, instant: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = instant;
    }

    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl crate::Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// María, a DNI customer in Miraflores with an e-mail address.
pub fn customer() -> crate::presale::Customer {
    serde_json::from_value(serde_json::json!({
        "document": {"type": "DNI", "number": "45678912"},
        "full_name": "María Fernanda Quispe Huamán",
        "phone": "+51987654321",
        "email": "maria.quispe@example.com",
        "address": {"line1": "Jr. Los Pinos 456", "district": "Miraflores", "province": "Lima", "region": "Lima", "country": "PE"}
    }))
    .unwrap_or_else(|e| unreachable!("a valid customer: {e}"))
}

/// A pre-sale id that stands for `label` in a test: the same label, the same UUID.
pub fn presale_id(label: &str) -> crate::presale::PresaleId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(label.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let uuid = uuid::Builder::from_custom_bytes(bytes).into_uuid();
    crate::presale::PresaleId::parse(&uuid.to_string()).unwrap_or_else(|e| unreachable!("a UUID: {e}"))
}

/// A Peruvian campaign's fulfillment (the same as `infra/local/seed.json`): Urbano for Lima and Callao, Olva for the rest of the
/// country; prices in PEN (indicative, to be replaced by the contracted ones).
pub fn fulfillment_config() -> crate::fulfillment::FulfillmentConfig {
    use crate::fulfillment::*;
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let lima = ZoneRule {
        zone: "LIMA_METRO".into(),
        regions: strings(&["Lima", "Callao"]),
        postal_prefixes: strings(&["15", "07"]),
    };
    let coast = ZoneRule {
        zone: "COAST".into(),
        regions: strings(&[
            "Tumbes",
            "Piura",
            "Lambayeque",
            "La Libertad",
            "Áncash",
            "Ica",
            "Arequipa",
            "Moquegua",
            "Tacna",
        ]),
        postal_prefixes: vec![],
    };
    let highlands_jungle = ZoneRule {
        zone: "HIGHLANDS_JUNGLE".into(),
        regions: strings(&[
            "Cajamarca",
            "Huánuco",
            "Pasco",
            "Junín",
            "Huancavelica",
            "Ayacucho",
            "Apurímac",
            "Cusco",
            "Puno",
            "Amazonas",
            "San Martín",
            "Loreto",
            "Ucayali",
            "Madre de Dios",
        ]),
        postal_prefixes: vec![],
    };
    let pen = Currency::parse("PEN").unwrap_or_else(|_| unreachable!("PEN is in the currency table"));
    let prices = |zones: &[&str], amounts: &[i64]| {
        zones
            .iter()
            .map(|z| (*z).to_owned())
            .zip(amounts.iter().copied())
            .collect::<BTreeMap<_, _>>()
    };
    let band = |up_to_grams: u32, zones: &[&str], amounts: &[i64]| WeightBand {
        up_to_grams,
        prices: prices(zones, amounts),
    };
    let olva_zones = ["LIMA_METRO", "COAST", "HIGHLANDS_JUNGLE", DEFAULT_ZONE];
    let olva = RateTable {
        courier_id: "olva".into(),
        currency: pen,
        bands: vec![
            band(1_000, &olva_zones, &[1000, 1500, 1800, 2000]),
            band(3_000, &olva_zones, &[1400, 2200, 2600, 2900]),
            band(5_000, &olva_zones, &[1800, 2900, 3400, 3800]),
            band(10_000, &olva_zones, &[2500, 4200, 5000, 5600]),
        ],
        extra_per_kg: prices(&olva_zones, &[200, 350, 450, 500]),
        oversize_surcharge_minor: 2500,
        volumetric_divisor: DEFAULT_VOLUMETRIC_DIVISOR,
    };
    let urbano_zones = ["LIMA_METRO", DEFAULT_ZONE];
    let urbano = RateTable {
        courier_id: "urbano".into(),
        currency: pen,
        bands: vec![
            band(1_000, &urbano_zones, &[900, 1900]),
            band(3_000, &urbano_zones, &[1200, 2700]),
            band(5_000, &urbano_zones, &[1600, 3500]),
            band(10_000, &urbano_zones, &[2200, 5200]),
        ],
        extra_per_kg: prices(&urbano_zones, &[180, 480]),
        oversize_surcharge_minor: 3000,
        volumetric_divisor: DEFAULT_VOLUMETRIC_DIVISOR,
    };
    FulfillmentConfig {
        limits: PackageLimits::default(),
        courier_rules: CourierRules {
            rules: vec![CourierRule {
                courier_id: "urbano".into(),
                regions: strings(&["Lima", "Callao"]),
                postal_prefixes: strings(&["15", "07"]),
            }],
            default_courier: "olva".into(),
        },
        zones: BTreeMap::from([
            ("olva".to_owned(), vec![lima.clone(), coast, highlands_jungle]),
            ("urbano".to_owned(), vec![lima]),
        ]),
        rates: BTreeMap::from([("olva".to_owned(), olva), ("urbano".to_owned(), urbano)]),
        calendar: WorkCalendar {
            timezone: Some(crate::zone::CampaignZone::parse("America/Lima").unwrap_or_else(|e| unreachable!("{e:?}"))),
            utc_offset_minutes: None,
            cutoff: time::macros::time!(14:00),
            working_days: vec![
                time::Weekday::Monday,
                time::Weekday::Tuesday,
                time::Weekday::Wednesday,
                time::Weekday::Thursday,
                time::Weekday::Friday,
            ],
            // Peru's national holidays by rule, for any year, and the campaign's own day off.
            public_holidays: Some(crate::holidays::PublicHolidays::Peru),
            holidays: vec![time::macros::date!(2026 - 12 - 24)],
            pickup_lead_working_days: 1,
        },
    }
}

/// Shipping data for the SKUs of [`campaign_catalog`]: FIB-300 (800 g) and ROUTER (600 g), each
/// 300 × 200 × 100 mm.
pub fn shipping_specs() -> Vec<crate::fulfillment::ShippingSpec> {
    let spec = |sku: &str, weight_grams| crate::fulfillment::ShippingSpec {
        sku: sku.into(),
        weight_grams,
        length_mm: 300,
        width_mm: 200,
        height_mm: 100,
        ships_alone: false,
    };
    vec![spec("FIB-300", 800), spec("ROUTER", 600)]
}

/// A pre-sale registered by agent-7 at `at` in `catalog`'s campaign: Ana Pérez (DNI 45678912,
/// Lince) buys one FIB-300, on call `call_id`, which started at `call_started_at` if given.
pub fn registered_presale(
    catalog: &CampaignCatalog,
    call_id: &str,
    call_started_at: Option<&str>,
    at: OffsetDateTime,
) -> crate::presale::Presale {
    use crate::presale::{PresaleDraft, PresaleId, Registration, register};
    let draft: PresaleDraft = serde_json::from_value(serde_json::json!({
        "campaign_id": catalog.campaign.campaign_id, "call_id": call_id, "call_started_at": call_started_at,
        "customer": {"document": {"type": "DNI", "number": "45678912"}, "full_name": "Ana Pérez", "phone": "987654321",
                     "address": {"line1": "Av. Sol 1", "district": "Lince", "province": "Lima", "region": "Lima"}},
        "items": [{"sku": "FIB-300", "quantity": 1}]
    }))
    .unwrap_or_else(|e| unreachable!("a valid draft: {e}"));
    let who = Registration {
        id: PresaleId::generate(),
        agent_id: "agent-7".into(),
        now: at,
        correlation_id: None,
    };
    register(&draft, catalog, who).unwrap_or_else(|e| unreachable!("a valid pre-sale: {e:?}"))
}

/// A clean, decodable recording of `call_id` (stereo, 2 min, good levels), filed under
/// `client`/`campaign`, received at `at`.
pub fn clean_recording(client: &str, campaign: &str, call_id: &str, at: OffsetDateTime) -> crate::recording::Recording {
    use crate::recording::{AudioFacts, Recording, RecordingMetadata};
    use sha2::{Digest, Sha256};
    Recording {
        client_id: client.into(),
        campaign_id: campaign.into(),
        call_id: call_id.into(),
        bucket: "recordings".into(),
        key: format!("calls/{client}/{campaign}/2026/11/23/{call_id}.wav"),
        version_id: None,
        sha256: hex::encode(Sha256::digest(call_id.as_bytes())),
        bytes: 1_920_044,
        received_at: at,
        metadata: RecordingMetadata::default(),
        audio: Some(AudioFacts {
            container: "wav".into(),
            codec: "pcm_s16le".into(),
            sample_rate: 8000,
            channels: 2,
            duration_ms: 120_000,
            speech_ratio: 0.7,
            longest_silence_ms: 3_000,
            clipping_ratio: 0.0,
            rms_dbfs: -20.0,
            peak_dbfs: -3.0,
            channel_talk_ms: vec![90_000, 40_000],
            truncated: false,
            silences: vec![crate::recording::TimeSpan {
                start_ms: 61_000,
                end_ms: 64_000,
            }],
            customer_quiet: Vec::new(),
        }),
        unreadable: None,
        peaks: Some(crate::recording::Peaks {
            seconds_per_peak: 0.1,
            values: (0..1200u32).map(|i| (i % 256) as u8).collect(),
        }),
    }
}

/// A contact of ACME's campaign `c1` by `agent`, ten minutes long, recorded when it ended,
/// counted on its Lima day, with a disposition of `family` and no timing; tests change the rest
/// with struct update syntax.
pub fn contact(
    id: &str,
    agent: &str,
    channel: crate::tipification::Channel,
    family: crate::tipification::Family,
    started_at: OffsetDateTime,
) -> crate::tipification::Contact {
    use crate::tipification::{Contact, CustomerKey, Direction, Flags, Leaf};
    let lima = crate::zone::CampaignZone::parse("America/Lima").unwrap_or_else(|e| unreachable!("{e:?}"));
    Contact {
        id: id.into(),
        client_id: "acme".into(),
        campaign_id: "c1".into(),
        agent_id: agent.into(),
        channel,
        direction: Direction::Outbound,
        external_id: format!("ext-{id}"),
        customer_key: CustomerKey::parse("phone:987654321").unwrap_or_else(|e| unreachable!("{e:?}")),
        disposition: Leaf {
            code: format!("{family:?}"),
            path: "…".into(),
            family,
            flags: Flags::default(),
        },
        catalog_version: 1,
        started_at,
        ended_at: started_at + time::Duration::minutes(10),
        notes: None,
        presale_id: None,
        callback_at: None,
        recorded_at: started_at + time::Duration::minutes(10),
        talk_seconds: None,
        hold_seconds: None,
        wrap_seconds: None,
        local_day: Some(lima.local_date(started_at)),
    }
}

/// The first audit record of a document a test issues (an invoice, a credit note), as the
/// issuing functions seal it: `ISSUED` by the system at `at`.
pub fn issued_audit(document_id: &str, at: OffsetDateTime) -> crate::audit::AuditRecord {
    use crate::audit::{Actor, AuditEntry, GENESIS_HASH};
    AuditEntry::new(document_id, 1, at, &Actor::system("test"), "ISSUED", "ISSUED").seal(GENESIS_HASH)
}
