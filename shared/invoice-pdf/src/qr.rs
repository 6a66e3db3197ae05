//! SUNAT's two-dimensional code on the printed representation: what it says and its modules.
//!
//! The content is the one SUNAT set for the printed representation of electronic payment
//! documents (R.S. 097-2012/SUNAT as amended by R.S. 185-2015/SUNAT, QR code mandatory since
//! 2018), fields separated and ended by `|`:
//!
//! `RUC|TIPO|SERIE|NUMERO|MTO IGV|MTO TOTAL|FECHA EMISION|TIPO DOC ADQUIRENTE|NUM DOC ADQUIRENTE|VALOR RESUMEN|`
//!
//! Field order as listed in "Código de barras bidimensional" (slcontadores.com/web/
//! codigo-barras-bidimensional: RUC del emisor, tipo de comprobante, serie y número, sumatoria
//! IGV, importe total, fecha de emisión, tipo y número de documento del adquirente, código hash;
//! the optional signature value is left out) and the same in the `sunat_cpe` crate's
//! `cpe_qr.rs` (docs.rs), which formats amounts with two decimals.

use backoffice_domain::credit_note::CreditNote;
use backoffice_domain::identity::{Document, DocumentType};
use backoffice_domain::invoice::{DocumentKind, Invoice};
use backoffice_domain::money::Money;
use qrcode::{Color, EcLevel, QrCode};
use time::Date;

use crate::{RenderError, iso_date};

/// Modules of light margin around the code that readers need to find it.
pub(crate) const QUIET_ZONE: usize = 4;

/// SUNAT's code for the document type (catalog 01).
pub(crate) fn document_type_code(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Factura => "01",
        DocumentKind::Boleta => "03",
    }
}

/// SUNAT's code for an identity document (catalog 06).
pub(crate) fn identity_code(kind: DocumentType) -> &'static str {
    match kind {
        DocumentType::Ruc => "6",
        DocumentType::Dni => "1",
        DocumentType::Ce => "4",
        DocumentType::Passport => "7",
    }
}

/// The text the QR code carries; `digest_value` is the signature's base64 `DigestValue`.
/// The number is printed with its 8 digits, as in the document's legal number.
pub fn qr_payload(invoice: &Invoice, digest_value: &str) -> String {
    payload(&Fields {
        ruc: invoice.seller.document.number(),
        type_code: document_type_code(invoice.kind),
        series: &invoice.series,
        number: invoice.number,
        tax: &invoice.totals.tax,
        total: &invoice.totals.total,
        issue_date: invoice.issue_date,
        buyer: &invoice.buyer.document,
        digest_value,
    })
}

/// The same fields for a credit note: type 07, its own series, number, amounts and date.
pub fn credit_note_qr_payload(note: &CreditNote, digest_value: &str) -> String {
    payload(&Fields {
        ruc: note.seller.document.number(),
        type_code: CREDIT_NOTE,
        series: &note.series,
        number: note.number,
        tax: &note.totals.tax,
        total: &note.totals.total,
        issue_date: note.issue_date,
        buyer: &note.buyer.document,
        digest_value,
    })
}

/// SUNAT's code for a credit note (catalog 01).
const CREDIT_NOTE: &str = "07";

struct Fields<'a> {
    ruc: &'a str,
    type_code: &'a str,
    series: &'a str,
    number: u64,
    tax: &'a Money,
    total: &'a Money,
    issue_date: Date,
    buyer: &'a Document,
    digest_value: &'a str,
}

fn payload(f: &Fields<'_>) -> String {
    let fields = [
        f.ruc.to_owned(),
        f.type_code.to_owned(),
        f.series.to_owned(),
        format!("{:08}", f.number),
        two_decimals(f.tax),
        two_decimals(f.total),
        iso_date(f.issue_date),
        identity_code(f.buyer.kind()).to_owned(),
        f.buyer.number().to_owned(),
        f.digest_value.to_owned(),
    ];
    let mut payload = fields.join("|");
    payload.push('|');
    payload
}

/// An amount with exactly two decimals and a dot, whatever the currency's exponent (SUNAT's
/// format for the code); extra digits are rounded half away from zero.
pub(crate) fn two_decimals(amount: &Money) -> String {
    let exponent = amount.currency().exponent();
    let minor = i128::from(amount.amount_minor());
    let cents = if exponent <= 2 {
        minor * 10i128.pow(2 - exponent)
    } else {
        let scale = 10i128.pow(exponent - 2);
        let half = scale / 2;
        let magnitude = (minor.abs() + half) / scale;
        if minor < 0 { -magnitude } else { magnitude }
    };
    let sign = if cents < 0 { "-" } else { "" };
    let magnitude = cents.unsigned_abs();
    format!("{sign}{}.{:02}", magnitude / 100, magnitude % 100)
}

/// A digest SUNAT can have produced: base64, so nothing that would break the `|` fields.
pub(crate) fn check_digest(digest_value: &str) -> Result<(), RenderError> {
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    if digest_value.is_empty() || !digest_value.chars().all(base64) {
        return Err(RenderError::InvalidDigest);
    }
    Ok(())
}

/// The code's dark modules as runs on each row: (row, first column, length), row 0 at the
/// top, quiet zone not included.
pub(crate) struct Modules {
    pub(crate) width: usize,
    pub(crate) runs: Vec<(usize, usize, usize)>,
}

/// Level Q (a quarter of the code can be lost to a stain or a fold) on the smallest version
/// that holds `payload`.
pub(crate) fn modules(payload: &str) -> Result<Modules, RenderError> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::Q)
        .map_err(|e| RenderError::QrCode(e.to_string()))?;
    let width = code.width();
    let colors = code.to_colors();
    let mut runs = Vec::new();
    for (row, cells) in colors.chunks(width).enumerate() {
        let mut column = 0;
        while column < cells.len() {
            if cells[column] == Color::Dark {
                let start = column;
                while column < cells.len() && cells[column] == Color::Dark {
                    column += 1;
                }
                runs.push((row, start, column - start));
            } else {
                column += 1;
            }
        }
    }
    Ok(Modules { width, runs })
}
