//! Credit notes (notas de crédito, SUNAT type 07): the only way to correct or cancel an issued
//! invoice, which itself never changes.
//!
//! A credit note refers to one invoice and gives a reason from SUNAT's catalog 09. It credits
//! either the whole invoice ([`CreditNoteDraft::total`]: the invoice's own lines and totals) or
//! some quantity of some of its lines ([`CreditNoteDraft::by_lines`]: taxed again with
//! [`invoice::compute`], so the note follows the invoice's rounding rules). Its series starts
//! with the letter of the document it corrects (`F…` for a factura, `B…` for a boleta), and it is
//! numbered like an invoice: the draft carries everything, [`CreditNoteDraft::numbered`] adds the
//! number allocated by the store.
//!
//! Not checked here: SUNAT's rules per reason (e.g. 13, payment terms, only for facturas on
//! credit) and what earlier credit notes already credited on the same invoice — the caller must
//! pass what is still creditable.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::invoice::{
    self, Charge, DocumentKind, Invoice, InvoiceError, InvoiceLine, MAX_NUMBER, Party, TaxConfig, Totals,
};
use crate::money::Currency;
use crate::words::amount_in_words;

/// Longest description SUNAT accepts in `cac:DiscrepancyResponse/cbc:Description`.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Why a credit note is issued: SUNAT catalog 09. Serialized as its two-digit code (`"01"`),
/// the same value the XML carries, so stored notes and documents never disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CreditNoteReason {
    /// 01
    Cancellation,
    /// 02
    CancellationWrongRuc,
    /// 03
    WrongDescription,
    /// 04
    GlobalDiscount,
    /// 05
    ItemDiscount,
    /// 06
    TotalReturn,
    /// 07
    ItemReturn,
    /// 08
    Bonus,
    /// 09
    ValueDecrease,
    /// 10
    Other,
    /// 11
    ExportAdjustment,
    /// 12
    IvapAdjustment,
    /// 13
    PaymentTermsAdjustment,
}

impl CreditNoteReason {
    pub const ALL: [CreditNoteReason; 13] = [
        CreditNoteReason::Cancellation,
        CreditNoteReason::CancellationWrongRuc,
        CreditNoteReason::WrongDescription,
        CreditNoteReason::GlobalDiscount,
        CreditNoteReason::ItemDiscount,
        CreditNoteReason::TotalReturn,
        CreditNoteReason::ItemReturn,
        CreditNoteReason::Bonus,
        CreditNoteReason::ValueDecrease,
        CreditNoteReason::Other,
        CreditNoteReason::ExportAdjustment,
        CreditNoteReason::IvapAdjustment,
        CreditNoteReason::PaymentTermsAdjustment,
    ];

    /// The catalog 09 code: `cac:DiscrepancyResponse/cbc:ResponseCode`.
    pub fn code(self) -> &'static str {
        match self {
            CreditNoteReason::Cancellation => "01",
            CreditNoteReason::CancellationWrongRuc => "02",
            CreditNoteReason::WrongDescription => "03",
            CreditNoteReason::GlobalDiscount => "04",
            CreditNoteReason::ItemDiscount => "05",
            CreditNoteReason::TotalReturn => "06",
            CreditNoteReason::ItemReturn => "07",
            CreditNoteReason::Bonus => "08",
            CreditNoteReason::ValueDecrease => "09",
            CreditNoteReason::Other => "10",
            CreditNoteReason::ExportAdjustment => "11",
            CreditNoteReason::IvapAdjustment => "12",
            CreditNoteReason::PaymentTermsAdjustment => "13",
        }
    }

    /// The catalog's Spanish description, as printed on the document.
    pub fn description(self) -> &'static str {
        match self {
            CreditNoteReason::Cancellation => "Anulación de la operación",
            CreditNoteReason::CancellationWrongRuc => "Anulación por error en el RUC",
            CreditNoteReason::WrongDescription => "Corrección por error en la descripción",
            CreditNoteReason::GlobalDiscount => "Descuento global",
            CreditNoteReason::ItemDiscount => "Descuento por ítem",
            CreditNoteReason::TotalReturn => "Devolución total",
            CreditNoteReason::ItemReturn => "Devolución por ítem",
            CreditNoteReason::Bonus => "Bonificación",
            CreditNoteReason::ValueDecrease => "Disminución en el valor",
            CreditNoteReason::Other => "Otros conceptos",
            CreditNoteReason::ExportAdjustment => "Ajustes de operaciones de exportación",
            CreditNoteReason::IvapAdjustment => "Ajustes afectos al IVAP",
            CreditNoteReason::PaymentTermsAdjustment => "Ajustes – montos y/o fechas de pago",
        }
    }
}

impl fmt::Display for CreditNoteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for CreditNoteReason {
    type Err = InvoiceError;

    fn from_str(raw: &str) -> Result<Self, InvoiceError> {
        Self::ALL.into_iter().find(|r| r.code() == raw.trim()).ok_or_else(|| {
            InvoiceError::Invalid(format!("unknown credit note reason {raw:?}; catalog 09 runs 01 to 13"))
        })
    }
}

impl TryFrom<String> for CreditNoteReason {
    type Error = InvoiceError;

    fn try_from(raw: String) -> Result<Self, InvoiceError> {
        raw.parse()
    }
}

impl From<CreditNoteReason> for String {
    fn from(reason: CreditNoteReason) -> String {
        reason.code().to_owned()
    }
}

/// An issued credit note: immutable once written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditNote {
    /// The legal number, `FC01-00000001`; also the note's id.
    pub credit_note_id: String,
    pub series: String,
    pub number: u64,
    pub client_id: String,
    /// The invoice it corrects (`F001-00000042`), its kind and its issue date.
    pub invoice_id: String,
    pub invoice_kind: DocumentKind,
    #[serde(with = "crate::wire::date")]
    pub invoice_issue_date: Date,
    pub reason: CreditNoteReason,
    /// Why, in the issuer's words (`cac:DiscrepancyResponse/cbc:Description`).
    pub description: String,
    pub seller: Party,
    pub buyer: Party,
    pub currency: Currency,
    pub tax: TaxConfig,
    /// What is credited, taxed like the invoice.
    pub lines: Vec<InvoiceLine>,
    pub totals: Totals,
    pub total_in_words: String,
    #[serde(with = "crate::wire::date")]
    pub issue_date: Date,
    #[serde(with = "crate::wire::instant")]
    pub issued_at: OffsetDateTime,
}

impl CreditNote {
    /// Where a file of the note named `name` is kept (its XML, its CDR): under its own series,
    /// beside its issuer's invoices.
    pub fn document_key(&self, name: &str) -> String {
        format!("invoices/{}/{}/{name}", self.client_id, self.series)
    }
}

/// A quantity of one line of the invoice to credit; `line` counts from 1, as printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditedLine {
    pub line: u32,
    pub quantity: u32,
}

/// Everything about a credit note except its number (see [`crate::invoice::InvoiceDraft`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteDraft {
    unnumbered: CreditNote,
}

impl CreditNoteDraft {
    /// A note crediting all of `invoice`: its lines and totals exactly.
    pub fn total(
        invoice: &Invoice,
        series: &str,
        reason: CreditNoteReason,
        description: &str,
        issue_date: Date,
        now: OffsetDateTime,
    ) -> Result<CreditNoteDraft, InvoiceError> {
        Self::prepare(
            invoice,
            series,
            reason,
            description,
            issue_date,
            now,
            invoice.lines.clone(),
            invoice.totals,
        )
    }

    /// The note a request asks for: the whole invoice when `lines` is empty, else those
    /// quantities of those lines (numbered from 1).
    pub fn requested(
        invoice: &Invoice,
        lines: &[CreditedLine],
        series: &str,
        reason: CreditNoteReason,
        description: &str,
        issue_date: Date,
        now: OffsetDateTime,
    ) -> Result<CreditNoteDraft, InvoiceError> {
        if lines.is_empty() {
            return Self::total(invoice, series, reason, description, issue_date, now);
        }
        let mut credited = Vec::with_capacity(lines.len());
        for l in lines {
            let index = l
                .line
                .checked_sub(1)
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| InvoiceError::Invalid("invoice lines are numbered from 1".into()))?;
            credited.push((index, l.quantity));
        }
        Self::by_lines(invoice, &credited, series, reason, description, issue_date, now)
    }

    /// A note crediting `quantity` of the invoice line at `line_index` (0-based) for each pair;
    /// a line named twice is credited the sum. Tax and totals are computed again over the
    /// credited quantities with the invoice's tax configuration.
    pub fn by_lines(
        invoice: &Invoice,
        credited: &[(usize, u32)],
        series: &str,
        reason: CreditNoteReason,
        description: &str,
        issue_date: Date,
        now: OffsetDateTime,
    ) -> Result<CreditNoteDraft, InvoiceError> {
        if credited.is_empty() {
            return Err(InvoiceError::Invalid("a credit note needs at least one line".into()));
        }
        // Sum per line, in the invoice's line order, so the note reads like the invoice.
        let mut quantities = vec![0u64; invoice.lines.len()];
        for &(index, quantity) in credited {
            let Some(slot) = quantities.get_mut(index) else {
                return Err(InvoiceError::Invalid(format!(
                    "invoice {} has no line {} (it has {})",
                    invoice.invoice_id,
                    index + 1,
                    invoice.lines.len()
                )));
            };
            if quantity == 0 {
                return Err(InvoiceError::Invalid(format!(
                    "line {} is credited quantity 0",
                    index + 1
                )));
            }
            *slot += u64::from(quantity);
        }
        let mut charges = Vec::new();
        for (line, &quantity) in invoice.lines.iter().zip(&quantities) {
            if quantity == 0 {
                continue;
            }
            if quantity > u64::from(line.quantity) {
                return Err(InvoiceError::Invalid(format!(
                    "line {:?}: {quantity} credited, only {} invoiced",
                    line.description, line.quantity
                )));
            }
            charges.push(Charge {
                kind: line.kind,
                sku: line.sku.clone(),
                description: line.description.clone(),
                // ≤ line.quantity, a u32, checked just above.
                quantity: u32::try_from(quantity).unwrap_or(line.quantity),
                unit_price: line.unit_price,
            });
        }
        let (lines, totals) = invoice::compute(&charges, &invoice.tax, invoice.currency)?;
        Self::prepare(invoice, series, reason, description, issue_date, now, lines, totals)
    }

    #[allow(clippy::too_many_arguments)] // private: the two public constructors' shared tail
    fn prepare(
        invoice: &Invoice,
        series: &str,
        reason: CreditNoteReason,
        description: &str,
        issue_date: Date,
        now: OffsetDateTime,
        lines: Vec<InvoiceLine>,
        totals: Totals,
    ) -> Result<CreditNoteDraft, InvoiceError> {
        let letter = match invoice.kind {
            DocumentKind::Factura => 'F',
            DocumentKind::Boleta => 'B',
        };
        invoice::validate_series(series, letter)?;
        let description = description.trim();
        if description.is_empty() {
            return Err(InvoiceError::Invalid("a credit note needs a description".into()));
        }
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(InvoiceError::Invalid(format!(
                "a credit note's description has at most {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        if issue_date < invoice.issue_date {
            return Err(InvoiceError::Invalid(format!(
                "a credit note dated {issue_date} cannot precede invoice {} of {}",
                invoice.invoice_id, invoice.issue_date
            )));
        }
        Ok(CreditNoteDraft {
            unnumbered: CreditNote {
                credit_note_id: String::new(),
                series: series.to_owned(),
                number: 0,
                client_id: invoice.client_id.clone(),
                invoice_id: invoice.invoice_id.clone(),
                invoice_kind: invoice.kind,
                invoice_issue_date: invoice.issue_date,
                reason,
                description: description.to_owned(),
                seller: invoice.seller.clone(),
                buyer: invoice.buyer.clone(),
                currency: invoice.currency,
                tax: invoice.tax.clone(),
                total_in_words: amount_in_words(&totals.total),
                lines,
                totals,
                issue_date,
                issued_at: now,
            },
        })
    }

    /// The series the number must come from.
    pub fn series(&self) -> &str {
        &self.unnumbered.series
    }

    /// What the note credits, before it is numbered.
    pub fn totals(&self) -> &Totals {
        &self.unnumbered.totals
    }

    /// The credit note this draft becomes with `number`.
    pub fn numbered(&self, number: u64) -> Result<CreditNote, InvoiceError> {
        if number == 0 || number > MAX_NUMBER {
            return Err(InvoiceError::SeriesExhausted(self.unnumbered.series.clone()));
        }
        Ok(CreditNote {
            credit_note_id: invoice::invoice_number(&self.unnumbered.series, number),
            number,
            ..self.unnumbered.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;
    use crate::invoice::InvoiceDraft;
    use crate::testing::{billing_profile, invoice_request};

    const NOW: OffsetDateTime = datetime!(2026-12-01 15:00 UTC);

    /// B001-00000007: FIB-300 ×1 at 149.90, ROUTER ×2 at 19.99, shipping 15.00 (DNI buyer).
    fn boleta() -> Invoice {
        InvoiceDraft::prepare(&invoice_request("p-1", "acme"), &billing_profile("acme"), NOW)
            .and_then(|d| d.numbered(7))
            .expect("fixture invoice")
    }

    fn reason_of(note: &CreditNote) -> (&str, &str) {
        (note.reason.code(), note.reason.description())
    }

    #[test]
    fn a_total_credit_carries_the_invoice_totals_and_lines() {
        let invoice = boleta();
        let note = CreditNoteDraft::total(
            &invoice,
            "BC01",
            CreditNoteReason::Cancellation,
            "Cliente desistió",
            date!(2026 - 12 - 02),
            NOW,
        )
        .and_then(|d| d.numbered(1))
        .expect("note");
        assert_eq!(note.credit_note_id, "BC01-00000001");
        assert_eq!(note.totals, invoice.totals);
        assert_eq!(note.lines, invoice.lines);
        assert_eq!(note.invoice_id, "B001-00000007");
        assert_eq!(note.invoice_kind, DocumentKind::Boleta);
        assert_eq!(note.total_in_words, invoice.total_in_words);
        assert_eq!(reason_of(&note), ("01", "Anulación de la operación"));
    }

    #[test]
    fn crediting_every_line_in_full_by_lines_equals_the_total_credit() {
        let invoice = boleta();
        let all: Vec<(usize, u32)> = invoice.lines.iter().enumerate().map(|(i, l)| (i, l.quantity)).collect();
        let draft = CreditNoteDraft::by_lines(
            &invoice,
            &all,
            "B001",
            CreditNoteReason::TotalReturn,
            "Devolución",
            invoice.issue_date,
            NOW,
        )
        .expect("draft");
        assert_eq!(draft.totals(), &invoice.totals);
    }

    #[test]
    fn by_lines_credits_the_quantities_named_taxed_like_the_invoice() {
        let invoice = boleta();
        // One router of the two, and the shipping.
        let note = CreditNoteDraft::by_lines(
            &invoice,
            &[(1, 1), (2, 1)],
            "BC01",
            CreditNoteReason::ItemReturn,
            "Devuelve un router",
            invoice.issue_date,
            NOW,
        )
        .and_then(|d| d.numbered(2))
        .expect("note");
        assert_eq!(note.lines.len(), 2);
        assert_eq!(note.lines[0].quantity, 1);
        // 19.99 + 15.00 tax-inclusive at 18%: subtotal round(3499 / 1.18) = 2965, tax 534.
        assert_eq!(note.totals.total.amount_minor(), 3499);
        assert_eq!(note.totals.subtotal.amount_minor(), 2965);
        assert_eq!(note.totals.tax.amount_minor(), 534);
        let sum: i64 = note.lines.iter().map(|l| l.tax.amount_minor()).sum();
        assert_eq!(sum, 534);
        assert_eq!(note.total_in_words, amount_in_words(&note.totals.total));
    }

    #[test]
    fn by_lines_never_credits_more_than_was_invoiced() {
        let invoice = boleta();
        let more = |credited: &[(usize, u32)]| {
            CreditNoteDraft::by_lines(
                &invoice,
                credited,
                "BC01",
                CreditNoteReason::ItemReturn,
                "x",
                invoice.issue_date,
                NOW,
            )
        };
        assert!(matches!(more(&[(1, 3)]), Err(InvoiceError::Invalid(_))));
        // Two entries for the same line add up: 2 + 1 routers of 2.
        assert!(matches!(more(&[(1, 2), (1, 1)]), Err(InvoiceError::Invalid(_))));
        assert!(matches!(more(&[(9, 1)]), Err(InvoiceError::Invalid(_))));
        assert!(matches!(more(&[]), Err(InvoiceError::Invalid(_))));
        assert!(more(&[(1, 1), (1, 1)]).is_ok());
    }

    #[test]
    fn a_quantity_of_zero_is_refused() {
        let invoice = boleta();
        let zero = CreditNoteDraft::by_lines(
            &invoice,
            &[(0, 0)],
            "BC01",
            CreditNoteReason::ItemReturn,
            "x",
            invoice.issue_date,
            NOW,
        );
        assert!(matches!(zero, Err(InvoiceError::Invalid(m)) if m.contains("quantity 0")));
    }

    #[test]
    fn the_series_starts_with_the_referenced_documents_letter() {
        let invoice = boleta();
        let with_series = |series: &str| {
            CreditNoteDraft::total(
                &invoice,
                series,
                CreditNoteReason::Cancellation,
                "x",
                invoice.issue_date,
                NOW,
            )
        };
        assert!(matches!(with_series("FC01"), Err(InvoiceError::Config(_))));
        assert!(matches!(with_series("bc01"), Err(InvoiceError::Config(_))));
        assert!(matches!(with_series("BC1"), Err(InvoiceError::Config(_))));
        assert!(with_series("BC01").is_ok());
    }

    #[test]
    fn description_date_and_number_are_checked() {
        let invoice = boleta();
        let draft = |description: &str, day: Date| {
            CreditNoteDraft::total(&invoice, "BC01", CreditNoteReason::Other, description, day, NOW)
        };
        assert!(draft("  ", invoice.issue_date).is_err());
        assert!(draft(&"x".repeat(MAX_DESCRIPTION_CHARS + 1), invoice.issue_date).is_err());
        assert!(draft("x", date!(2026 - 11 - 30)).is_err());
        let ok = draft("x", invoice.issue_date).expect("draft");
        assert!(matches!(ok.numbered(0), Err(InvoiceError::SeriesExhausted(_))));
        assert!(matches!(
            ok.numbered(MAX_NUMBER + 1),
            Err(InvoiceError::SeriesExhausted(_))
        ));
    }

    #[test]
    fn a_request_without_lines_credits_everything_and_lines_count_from_one() {
        let invoice = boleta();
        let day = invoice.issue_date;
        let total = CreditNoteDraft::requested(&invoice, &[], "BC01", CreditNoteReason::TotalReturn, "x", day, NOW)
            .expect("total");
        assert_eq!(total.totals(), &invoice.totals);
        let one = CreditedLine { line: 1, quantity: 1 };
        let first = CreditNoteDraft::requested(&invoice, &[one], "BC01", CreditNoteReason::ItemReturn, "x", day, NOW)
            .and_then(|d| d.numbered(1))
            .expect("first line");
        assert_eq!(first.lines.len(), 1);
        assert_eq!(first.lines[0].description, invoice.lines[0].description);
        let zero = CreditedLine { line: 0, quantity: 1 };
        assert!(
            CreditNoteDraft::requested(&invoice, &[zero], "BC01", CreditNoteReason::ItemReturn, "x", day, NOW).is_err()
        );
    }

    #[test]
    fn reasons_travel_as_their_catalog_code() {
        for reason in CreditNoteReason::ALL {
            let json = serde_json::to_string(&reason).expect("json");
            assert_eq!(json, format!("\"{}\"", reason.code()));
            assert_eq!(serde_json::from_str::<CreditNoteReason>(&json).expect("back"), reason);
        }
        assert_eq!(CreditNoteReason::ALL.last().map(|r| r.code()), Some("13"));
        assert!(serde_json::from_str::<CreditNoteReason>("\"14\"").is_err());
        assert!(serde_json::from_str::<CreditNoteReason>("\"CANCELLATION\"").is_err());
    }

    #[test]
    fn a_credit_note_round_trips_through_json() {
        let invoice = boleta();
        let note = CreditNoteDraft::total(&invoice, "BC01", CreditNoteReason::Other, "x", invoice.issue_date, NOW)
            .and_then(|d| d.numbered(3))
            .expect("note");
        let json = serde_json::to_string(&note).expect("json");
        assert_eq!(serde_json::from_str::<CreditNote>(&json).expect("back"), note);
    }
}
