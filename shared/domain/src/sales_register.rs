//! The sales register (Registro de Ventas e Ingresos) of one client and one month: the rows an
//! accountant copies into SUNAT's format 14.1, as a CSV that opens in Excel.
//!
//! # What is in it
//!
//! Every factura (01), boleta (03) and credit note (07) the client issued in the month, by issue
//! date, then type, series and number. A credit note's amounts are negative, as registers show
//! them, and its row carries the document it corrects (type, series, number, date: 14.1 fields
//! 27–30).
//!
//! Only documents SUNAT accepted (`ACCEPTED`, or `OBSERVED`: accepted with observations) are
//! rows: a rejected document does not exist for the tax authority, and a pending one may still
//! be rejected. They are not dropped silently: [`SalesRegister::excluded`] lists them (the
//! endpoint answers them beside the file), so finance knows the month is not final until they
//! are settled and the register is generated again.
//!
//! # The file
//!
//! UTF-8 with a byte-order mark (Excel reads accents right only with it), a header row, CRLF
//! line ends, fields quoted only when they need it (RFC 4180: a comma, a quote or a line break;
//! quotes doubled). Amounts are decimals with a dot and the currency's digits (`-179.80`),
//! never floats. Dates are `dd/mm/yyyy`, as PLE files and Peruvian accountants write them. A
//! buyer's name that Excel would run as a formula (`=…`, `+…`, `-…`, `@…`) gets a leading `'`.
//!
//! | column                   | 14.1 field | content                                          |
//! |--------------------------|-----------:|--------------------------------------------------|
//! | `periodo`                |          1 | `YYYYMM`                                         |
//! | `fecha_emision`          |          4 | `dd/mm/yyyy`                                     |
//! | `fecha_vencimiento`      |          5 | `dd/mm/yyyy`; empty for notes                    |
//! | `tipo_comprobante`       |          6 | catalog 10: `01`, `03`, `07`                     |
//! | `serie`, `numero`        |       7, 9 | `F001`, `42`                                     |
//! | `tipo_doc_identidad`     |         11 | catalog 06: `6` RUC, `1` DNI, `4` CE, `7` passport |
//! | `numero_doc_identidad`   |         12 | as written on the document                       |
//! | `razon_social`           |         13 | the buyer's name                                 |
//! | `moneda`                 |         25 | ISO 4217                                         |
//! | `base_imponible_gravada` |         14 | taxable value (valor de venta gravado)           |
//! | `importe_exonerado`      |         19 | value of sales taxed at 0%                       |
//! | `igv`                    |         16 | IGV                                              |
//! | `importe_total`          |         24 | total                                            |
//! | `ref_fecha_emision` … `ref_numero` | 27–30 | the corrected document (notes only)     |
//! | `estado_sunat`           |          — | `ACCEPTED` or `OBSERVED`                         |
//!
//! Per row, `base_imponible_gravada + importe_exonerado + igv = importe_total` exactly.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use time::Date;

use crate::credit_note::CreditNote;
use crate::electronic::ElectronicStatus;
use crate::identity::{Document, DocumentType};
use crate::invoice::{DocumentKind, Invoice, Totals};
use crate::money::{Currency, Money, MoneyError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("a month is written YYYY-MM (2026-11), got {0:?}")]
    BadMonth(String),
    /// A stored note whose invoice id is not `SERIES-NUMBER`: a bug or a manual edit.
    #[error("credit note {note} refers to {reference:?}, which is not a document number")]
    BadReference { note: String, reference: String },
    #[error("register totals: {0}")]
    Money(#[from] MoneyError),
    #[error("writing the register's CSV: {0}")]
    Csv(String),
}

/// A calendar month, the register's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i32,
    /// 1–12.
    month: u8,
}

impl Period {
    /// `2026-11`; nothing else (no `2026-1`, no day, no spaces).
    pub fn parse(raw: &str) -> Result<Period, RegisterError> {
        let bad = || RegisterError::BadMonth(raw.to_owned());
        let (year, month) = raw.split_once('-').ok_or_else(bad)?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let month: u8 = month.parse().map_err(|_| bad())?;
        // Years before 1900 have no invoices and keep `time`'s calendar far from its limits.
        if year < 1900 || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Period { year, month })
    }

    pub fn containing(date: Date) -> Period {
        Period {
            year: date.year(),
            month: u8::from(date.month()),
        }
    }

    fn calendar_month(self) -> time::Month {
        // `month` is 1–12 by construction.
        time::Month::try_from(self.month).unwrap_or(time::Month::January)
    }

    pub fn first_day(self) -> Date {
        Date::from_calendar_date(self.year, self.calendar_month(), 1).unwrap_or(Date::MIN)
    }

    pub fn last_day(self) -> Date {
        let month = self.calendar_month();
        Date::from_calendar_date(self.year, month, month.length(self.year)).unwrap_or(Date::MAX)
    }

    pub fn contains(self, date: Date) -> bool {
        Period::containing(date) == self
    }

    /// `202611`: the period as PLE files write it (without their trailing `00`).
    pub fn compact(self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// SUNAT catalog 10: the sales documents the register lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegisterDocumentType {
    Factura,
    Boleta,
    CreditNote,
}

impl RegisterDocumentType {
    pub fn code(self) -> &'static str {
        match self {
            RegisterDocumentType::Factura => "01",
            RegisterDocumentType::Boleta => "03",
            RegisterDocumentType::CreditNote => "07",
        }
    }
}

impl From<DocumentKind> for RegisterDocumentType {
    fn from(kind: DocumentKind) -> Self {
        match kind {
            DocumentKind::Factura => RegisterDocumentType::Factura,
            DocumentKind::Boleta => RegisterDocumentType::Boleta,
        }
    }
}

/// SUNAT catalog 06: the buyer's identity document type.
pub fn identity_code(document: &Document) -> &'static str {
    match document.kind() {
        DocumentType::Dni => "1",
        DocumentType::Ce => "4",
        DocumentType::Ruc => "6",
        DocumentType::Passport => "7",
    }
}

/// The document a credit note corrects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: DocumentKind,
    pub series: String,
    pub number: u64,
    pub issue_date: Date,
}

/// What the register needs of one issued document, and where it stands at SUNAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterDocument {
    pub document_type: RegisterDocumentType,
    pub series: String,
    pub number: u64,
    pub issue_date: Date,
    pub due_date: Option<Date>,
    pub buyer_name: String,
    pub buyer_document: Document,
    pub currency: Currency,
    /// Whether its tax rate is above 0%: its value is then taxable base, else exempt.
    pub taxed: bool,
    /// As issued, positive.
    pub totals: Totals,
    pub reference: Option<Reference>,
    pub status: ElectronicStatus,
}

impl RegisterDocument {
    pub fn invoice(invoice: &Invoice, status: ElectronicStatus) -> RegisterDocument {
        RegisterDocument {
            document_type: invoice.kind.into(),
            series: invoice.series.clone(),
            number: invoice.number,
            issue_date: invoice.issue_date,
            due_date: Some(invoice.due_date),
            buyer_name: invoice.buyer.name.clone(),
            buyer_document: invoice.buyer.document.clone(),
            currency: invoice.currency,
            taxed: invoice.tax.rate_bp > 0,
            totals: invoice.totals,
            reference: None,
            status,
        }
    }

    pub fn credit_note(note: &CreditNote, status: ElectronicStatus) -> Result<RegisterDocument, RegisterError> {
        let bad = || RegisterError::BadReference {
            note: note.credit_note_id.clone(),
            reference: note.invoice_id.clone(),
        };
        let (series, number) = note.invoice_id.split_once('-').ok_or_else(bad)?;
        let number: u64 = number.parse().map_err(|_| bad())?;
        Ok(RegisterDocument {
            document_type: RegisterDocumentType::CreditNote,
            series: note.series.clone(),
            number: note.number,
            issue_date: note.issue_date,
            due_date: None,
            buyer_name: note.buyer.name.clone(),
            buyer_document: note.buyer.document.clone(),
            currency: note.currency,
            taxed: note.tax.rate_bp > 0,
            totals: note.totals,
            reference: Some(Reference {
                kind: note.invoice_kind,
                series: series.to_owned(),
                number,
                issue_date: note.invoice_issue_date,
            }),
            status,
        })
    }

    /// `F001-00000042`, as printed.
    pub fn document_id(&self) -> String {
        crate::invoice::invoice_number(&self.series, self.number)
    }

    /// Its amounts as the register shows them: negative for a credit note.
    fn signed(&self) -> Result<SignedAmounts, MoneyError> {
        let sign = |m: Money| -> Result<Money, MoneyError> {
            if self.document_type == RegisterDocumentType::CreditNote {
                let negated = m.amount_minor().checked_neg().ok_or(MoneyError::Overflow)?;
                Ok(Money::from_minor(negated, m.currency()))
            } else {
                Ok(m)
            }
        };
        let zero = Money::zero(self.currency);
        let value = sign(self.totals.subtotal)?;
        Ok(SignedAmounts {
            taxable: if self.taxed { value } else { zero },
            exempt: if self.taxed { zero } else { value },
            igv: sign(self.totals.tax)?,
            total: sign(self.totals.total)?,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct SignedAmounts {
    taxable: Money,
    exempt: Money,
    igv: Money,
    total: Money,
}

/// A document left out of the register, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub document_id: String,
    pub document_type: RegisterDocumentType,
    #[serde(with = "crate::wire::date")]
    pub issue_date: Date,
    pub electronic_status: ElectronicStatus,
}

/// The register's sums in one currency, credit notes subtracted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrencyTotals {
    pub currency: Currency,
    pub taxable: Money,
    pub exempt: Money,
    pub igv: Money,
    pub total: Money,
}

/// How many rows of each type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RowCounts {
    pub facturas: usize,
    pub boletas: usize,
    pub credit_notes: usize,
    pub total: usize,
}

pub const CSV_HEADER: [&str; 19] = [
    "periodo",
    "fecha_emision",
    "fecha_vencimiento",
    "tipo_comprobante",
    "serie",
    "numero",
    "tipo_doc_identidad",
    "numero_doc_identidad",
    "razon_social",
    "moneda",
    "base_imponible_gravada",
    "importe_exonerado",
    "igv",
    "importe_total",
    "ref_fecha_emision",
    "ref_tipo_comprobante",
    "ref_serie",
    "ref_numero",
    "estado_sunat",
];

/// One client's register for one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesRegister {
    pub period: Period,
    /// The rows, in register order.
    pub rows: Vec<RegisterDocument>,
    /// Rejected and still-pending documents of the month, in register order.
    pub excluded: Vec<Excluded>,
}

impl SalesRegister {
    /// The register of `period` from the client's documents; documents of other months are
    /// not this register's and are ignored.
    pub fn build(period: Period, documents: impl IntoIterator<Item = RegisterDocument>) -> SalesRegister {
        let (mut rows, mut left_out): (Vec<_>, Vec<_>) = documents
            .into_iter()
            .filter(|d| period.contains(d.issue_date))
            .partition(|d| d.status.is_valid());
        let order = |d: &RegisterDocument| (d.issue_date, d.document_type, d.series.clone(), d.number);
        rows.sort_by_key(order);
        left_out.sort_by_key(order);
        SalesRegister {
            period,
            rows,
            excluded: left_out
                .into_iter()
                .map(|d| Excluded {
                    document_id: d.document_id(),
                    document_type: d.document_type,
                    issue_date: d.issue_date,
                    electronic_status: d.status,
                })
                .collect(),
        }
    }

    pub fn counts(&self) -> RowCounts {
        let of = |t: RegisterDocumentType| self.rows.iter().filter(|r| r.document_type == t).count();
        RowCounts {
            facturas: of(RegisterDocumentType::Factura),
            boletas: of(RegisterDocumentType::Boleta),
            credit_notes: of(RegisterDocumentType::CreditNote),
            total: self.rows.len(),
        }
    }

    /// Sums per currency (by ISO code), notes negative: exact, in minor units.
    pub fn totals(&self) -> Result<Vec<CurrencyTotals>, RegisterError> {
        let mut sums: BTreeMap<&'static str, CurrencyTotals> = BTreeMap::new();
        for row in &self.rows {
            let amounts = row.signed()?;
            let zero = Money::zero(row.currency);
            let sum = sums.entry(row.currency.code()).or_insert(CurrencyTotals {
                currency: row.currency,
                taxable: zero,
                exempt: zero,
                igv: zero,
                total: zero,
            });
            sum.taxable = sum.taxable.checked_add(&amounts.taxable)?;
            sum.exempt = sum.exempt.checked_add(&amounts.exempt)?;
            sum.igv = sum.igv.checked_add(&amounts.igv)?;
            sum.total = sum.total.checked_add(&amounts.total)?;
        }
        Ok(sums.into_values().collect())
    }

    /// The register's rows as text, in [`CSV_HEADER`]'s order.
    pub fn records(&self) -> Result<Vec<[String; 19]>, RegisterError> {
        let period = self.period.compact();
        self.rows
            .iter()
            .map(|row| {
                let amounts = row.signed()?;
                let reference = row.reference.as_ref();
                Ok([
                    period.clone(),
                    dd_mm_yyyy(row.issue_date),
                    row.due_date.map(dd_mm_yyyy).unwrap_or_default(),
                    row.document_type.code().to_owned(),
                    row.series.clone(),
                    row.number.to_string(),
                    identity_code(&row.buyer_document).to_owned(),
                    row.buyer_document.number().to_owned(),
                    spreadsheet_text(&row.buyer_name),
                    row.currency.code().to_owned(),
                    amounts.taxable.to_decimal_string(),
                    amounts.exempt.to_decimal_string(),
                    amounts.igv.to_decimal_string(),
                    amounts.total.to_decimal_string(),
                    reference.map(|r| dd_mm_yyyy(r.issue_date)).unwrap_or_default(),
                    reference
                        .map(|r| RegisterDocumentType::from(r.kind).code().to_owned())
                        .unwrap_or_default(),
                    reference.map(|r| r.series.clone()).unwrap_or_default(),
                    reference.map(|r| r.number.to_string()).unwrap_or_default(),
                    row.status.as_str().to_owned(),
                ])
            })
            .collect()
    }

    /// The file: BOM, header, one CRLF-terminated record per row.
    pub fn to_csv(&self) -> Result<Vec<u8>, RegisterError> {
        let records = self.records()?;
        let mut out = "\u{feff}".as_bytes().to_vec();
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(&mut out);
        let csv_error = |e: csv::Error| RegisterError::Csv(e.to_string());
        writer.write_record(CSV_HEADER).map_err(csv_error)?;
        for record in &records {
            writer.write_record(record).map_err(csv_error)?;
        }
        writer.flush().map_err(|e| RegisterError::Csv(e.to_string()))?;
        drop(writer);
        Ok(out)
    }
}

/// Free text as a spreadsheet shows it and never runs it: a name an agent typed as
/// `=HYPERLINK(…)` or `+51…` would be a formula in Excel, so such text gets a leading `'`
/// (OWASP's advice for CSV injection). Only the buyer's name is free text in a row.
pub fn spreadsheet_text(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// `05/11/2026`.
pub fn dd_mm_yyyy(date: Date) -> String {
    format!("{:02}/{:02}/{:04}", date.day(), u8::from(date.month()), date.year())
}

/// The register's file name: `registro-ventas-acme-2026-11.csv`.
pub fn file_name(client_id: &str, period: Period) -> String {
    format!("registro-ventas-{client_id}-{period}.csv")
}

#[cfg(test)]
mod tests;
