//! SUNAT's electronic documents: an issued [`Invoice`] (factura 01, boleta 03) or
//! [`CreditNote`] (07) as UBL 2.1 XML in SUNAT's profile ([`build_invoice`],
//! [`build_credit_note`]), signed with an enveloped XML-DSig signature ([`sign`]: C14N by
//! bergshamra-c14n, SHA-256 and RSA by ring), named ([`file_stem`]) and zipped ([`zip_document`]) as SUNAT expects them.
//!
//! ```text
//! let xml = build_invoice(&invoice)?;
//! let signed = sign(&xml, &Signer::from_pem(cert_pem, key_pem)?)?;
//! let stem = file_stem(ruc, invoice_type_code(invoice.kind), &invoice.series, invoice.number);
//! let zip = zip_document(&stem, &signed.xml)?;   // what sunat-soap sends
//! // signed.digest_value is the document's "hash": printed on the PDF and in its QR code.
//! ```
//!
//! The profile, catalogs and algorithms, and what is not covered: docs/decisions/0015.

mod document;
mod signature;
mod text;

use std::io::Write;

use backoffice_domain::invoice::DocumentKind;

pub use backoffice_domain::credit_note::CreditNote;
pub use backoffice_domain::invoice::Invoice;
pub use document::{Affectation, build_credit_note, build_invoice};
pub use signature::{C14N_METHOD, DIGEST_METHOD, SIGNATURE_ID, SIGNATURE_METHOD, Signed, Signer, read_signed, sign};

/// Catalog 01: the type code of a factura.
pub const FACTURA: &str = "01";
/// Catalog 01: the type code of a boleta de venta.
pub const BOLETA: &str = "03";
/// Catalog 01: the type code of a credit note.
pub const CREDIT_NOTE: &str = "07";

#[derive(Debug, thiserror::Error)]
pub enum UblError {
    /// The document cannot be expressed in SUNAT's profile (an unsupported currency, a negative
    /// amount…): a bug or bad data upstream, retrying cannot help.
    #[error("cannot build the document: {0}")]
    Unsupported(String),
    /// The certificate or the key cannot be read or do not belong together: fixable by a person.
    #[error("signing credentials: {0}")]
    Credentials(String),
    /// The XML to sign is not what [`build_invoice`] / [`build_credit_note`] make.
    #[error("cannot sign this XML: {0}")]
    NotSignable(String),
    /// Canonicalization or the RSA signature failed.
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
}

/// Catalog 01 code of an invoice of `kind`.
pub fn invoice_type_code(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Factura => FACTURA,
        DocumentKind::Boleta => BOLETA,
    }
}

/// `20100070970-01-F001-00000042`: how SUNAT names a document's XML and zip (RUC, catalog 01
/// type, series, number). The number is written as in the document's `cbc:ID` (eight digits,
/// as `invoice::invoice_number` writes it), which SUNAT requires the name to match.
pub fn file_stem(ruc: &str, type_code: &str, series: &str, number: u64) -> String {
    format!("{ruc}-{type_code}-{series}-{number:08}")
}

/// A zip holding `{stem}.xml`, deflated, with a fixed timestamp (1980-01-01) so the same
/// document always zips to the same bytes.
pub fn zip_document(stem: &str, xml: &[u8]) -> Result<Vec<u8>, UblError> {
    use zip::write::SimpleFileOptions;
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::DEFAULT)
        .unix_permissions(0o644);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(format!("{stem}.xml"), options)?;
    zip.write_all(xml)?;
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests;
