//! Invoices: what a sale is billed for, taxed and totalled to the cent, and the legal number
//! it carries. Pure rules; numbering is allocated by the store in the transaction that writes
//! the invoice (an invoice never exists without its number, nor a number without its invoice).
//!
//! # Tax and rounding rules
//!
//! Amounts are integers in the currency's minor unit and every rounding is half-up (away from
//! zero, SUNAT's "redondeo aritmético"). Tax is rounded **once, on the document**, then shared
//! out to the lines, so the document's tax is the closest cent to the exact figure whatever
//! the number of lines:
//!
//! * prices without tax: `subtotal = Σ unit × qty`; `tax = round(subtotal × rate)`;
//!   `total = subtotal + tax`;
//! * prices with tax included (what a consumer is quoted in Peru): `total = Σ unit × qty`
//!   (the customer pays exactly the quoted prices); `subtotal = round(total / (1 + rate))`;
//!   `tax = total − subtotal`.
//!
//! Each line's share of the tax is its exact share rounded down, and the cents left over go,
//! one each, to the lines with the largest remainders (ties to the earlier line): the
//! largest-remainder method. So `Σ line.net = subtotal`, `Σ line.tax = tax` and
//! `Σ line.total = total` exactly, and no line is off by a cent or more from its exact share.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

use super::identity::{Document, DocumentType};
use super::money::{Currency, Money};
use super::presale::{Customer, LineItem, PresaleId};
use super::words::amount_in_words;
use crate::events::{InvoiceRequested, SaleId, ServiceInvoiceRequested, ShipmentId};
use crate::zone::{CampaignZone, LocalTime};

/// Highest number a SUNAT series can carry (8 digits).
pub const MAX_NUMBER: u64 = 99_999_999;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// The request cannot be invoiced as it stands (a mixed currency, a negative price…):
    /// retrying cannot help.
    #[error("cannot invoice: {0}")]
    Invalid(String),
    /// The client's billing configuration is missing or wrong: fixable by a person, then retried.
    #[error("billing configuration: {0}")]
    Config(String),
    #[error("series {0} is exhausted (numbers run to 99999999)")]
    SeriesExhausted(String),
}

/// SUNAT's two sales documents: a factura for a buyer with a RUC, a boleta de venta for a
/// consumer (DNI, CE, passport). Each has its own series and numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DocumentKind {
    Factura,
    Boleta,
}

impl DocumentKind {
    pub fn for_buyer(document: &Document) -> DocumentKind {
        if document.kind() == DocumentType::Ruc {
            DocumentKind::Factura
        } else {
            DocumentKind::Boleta
        }
    }

    /// The title printed on the document.
    pub fn title(self) -> &'static str {
        match self {
            DocumentKind::Factura => "FACTURA ELECTRÓNICA",
            DocumentKind::Boleta => "BOLETA DE VENTA ELECTRÓNICA",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvoiceStatus {
    Issued,
}

/// How a client's prices are taxed. The default is Peru's IGV at 18% on tax-inclusive prices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxConfig {
    #[serde(default = "TaxConfig::default_name")]
    pub name: String,
    /// Basis points: 1800 is 18%. 0 for exempt sales.
    #[serde(default = "TaxConfig::default_rate")]
    pub rate_bp: u32,
    #[serde(default = "TaxConfig::default_inclusive")]
    pub prices_include_tax: bool,
}

impl TaxConfig {
    fn default_name() -> String {
        "IGV".into()
    }
    fn default_rate() -> u32 {
        1800
    }
    fn default_inclusive() -> bool {
        true
    }
}

impl Default for TaxConfig {
    fn default() -> Self {
        TaxConfig {
            name: Self::default_name(),
            rate_bp: Self::default_rate(),
            prices_include_tax: Self::default_inclusive(),
        }
    }
}

/// The client company's billing profile: it is the seller on its customers' invoices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingProfile {
    pub client_id: String,
    pub legal_name: String,
    pub ruc: Document,
    pub address: String,
    /// Receives a copy of every invoice.
    pub finance_email: String,
    /// Days from issue to due date.
    pub payment_terms_days: u16,
    pub tax: TaxConfig,
    pub factura_series: String,
    pub boleta_series: String,
    /// Credit notes correcting facturas (`FC01`) and boletas (`BC01`): series of their own,
    /// starting with the letter of the document they correct.
    #[serde(default = "default_factura_credit_note_series")]
    pub factura_credit_note_series: String,
    #[serde(default = "default_boleta_credit_note_series")]
    pub boleta_credit_note_series: String,
    /// The client's IANA zone ("America/Lima"): the issue date is the client's calendar day
    /// there, so a sale billed at 21:00 in Lima is dated that day, not UTC's next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<CampaignZone>,
    /// Deprecated: a fixed offset from UTC, as profiles written before `timezone` carry it;
    /// read only when there is no `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset_minutes: Option<i16>,
    /// Days from the due date the payment reminders go out (dunning); absent: −3, +1, +15, +30.
    #[serde(default)]
    pub dunning_offsets: crate::dunning::DunningOffsets,
}

/// The credit-note series a profile without one uses for facturas.
pub fn default_factura_credit_note_series() -> String {
    "FC01".into()
}

/// The credit-note series a profile without one uses for boletas.
pub fn default_boleta_credit_note_series() -> String {
    "BC01".into()
}

impl BillingProfile {
    pub fn series(&self, kind: DocumentKind) -> &str {
        match kind {
            DocumentKind::Factura => &self.factura_series,
            DocumentKind::Boleta => &self.boleta_series,
        }
    }

    /// The series of the credit notes that correct documents of `kind`.
    pub fn credit_note_series(&self, kind: DocumentKind) -> &str {
        match kind {
            DocumentKind::Factura => &self.factura_credit_note_series,
            DocumentKind::Boleta => &self.boleta_credit_note_series,
        }
    }

    /// The client's clock: its zone, else its deprecated fixed offset; neither is an error.
    pub fn local_time(&self) -> Result<LocalTime, InvoiceError> {
        LocalTime::from_config(self.timezone.as_ref(), self.utc_offset_minutes)
            .map_err(|e| InvoiceError::Config(format!("client {}: {}", self.client_id, e.detail)))
    }

    /// Checks what a person could have typed wrong in the configuration.
    pub fn validate(&self) -> Result<(), InvoiceError> {
        if self.ruc.kind() != DocumentType::Ruc {
            return Err(InvoiceError::Config(format!(
                "client {}: the seller must be identified by a RUC",
                self.client_id
            )));
        }
        validate_series(&self.factura_series, 'F')?;
        validate_series(&self.boleta_series, 'B')?;
        validate_series(&self.factura_credit_note_series, 'F')?;
        validate_series(&self.boleta_credit_note_series, 'B')?;
        // One counter per series: a note sharing its invoices' series would leave gaps in both.
        if self.factura_credit_note_series == self.factura_series
            || self.boleta_credit_note_series == self.boleta_series
        {
            return Err(InvoiceError::Config(format!(
                "client {}: credit notes need series of their own, apart from the invoices'",
                self.client_id
            )));
        }
        if self.tax.rate_bp > 10_000 {
            return Err(InvoiceError::Config(format!(
                "tax rate {} bp is above 100%",
                self.tax.rate_bp
            )));
        }
        self.local_time()?;
        if self.legal_name.trim().is_empty() || self.finance_email.trim().is_empty() {
            return Err(InvoiceError::Config(format!(
                "client {}: legal_name and finance_email are required",
                self.client_id
            )));
        }
        Ok(())
    }
}

/// SUNAT series: four upper-case alphanumerics, the first `F` for facturas and `B` for boletas.
pub fn validate_series(series: &str, first: char) -> Result<(), InvoiceError> {
    let well_formed = series.len() == 4
        && series.starts_with(first)
        && series.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
    if well_formed {
        Ok(())
    } else {
        Err(InvoiceError::Config(format!(
            "series {series:?} must be 4 upper-case letters or digits starting with {first}"
        )))
    }
}

/// `F001-00000042`.
pub fn invoice_number(series: &str, number: u64) -> String {
    format!("{series}-{number:08}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LineKind {
    Item,
    Shipping,
}

/// What is charged, before tax is worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub kind: LineKind,
    pub sku: Option<String>,
    pub description: String,
    pub quantity: u32,
    /// As quoted: tax-inclusive or not, per the client's [`TaxConfig`].
    pub unit_price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub kind: LineKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub description: String,
    pub quantity: u32,
    pub unit_price: Money,
    /// Taxable value of the line (valor de venta).
    pub net: Money,
    pub tax: Money,
    /// What the line costs the buyer (importe).
    pub total: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
}

/// Lines and totals for `charges` under `tax`, by the rules in the module documentation.
pub fn compute(
    charges: &[Charge],
    tax: &TaxConfig,
    currency: Currency,
) -> Result<(Vec<InvoiceLine>, Totals), InvoiceError> {
    if charges.is_empty() {
        return Err(InvoiceError::Invalid("an invoice needs at least one line".into()));
    }
    if tax.rate_bp > 10_000 {
        return Err(InvoiceError::Config(format!(
            "tax rate {} bp is above 100%",
            tax.rate_bp
        )));
    }
    let mut amounts = Vec::with_capacity(charges.len());
    for (i, charge) in charges.iter().enumerate() {
        if charge.unit_price.currency() != currency {
            return Err(InvoiceError::Invalid(format!(
                "line {} is in {}, the invoice in {}",
                i + 1,
                charge.unit_price.currency(),
                currency
            )));
        }
        if charge.unit_price.is_negative() {
            return Err(InvoiceError::Invalid(format!(
                "line {} has a negative price; refunds are credit notes",
                i + 1
            )));
        }
        if charge.quantity == 0 && charge.kind == LineKind::Item {
            return Err(InvoiceError::Invalid(format!("line {} has quantity 0", i + 1)));
        }
        amounts.push(i128::from(charge.unit_price.amount_minor()) * i128::from(charge.quantity));
    }
    let rate = i128::from(tax.rate_bp);
    let quoted: i128 = amounts.iter().sum();
    // Exact tax of line i is amounts[i] × rate / denominator.
    let (denominator, subtotal, tax_total) = if tax.prices_include_tax {
        let subtotal = div_half_up(quoted * 10_000, 10_000 + rate);
        (10_000 + rate, subtotal, quoted - subtotal)
    } else {
        let tax_total = div_half_up(quoted * rate, 10_000);
        (10_000, quoted, tax_total)
    };
    let shares = largest_remainder(&amounts, rate, denominator, tax_total);
    let money = |minor: i128| -> Result<Money, InvoiceError> {
        i64::try_from(minor)
            .map(|m| Money::from_minor(m, currency))
            .map_err(|_| InvoiceError::Invalid("amount out of range".into()))
    };
    let mut lines = Vec::with_capacity(charges.len());
    for ((charge, amount), share) in charges.iter().zip(&amounts).zip(&shares) {
        let (net, total) = if tax.prices_include_tax {
            (amount - share, *amount)
        } else {
            (*amount, amount + share)
        };
        lines.push(InvoiceLine {
            kind: charge.kind,
            sku: charge.sku.clone(),
            description: charge.description.clone(),
            quantity: charge.quantity,
            unit_price: charge.unit_price,
            net: money(net)?,
            tax: money(*share)?,
            total: money(total)?,
        });
    }
    let totals = Totals {
        subtotal: money(subtotal)?,
        tax: money(tax_total)?,
        total: money(subtotal + tax_total)?,
    };
    Ok((lines, totals))
}

/// `n / d` rounded half-up, for `n ≥ 0` and `d > 0`.
fn div_half_up(n: i128, d: i128) -> i128 {
    (2 * n + d) / (2 * d)
}

/// Shares of `total` proportional to `amounts[i] × rate / denominator`, each the floor of its
/// exact value plus at most one cent, summing to `total` exactly.
fn largest_remainder(amounts: &[i128], rate: i128, denominator: i128, total: i128) -> Vec<i128> {
    let mut shares: Vec<i128> = amounts.iter().map(|a| a * rate / denominator).collect();
    let mut leftover = total - shares.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..amounts.len()).collect();
    // Largest remainder first; the sort is stable, so ties keep line order.
    order.sort_by_key(|&i| std::cmp::Reverse(amounts[i] * rate % denominator));
    for i in order.into_iter().cycle().take(amounts.len() * 2) {
        if leftover <= 0 {
            break;
        }
        shares[i] += 1;
        leftover -= 1;
    }
    shares
}

/// A party on the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    pub document: Document,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The billing run an invoice of the call center bills (ADR 0028).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingRunRef {
    /// `{client}-{YYYY-MM}`.
    pub run_id: String,
    /// The client company billed.
    pub client_id: String,
    pub month: String,
    /// The evidence CSV in the invoices bucket.
    pub evidence_key: String,
}

/// An issued invoice: immutable once written (corrections are credit notes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The legal number, `F001-00000042`; also the invoice's id.
    pub invoice_id: String,
    pub kind: DocumentKind,
    pub series: String,
    pub number: u64,
    pub status: InvoiceStatus,
    pub client_id: String,
    /// Empty on a billing run's invoice (a run spans campaigns).
    #[serde(default)]
    pub campaign_id: String,
    /// The sale invoiced; `None` on a billing run's invoice, and so are the pre-sale, the
    /// shipment and its tracking reference (ADR 0028: every stored sale invoice has them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<SaleId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presale_id: Option<PresaleId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<ShipmentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_reference: Option<String>,
    /// The client company's month of services this invoice bills (the call center's invoice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_run: Option<BillingRunRef>,
    pub seller: Party,
    pub buyer: Party,
    pub currency: Currency,
    pub tax: TaxConfig,
    pub lines: Vec<InvoiceLine>,
    pub totals: Totals,
    /// "CIENTO SETENTA Y NUEVE CON 80/100 SOLES".
    pub total_in_words: String,
    #[serde(with = "crate::wire::date")]
    pub issue_date: Date,
    #[serde(with = "crate::wire::date")]
    pub due_date: Date,
    #[serde(with = "crate::wire::instant")]
    pub issued_at: OffsetDateTime,
}

/// Everything about an invoice except its number: worked out before the number is allocated,
/// so a retry of the allocation never recomputes anything. The invoice inside is not numbered
/// yet and never leaves the draft except through [`InvoiceDraft::numbered`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDraft {
    unnumbered: Invoice,
}

impl InvoiceDraft {
    /// The draft for `request`, billed by `profile`'s client at `now`.
    pub fn prepare(
        request: &InvoiceRequested,
        profile: &BillingProfile,
        now: OffsetDateTime,
    ) -> Result<InvoiceDraft, InvoiceError> {
        profile.validate()?;
        if profile.client_id != request.client_id {
            return Err(InvoiceError::Config(format!(
                "billing profile {} used for client {}",
                profile.client_id, request.client_id
            )));
        }
        let customer = &request.customer;
        let currency = request
            .items
            .first()
            .map(|i| i.unit_price.currency())
            .unwrap_or(request.shipping.amount.currency());
        let mut charges: Vec<Charge> = Vec::with_capacity(request.items.len() + 1);
        for (i, item) in request.items.iter().enumerate() {
            check_line_total(i, item)?;
            charges.push(Charge {
                kind: LineKind::Item,
                sku: Some(item.sku.clone()),
                description: item.name.clone(),
                quantity: item.quantity,
                unit_price: item.unit_price,
            });
        }
        // Shipping is always shown, even when free, so the buyer sees it was not forgotten.
        charges.push(Charge {
            kind: LineKind::Shipping,
            sku: None,
            description: request.shipping.description.clone(),
            quantity: 1,
            unit_price: request.shipping.amount,
        });
        let (lines, totals) = compute(&charges, &profile.tax, currency)?;
        let kind = DocumentKind::for_buyer(&customer.document);
        let issue_date = profile
            .local_time()?
            .local(now)
            .ok_or_else(|| InvoiceError::Invalid(format!("{now} is beyond the calendar")))?
            .date();
        let due_date = issue_date
            .checked_add(Duration::days(i64::from(profile.payment_terms_days)))
            .ok_or_else(|| InvoiceError::Config("payment terms run past the calendar".into()))?;
        Ok(InvoiceDraft {
            unnumbered: Invoice {
                invoice_id: String::new(),
                kind,
                series: profile.series(kind).to_owned(),
                number: 0,
                status: InvoiceStatus::Issued,
                client_id: request.client_id.clone(),
                campaign_id: request.campaign_id.clone(),
                sale_id: Some(request.sale_id.clone()),
                presale_id: Some(request.presale_id.clone()),
                shipment_id: Some(request.shipment_id.clone()),
                tracking_reference: Some(request.tracking_reference.clone()),
                billing_run: None,
                seller: Party {
                    name: profile.legal_name.clone(),
                    document: profile.ruc.clone(),
                    address: Some(profile.address.clone()).filter(|a| !a.trim().is_empty()),
                    email: None,
                },
                buyer: Party {
                    name: customer.full_name.clone(),
                    document: customer.document.clone(),
                    address: Some(format_address(customer)),
                    email: customer.email.as_ref().map(|e| e.as_str().to_owned()),
                },
                currency,
                tax: profile.tax.clone(),
                total_in_words: amount_in_words(&totals.total),
                lines,
                totals,
                issue_date,
                due_date,
                issued_at: now,
            },
        })
    }

    /// The call center's invoice for a client company's month (ADR 0028): `seller` is the call
    /// center's profile (its series, its tax: contract prices are net of it), `buyer` the
    /// company's, billed at its RUC, the e-mail to its finance address.
    pub fn for_service(
        request: &ServiceInvoiceRequested,
        seller: &BillingProfile,
        buyer: &BillingProfile,
        now: OffsetDateTime,
    ) -> Result<InvoiceDraft, InvoiceError> {
        seller.validate()?;
        if seller.client_id != request.seller_id || buyer.client_id != request.client_id {
            return Err(InvoiceError::Config(format!(
                "billing profiles {} and {} used for run {} of {} billed by {}",
                seller.client_id, buyer.client_id, request.request_id, request.client_id, request.seller_id
            )));
        }
        if buyer.ruc.kind() != DocumentType::Ruc {
            return Err(InvoiceError::Config(format!(
                "client {}: a company is billed at its RUC",
                buyer.client_id
            )));
        }
        let currency = request
            .lines
            .first()
            .map(|l| l.unit_price.currency())
            .ok_or_else(|| InvoiceError::Invalid("an invoice needs at least one line".into()))?;
        let charges: Vec<Charge> = request
            .lines
            .iter()
            .map(|l| Charge {
                kind: LineKind::Item,
                sku: None,
                description: l.description.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price,
            })
            .collect();
        let (lines, totals) = compute(&charges, &seller.tax, currency)?;
        let issue_date = seller
            .local_time()?
            .local(now)
            .ok_or_else(|| InvoiceError::Invalid(format!("{now} is beyond the calendar")))?
            .date();
        let due_date = issue_date
            .checked_add(Duration::days(i64::from(request.payment_terms_days)))
            .ok_or_else(|| InvoiceError::Config("payment terms run past the calendar".into()))?;
        let kind = DocumentKind::for_buyer(&buyer.ruc);
        Ok(InvoiceDraft {
            unnumbered: Invoice {
                invoice_id: String::new(),
                kind,
                series: seller.series(kind).to_owned(),
                number: 0,
                status: InvoiceStatus::Issued,
                client_id: seller.client_id.clone(),
                campaign_id: String::new(),
                sale_id: None,
                presale_id: None,
                shipment_id: None,
                tracking_reference: None,
                billing_run: Some(BillingRunRef {
                    run_id: request.request_id.clone(),
                    client_id: request.client_id.clone(),
                    month: request.month.clone(),
                    evidence_key: request.evidence_key.clone(),
                }),
                seller: Party {
                    name: seller.legal_name.clone(),
                    document: seller.ruc.clone(),
                    address: Some(seller.address.clone()).filter(|a| !a.trim().is_empty()),
                    email: None,
                },
                buyer: Party {
                    name: buyer.legal_name.clone(),
                    document: buyer.ruc.clone(),
                    address: Some(buyer.address.clone()).filter(|a| !a.trim().is_empty()),
                    email: Some(buyer.finance_email.clone()).filter(|e| !e.trim().is_empty()),
                },
                currency,
                tax: seller.tax.clone(),
                total_in_words: amount_in_words(&totals.total),
                lines,
                totals,
                issue_date,
                due_date,
                issued_at: now,
            },
        })
    }

    /// The issuer whose series numbers it.
    pub fn client_id(&self) -> &str {
        &self.unnumbered.client_id
    }

    /// The series the number must come from.
    pub fn series(&self) -> &str {
        &self.unnumbered.series
    }

    /// The invoice this draft becomes with `number`.
    pub fn numbered(&self, number: u64) -> Result<Invoice, InvoiceError> {
        self.numbered_not_before(number, None)
    }

    /// Number `number`, dated no earlier than `floor` (the date of the series' number − 1): in a
    /// series, later numbers never carry earlier dates. A worker whose clock read the day a
    /// moment before another worker crossed midnight takes that later day, due date shifted
    /// with it.
    pub fn numbered_not_before(&self, number: u64, floor: Option<Date>) -> Result<Invoice, InvoiceError> {
        if number == 0 || number > MAX_NUMBER {
            return Err(InvoiceError::SeriesExhausted(self.unnumbered.series.clone()));
        }
        let mut invoice = Invoice {
            invoice_id: invoice_number(&self.unnumbered.series, number),
            number,
            ..self.unnumbered.clone()
        };
        if let Some(floor) = floor.filter(|floor| *floor > invoice.issue_date) {
            invoice.due_date += floor - invoice.issue_date;
            invoice.issue_date = floor;
        }
        Ok(invoice)
    }
}

fn check_line_total(index: usize, item: &LineItem) -> Result<(), InvoiceError> {
    match item.unit_price.checked_mul_qty(item.quantity) {
        Ok(expected) if expected == item.line_total => Ok(()),
        _ => Err(InvoiceError::Invalid(format!(
            "item {} ({}): {} × {} is not its line total {}",
            index + 1,
            item.sku,
            item.quantity,
            item.unit_price,
            item.line_total
        ))),
    }
}

fn format_address(customer: &Customer) -> String {
    let a = &customer.address;
    let mut parts = vec![a.line1.clone()];
    parts.extend(a.line2.clone());
    parts.extend([a.district.clone(), a.province.clone(), a.region.clone()]);
    parts.retain(|p| !p.trim().is_empty());
    parts.join(", ")
}

impl Invoice {
    /// What the invoice bills, as printed on its PDF and e-mail.
    pub fn reference(&self) -> String {
        match (&self.billing_run, &self.sale_id) {
            (Some(run), _) => format!("Servicios de {} — liquidación {}", run.month, run.run_id),
            (None, Some(sale)) => format!(
                "Venta: {}  Pre-venta: {}  Envío: {}  Seguimiento: {}",
                sale,
                self.presale_id.as_ref().map(PresaleId::as_str).unwrap_or("-"),
                self.shipment_id.as_ref().map(ShipmentId::as_str).unwrap_or("-"),
                self.tracking_reference.as_deref().unwrap_or("-"),
            ),
            (None, None) => String::new(),
        }
    }

    /// Where its PDF is kept: predictable from the invoice alone.
    pub fn pdf_key(&self) -> String {
        self.document_key(&format!("{}.pdf", self.invoice_id))
    }

    /// Where a file of the invoice named `name` is kept (its XML, its CDR), beside the PDF.
    pub fn document_key(&self, name: &str) -> String {
        format!("invoices/{}/{}/{name}", self.client_id, self.series)
    }
}

#[cfg(test)]
mod tests;
