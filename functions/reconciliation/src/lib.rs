//! reconciliation: on a schedule, finds work that fell between the functions and says so. An
//! approved sale should have its shipment within minutes, and a shipment its invoice; when a
//! message was dead-lettered, an outbox message parked or a configuration is missing, neither
//! happens and nothing else would notice. Each run reads the approved sales of a look-back window
//! by key ([`ApprovedSales`], [`ShipmentLookup`], [`InvoiceLookup`]), logs one WARN line per
//! finding (ids and times only, never customer data), and returns counts that `main` publishes
//! as a CloudWatch metric in Embedded Metric Format ([`emf`]), which an alarm watches.

use serde::Serialize;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use backoffice_domain::Clock;
use backoffice_store::StoreError;
use backoffice_store::reconciliation::{ApprovedSale, ApprovedSales, InvoiceLookup, ShipmentLookup};

/// Metric names (EMF) the template's alarms watch.
pub const METRIC_UNSHIPPED: &str = "ApprovedSalesWithoutShipment";
pub const METRIC_UNINVOICED: &str = "ShipmentsWithoutInvoice";
/// The one EMF dimension, so the alarms name exactly these metrics.
pub const DIMENSION: (&str, &str) = ("Function", "reconciliation");
/// Findings listed in the invocation's result (the log has all of them).
pub const LISTED: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{0} must be more than zero")]
    NotPositive(&'static str),
    #[error("the look-back ({lookback} h) must be longer than both thresholds")]
    LookbackTooShort { lookback: i64 },
}

/// How late is late, and how far back to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// An approved sale without a shipment this long after its approval is reported.
    pub unshipped_after: Duration,
    /// A shipment without an invoice this long after its creation is reported.
    pub uninvoiced_after: Duration,
    /// Only sales created this far back are read: older ones were reported by earlier runs
    /// (and their messages have left even the dead-letter queues, which keep 14 days).
    pub lookback: Duration,
}

impl Settings {
    pub fn new(unshipped_after_min: i64, uninvoiced_after_min: i64, lookback_h: i64) -> Result<Self, SettingsError> {
        for (name, value) in [
            ("RECONCILE_UNSHIPPED_AFTER_MINUTES", unshipped_after_min),
            ("RECONCILE_UNINVOICED_AFTER_MINUTES", uninvoiced_after_min),
            ("RECONCILE_LOOKBACK_HOURS", lookback_h),
        ] {
            if value <= 0 {
                return Err(SettingsError::NotPositive(name));
            }
        }
        let settings = Self {
            unshipped_after: Duration::minutes(unshipped_after_min),
            uninvoiced_after: Duration::minutes(uninvoiced_after_min),
            lookback: Duration::hours(lookback_h),
        };
        if settings.lookback <= settings.unshipped_after.max(settings.uninvoiced_after) {
            return Err(SettingsError::LookbackTooShort { lookback: lookback_h });
        }
        Ok(settings)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Approved longer ago than `unshipped_after`, and no shipment.
    ApprovedWithoutShipment,
    /// Shipped longer ago than `uninvoiced_after`, and no invoice.
    ShippedWithoutInvoice,
}

impl FindingKind {
    /// As in the result and the log lines' `check` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApprovedWithoutShipment => "approved_without_shipment",
            Self::ShippedWithoutInvoice => "shipped_without_invoice",
        }
    }
}

/// One sale that is late, by ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub presale_id: String,
    pub sale_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<String>,
    pub client_id: String,
    pub campaign_id: String,
    /// Since when it waits: the approval, or the shipment's creation.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub late_minutes: i64,
}

/// What one run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Approved sales read (created in the window).
    pub checked: usize,
    #[serde(with = "time::serde::rfc3339")]
    pub created_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_to: OffsetDateTime,
    pub approved_without_shipment: usize,
    pub shipped_without_invoice: usize,
    /// The first [`LISTED`] findings, oldest first.
    pub findings: Vec<Finding>,
    /// Findings beyond those listed.
    pub not_listed: usize,
}

pub struct Reconcile<A, S, I, K> {
    pub approved: A,
    pub shipments: S,
    pub invoices: I,
    pub clock: K,
    pub settings: Settings,
}

impl<A, S, I, K> Reconcile<A, S, I, K>
where
    A: ApprovedSales,
    S: ShipmentLookup,
    I: InvoiceLookup,
    K: Clock,
{
    pub async fn run(&self) -> Result<Report, StoreError> {
        let now = self.clock.now();
        let Settings {
            unshipped_after,
            uninvoiced_after,
            lookback,
        } = self.settings;
        // A sale is created before it is approved, and shipped after: nothing created later
        // than the shorter threshold ago can be late yet.
        let created_from = now - lookback;
        let created_to = now - unshipped_after.min(uninvoiced_after);
        let sales = self.approved.approved_created_between(created_from, created_to).await?;
        let sale_ids: Vec<_> = sales.iter().map(ApprovedSale::sale_id).collect();
        let shipped = self.shipments.shipments_created(&sale_ids).await?;

        let mut findings = Vec::new();
        let mut shipped_long_ago = Vec::new();
        for (sale, sale_id) in sales.iter().zip(&sale_ids) {
            match shipped.get(sale_id) {
                None if sale.approved_at <= now - unshipped_after => {
                    findings.push(finding(
                        FindingKind::ApprovedWithoutShipment,
                        sale,
                        sale.approved_at,
                        now,
                    ));
                }
                Some(created) if *created <= now - uninvoiced_after => shipped_long_ago.push((sale, *created)),
                _ => {}
            }
        }
        let to_check: Vec<_> = shipped_long_ago.iter().map(|(sale, _)| sale.sale_id()).collect();
        let invoiced = self.invoices.invoiced(&to_check).await?;
        for (sale, created) in shipped_long_ago {
            if !invoiced.contains(&sale.sale_id()) {
                findings.push(finding(FindingKind::ShippedWithoutInvoice, sale, created, now));
            }
        }
        findings.sort_by_key(|f| f.since);

        for f in &findings {
            tracing::warn!(
                check = f.kind.as_str(),
                presale_id = %f.presale_id,
                sale_id = %f.sale_id,
                shipment_id = f.shipment_id.as_deref(),
                client_id = %f.client_id,
                campaign_id = %f.campaign_id,
                since = %f.since,
                late_minutes = f.late_minutes,
                "{}",
                match f.kind {
                    FindingKind::ApprovedWithoutShipment => "reconciliation: approved sale without a shipment",
                    FindingKind::ShippedWithoutInvoice => "reconciliation: shipment without an invoice",
                }
            );
        }
        let count = |kind| findings.iter().filter(|f| f.kind == kind).count();
        let report = Report {
            checked: sales.len(),
            created_from,
            created_to,
            approved_without_shipment: count(FindingKind::ApprovedWithoutShipment),
            shipped_without_invoice: count(FindingKind::ShippedWithoutInvoice),
            not_listed: findings.len().saturating_sub(LISTED),
            findings: findings.into_iter().take(LISTED).collect(),
        };
        tracing::info!(
            checked = report.checked,
            approved_without_shipment = report.approved_without_shipment,
            shipped_without_invoice = report.shipped_without_invoice,
            "reconciliation done"
        );
        Ok(report)
    }
}

fn finding(kind: FindingKind, sale: &ApprovedSale, since: OffsetDateTime, now: OffsetDateTime) -> Finding {
    let sale_id = sale.sale_id();
    Finding {
        kind,
        presale_id: sale.presale_id.to_string(),
        shipment_id: (kind == FindingKind::ShippedWithoutInvoice)
            .then(|| backoffice_domain::events::ShipmentId::of(&sale_id).as_str().to_owned()),
        sale_id: sale_id.as_str().to_owned(),
        client_id: sale.client_id.clone(),
        campaign_id: sale.campaign_id.clone(),
        since,
        late_minutes: (now - since).whole_minutes(),
    }
}

/// The report's counts as one Embedded Metric Format document: printed as a log line of its
/// own, CloudWatch turns it into the two metrics of `namespace` the alarms watch (zero included,
/// so a quiet hour is a zero, not a gap).
pub fn emf(report: &Report, namespace: &str, at: OffsetDateTime) -> Value {
    let millis = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[DIMENSION.0]],
                "Metrics": [
                    {"Name": METRIC_UNSHIPPED, "Unit": "Count"},
                    {"Name": METRIC_UNINVOICED, "Unit": "Count"},
                ],
            }],
        },
        DIMENSION.0: DIMENSION.1,
        METRIC_UNSHIPPED: report.approved_without_shipment,
        METRIC_UNINVOICED: report.shipped_without_invoice,
    })
}

#[cfg(test)]
mod tests;
