use backoffice_domain::events::SaleId;
use backoffice_domain::testing::{FixedClock, presale_id};
use backoffice_edge::testing::LogCapture;
use backoffice_store::reconciliation::{ApprovedSale, MemorySaleTrail};
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

type TestReconcile = Reconcile<MemorySaleTrail, MemorySaleTrail, MemorySaleTrail, FixedClock>;

/// An approved sale of ACME, created `created_min_ago` and approved `approved_min_ago` minutes
/// before NOW.
fn sale(label: &str, created_min_ago: i64, approved_min_ago: i64) -> ApprovedSale {
    ApprovedSale {
        presale_id: presale_id(label),
        client_id: "acme".into(),
        campaign_id: "acme-fibra".into(),
        created_at: NOW - Duration::minutes(created_min_ago),
        approved_at: NOW - Duration::minutes(approved_min_ago),
    }
}

fn sale_id(label: &str) -> SaleId {
    SaleId::of(&presale_id(label))
}

fn settings() -> Settings {
    Settings::new(30, 60, 168).unwrap()
}

/// The same trail three times over: the approved sales, their shipments, their invoices.
fn reconcile(trail: impl Fn() -> MemorySaleTrail) -> TestReconcile {
    Reconcile {
        approved: trail(),
        shipments: trail(),
        invoices: trail(),
        clock: FixedClock::at(NOW),
        settings: settings(),
    }
}

fn kinds(report: &Report) -> Vec<(FindingKind, String)> {
    report.findings.iter().map(|f| (f.kind, f.presale_id.clone())).collect()
}

#[tokio::test]
async fn an_approved_sale_without_a_shipment_is_reported_once_past_its_threshold() {
    let r = reconcile(|| {
        MemorySaleTrail::default()
            .with_approved(sale("late", 90, 45))
            .with_approved(sale("recent", 90, 10))
            .with_approved(sale("shipped", 90, 45))
            .with_shipment(sale_id("shipped"), NOW - Duration::minutes(40))
    });
    let report = r.run().await.unwrap();
    assert_eq!(
        kinds(&report),
        vec![(FindingKind::ApprovedWithoutShipment, presale_id("late").to_string())]
    );
    let finding = &report.findings[0];
    assert_eq!(finding.sale_id, sale_id("late").as_str());
    assert_eq!(finding.shipment_id, None);
    assert_eq!(finding.since, NOW - Duration::minutes(45));
    assert_eq!(finding.late_minutes, 45);
    assert_eq!(
        (
            report.checked,
            report.approved_without_shipment,
            report.shipped_without_invoice
        ),
        (3, 1, 0)
    );
}

#[tokio::test]
async fn a_shipment_without_an_invoice_is_reported_once_past_its_threshold() {
    let r = reconcile(|| {
        MemorySaleTrail::default()
            .with_approved(sale("unbilled", 300, 240))
            .with_shipment(sale_id("unbilled"), NOW - Duration::minutes(200))
            .with_approved(sale("billed", 300, 240))
            .with_shipment(sale_id("billed"), NOW - Duration::minutes(200))
            .with_invoice(sale_id("billed"))
            .with_approved(sale("just-shipped", 300, 240))
            .with_shipment(sale_id("just-shipped"), NOW - Duration::minutes(20))
    });
    let report = r.run().await.unwrap();
    assert_eq!(
        kinds(&report),
        vec![(FindingKind::ShippedWithoutInvoice, presale_id("unbilled").to_string())]
    );
    let finding = &report.findings[0];
    assert_eq!(
        finding.shipment_id.as_deref(),
        Some(format!("SH-S-{}", presale_id("unbilled")).as_str())
    );
    assert_eq!(finding.since, NOW - Duration::minutes(200));
    assert_eq!(
        (report.approved_without_shipment, report.shipped_without_invoice),
        (0, 1)
    );
}

#[tokio::test]
async fn only_sales_created_inside_the_lookback_window_are_read() {
    let r = reconcile(|| {
        MemorySaleTrail::default()
            // Eight days ago: reported by the runs of the week it was late in.
            .with_approved(sale("ancient", 8 * 24 * 60, 8 * 24 * 60))
            .with_approved(sale("this-week", 6 * 24 * 60, 6 * 24 * 60))
    });
    let report = r.run().await.unwrap();
    assert_eq!(report.checked, 1);
    assert_eq!(report.created_from, NOW - Duration::hours(168));
    assert_eq!(report.created_to, NOW - Duration::minutes(30));
    assert_eq!(
        kinds(&report),
        vec![(
            FindingKind::ApprovedWithoutShipment,
            presale_id("this-week").to_string()
        )]
    );
}

#[tokio::test]
async fn each_finding_is_one_warn_line_of_ids_and_times() {
    let logs = LogCapture::global();
    let r = reconcile(|| {
        MemorySaleTrail::default()
            .with_approved(sale("logged-unshipped", 90, 45))
            .with_approved(sale("logged-unbilled", 300, 240))
            .with_shipment(sale_id("logged-unbilled"), NOW - Duration::minutes(200))
    });
    r.run().await.unwrap();
    for (label, check) in [
        ("logged-unshipped", "approved_without_shipment"),
        ("logged-unbilled", "shipped_without_invoice"),
    ] {
        let id = presale_id(label).to_string();
        let lines: Vec<Value> = logs
            .lines()
            .into_iter()
            .filter(|line| line["presale_id"] == id.as_str())
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["check"], check);
        assert_eq!(line["client_id"], "acme");
        assert_eq!(line["campaign_id"], "acme-fibra");
        let mut keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = vec![
            "campaign_id",
            "check",
            "client_id",
            "late_minutes",
            "level",
            "message",
            "presale_id",
            "sale_id",
            "since",
            "target",
            "timestamp",
        ];
        if check == "shipped_without_invoice" {
            expected.push("shipment_id");
            expected.sort_unstable();
        }
        assert_eq!(keys, expected, "only ids and times: {line}");
    }
}

#[tokio::test]
async fn the_counts_become_one_emf_document_zero_included() {
    let r = reconcile(|| {
        MemorySaleTrail::default()
            .with_approved(sale("a", 90, 45))
            .with_approved(sale("b", 90, 45))
            .with_approved(sale("c", 300, 240))
            .with_shipment(sale_id("c"), NOW - Duration::minutes(200))
    });
    let report = r.run().await.unwrap();
    let doc = emf(&report, "Backoffice/test", NOW);
    assert_eq!(doc["_aws"]["Timestamp"], NOW.unix_timestamp() * 1000);
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Backoffice/test");
    assert_eq!(directive["Dimensions"], json!([["Function"]]));
    assert_eq!(
        directive["Metrics"],
        json!([
            {"Name": "ApprovedSalesWithoutShipment", "Unit": "Count"},
            {"Name": "ShipmentsWithoutInvoice", "Unit": "Count"}
        ])
    );
    assert_eq!(doc["Function"], "reconciliation");
    assert_eq!(doc["ApprovedSalesWithoutShipment"], 2);
    assert_eq!(doc["ShipmentsWithoutInvoice"], 1);

    let quiet = reconcile(MemorySaleTrail::default).run().await.unwrap();
    let doc = emf(&quiet, "Backoffice/test", NOW);
    assert_eq!(doc["ApprovedSalesWithoutShipment"], 0);
    assert_eq!(doc["ShipmentsWithoutInvoice"], 0);
}

#[tokio::test]
async fn the_result_lists_the_oldest_findings_and_counts_the_rest() {
    let r = reconcile(|| {
        (0..(LISTED as i64 + 5)).fold(MemorySaleTrail::default(), |trail, i| {
            trail.with_approved(sale(&format!("many-{i}"), 1000 + i, 900 + i))
        })
    });
    let report = r.run().await.unwrap();
    assert_eq!(report.approved_without_shipment, LISTED + 5);
    assert_eq!(report.findings.len(), LISTED);
    assert_eq!(report.not_listed, 5);
    // Oldest first: the sale approved 900 + LISTED + 4 minutes ago leads.
    assert_eq!(
        report.findings[0].presale_id,
        presale_id(&format!("many-{}", LISTED + 4)).to_string()
    );
}

#[test]
fn settings_refuse_nonsense() {
    assert_eq!(
        Settings::new(0, 30, 168),
        Err(SettingsError::NotPositive("RECONCILE_UNSHIPPED_AFTER_MINUTES"))
    );
    assert_eq!(
        Settings::new(30, 30, -1),
        Err(SettingsError::NotPositive("RECONCILE_LOOKBACK_HOURS"))
    );
    assert_eq!(
        Settings::new(30, 120, 1),
        Err(SettingsError::LookbackTooShort { lookback: 1 })
    );
    assert!(Settings::new(30, 30, 1).is_ok());
}
