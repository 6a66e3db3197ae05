//! The UBL 2.1 documents in SUNAT's profile (customization 2.0), element order per the UBL
//! schemas. Codes come from SUNAT's catalogs: 01 document type, 03 unit, 05 tax, 06 identity
//! document, 07 IGV affectation, 09 credit note reason, 16 price type, 51 operation type.

use backoffice_domain::credit_note::CreditNote;
use backoffice_domain::identity::{Document, DocumentType};
use backoffice_domain::invoice::{DocumentKind, Invoice, InvoiceLine, LineKind, Party, TaxConfig, Totals};
use backoffice_domain::money::Money;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::signature::SIGNATURE_ID;
use crate::text::{Xml, amount, percent, unit_amount};
use crate::{UblError, invoice_type_code};

const NS_INVOICE: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const NS_CREDIT_NOTE: &str = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
const NS_CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
const NS_CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";
const NS_EXT: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2";
const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";

const SUNAT: &str = "PE:SUNAT";
const CATALOG: &str = "urn:pe:gob:sunat:cpe:see:gem:catalogos:catalogo";
/// Catalog 51: internal sale (venta interna).
const OPERATION_TYPE: &str = "0101";
/// Catalog 52: the legend "amount in words".
const LEGEND_AMOUNT_IN_WORDS: &str = "1000";
/// Peru's civil time: UTC−5 all year (no daylight saving since 1994). The invoice records
/// its instant, not the seller's offset, and SUNAT's documents are Peruvian.
const PERU: UtcOffset = match UtcOffset::from_hms(-5, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// How a line is treated for IGV (catalog 07) and the tax scheme it reports under (catalog 05).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affectation {
    /// 10, gravado — onerous operation: scheme 1000 IGV.
    Taxed,
    /// 20, exonerado: scheme 9997 EXO.
    Exempt,
    /// 30, inafecto: scheme 9998 INA.
    Unaffected,
}

impl Affectation {
    /// A positive rate is taxed; a rate of 0 is exempt. `TaxConfig` cannot say "inafecto" yet.
    pub fn of(tax: &TaxConfig) -> Affectation {
        if tax.rate_bp > 0 {
            Affectation::Taxed
        } else {
            Affectation::Exempt
        }
    }

    /// Catalog 07 code.
    pub fn code(self) -> &'static str {
        match self {
            Affectation::Taxed => "10",
            Affectation::Exempt => "20",
            Affectation::Unaffected => "30",
        }
    }

    /// Catalog 05: (code, name, UN/ECE 5153 type code).
    fn scheme(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Affectation::Taxed => ("1000", "IGV", "VAT"),
            Affectation::Exempt => ("9997", "EXO", "VAT"),
            Affectation::Unaffected => ("9998", "INA", "FRE"),
        }
    }
}

/// A factura (01) or boleta (03) as UBL 2.1 `Invoice`, unsigned: its
/// `ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent` is left empty for [`crate::sign`].
pub fn build_invoice(invoice: &Invoice) -> Result<String, UblError> {
    let mut x = Xml::new()?;
    open_root(&mut x, "Invoice", NS_INVOICE)?;
    heading(&mut x, &invoice.invoice_id, invoice.issue_date, invoice.issued_at)?;
    x.leaf("cbc:DueDate", &[], &date(invoice.due_date)?)?;
    let type_code = invoice_type_code(invoice.kind);
    x.leaf(
        "cbc:InvoiceTypeCode",
        &[
            ("listAgencyName", SUNAT),
            ("listName", "Tipo de Documento"),
            ("listURI", &format!("{CATALOG}01")),
            ("listID", OPERATION_TYPE),
            ("name", "Tipo de Operacion"),
            ("listSchemeURI", &format!("{CATALOG}51")),
        ],
        type_code,
    )?;
    legend_and_currency(&mut x, &invoice.total_in_words, &invoice.totals)?;
    parties(&mut x, &invoice.seller, &invoice.buyer)?;
    if invoice.kind == DocumentKind::Factura {
        payment_terms(&mut x, invoice)?;
    }
    totals(&mut x, &invoice.tax, &invoice.totals)?;
    lines(
        &mut x,
        "cac:InvoiceLine",
        "cbc:InvoicedQuantity",
        &invoice.tax,
        &invoice.lines,
    )?;
    x.close("Invoice")?;
    x.finish()
}

/// A credit note (07) as UBL 2.1 `CreditNote`, unsigned like [`build_invoice`].
pub fn build_credit_note(note: &CreditNote) -> Result<String, UblError> {
    let mut x = Xml::new()?;
    open_root(&mut x, "CreditNote", NS_CREDIT_NOTE)?;
    heading(&mut x, &note.credit_note_id, note.issue_date, note.issued_at)?;
    legend_and_currency(&mut x, &note.total_in_words, &note.totals)?;
    x.open("cac:DiscrepancyResponse", &[])?;
    x.leaf("cbc:ReferenceID", &[], &note.invoice_id)?;
    x.leaf(
        "cbc:ResponseCode",
        &[
            ("listAgencyName", SUNAT),
            ("listName", "Tipo de nota de credito"),
            ("listURI", &format!("{CATALOG}09")),
        ],
        note.reason.code(),
    )?;
    x.leaf("cbc:Description", &[], &note.description)?;
    x.close("cac:DiscrepancyResponse")?;
    x.open("cac:BillingReference", &[])?;
    x.open("cac:InvoiceDocumentReference", &[])?;
    x.leaf("cbc:ID", &[], &note.invoice_id)?;
    // Optional for SUNAT; lets a reader of the note alone date the invoice (UBL order: ID,
    // IssueDate, DocumentTypeCode).
    x.leaf("cbc:IssueDate", &[], &date(note.invoice_issue_date)?)?;
    x.leaf(
        "cbc:DocumentTypeCode",
        &[
            ("listAgencyName", SUNAT),
            ("listName", "Tipo de Documento"),
            ("listURI", &format!("{CATALOG}01")),
        ],
        invoice_type_code(note.invoice_kind),
    )?;
    x.close("cac:InvoiceDocumentReference")?;
    x.close("cac:BillingReference")?;
    parties(&mut x, &note.seller, &note.buyer)?;
    totals(&mut x, &note.tax, &note.totals)?;
    lines(
        &mut x,
        "cac:CreditNoteLine",
        "cbc:CreditedQuantity",
        &note.tax,
        &note.lines,
    )?;
    x.close("CreditNote")?;
    x.finish()
}

fn open_root(x: &mut Xml, name: &str, namespace: &str) -> Result<(), UblError> {
    x.open(
        name,
        &[
            ("xmlns", namespace),
            ("xmlns:cac", NS_CAC),
            ("xmlns:cbc", NS_CBC),
            ("xmlns:ds", NS_DS),
            ("xmlns:ext", NS_EXT),
        ],
    )?;
    // Where the signature goes.
    x.open("ext:UBLExtensions", &[])?;
    x.open("ext:UBLExtension", &[])?;
    x.empty("ext:ExtensionContent", &[])?;
    x.close("ext:UBLExtension")?;
    x.close("ext:UBLExtensions")?;
    Ok(())
}

fn heading(x: &mut Xml, id: &str, issue_date: Date, issued_at: OffsetDateTime) -> Result<(), UblError> {
    x.leaf("cbc:UBLVersionID", &[], "2.1")?;
    x.leaf("cbc:CustomizationID", &[("schemeAgencyName", SUNAT)], "2.0")?;
    x.leaf("cbc:ID", &[], id)?;
    x.leaf("cbc:IssueDate", &[], &date(issue_date)?)?;
    x.leaf("cbc:IssueTime", &[], &issue_time(issue_date, issued_at)?)?;
    Ok(())
}

fn legend_and_currency(x: &mut Xml, in_words: &str, totals: &Totals) -> Result<(), UblError> {
    x.leaf("cbc:Note", &[("languageLocaleID", LEGEND_AMOUNT_IN_WORDS)], in_words)?;
    x.leaf(
        "cbc:DocumentCurrencyCode",
        &[
            ("listID", "ISO 4217 Alpha"),
            ("listName", "Currency"),
            ("listAgencyName", "United Nations Economic Commission for Europe"),
        ],
        totals.total.currency().code(),
    )?;
    Ok(())
}

/// `cac:Signature` (who signs and where the signature is), then seller and buyer.
fn parties(x: &mut Xml, seller: &Party, buyer: &Party) -> Result<(), UblError> {
    if seller.document.kind() != DocumentType::Ruc {
        return Err(UblError::Unsupported(format!(
            "the seller is identified by {}, not a RUC",
            seller.document.kind()
        )));
    }
    x.open("cac:Signature", &[])?;
    x.leaf("cbc:ID", &[], SIGNATURE_ID)?;
    x.open("cac:SignatoryParty", &[])?;
    x.open("cac:PartyIdentification", &[])?;
    x.leaf("cbc:ID", &[], seller.document.number())?;
    x.close("cac:PartyIdentification")?;
    x.open("cac:PartyName", &[])?;
    x.leaf("cbc:Name", &[], &seller.name)?;
    x.close("cac:PartyName")?;
    x.close("cac:SignatoryParty")?;
    x.open("cac:DigitalSignatureAttachment", &[])?;
    x.open("cac:ExternalReference", &[])?;
    x.leaf("cbc:URI", &[], &format!("#{SIGNATURE_ID}"))?;
    x.close("cac:ExternalReference")?;
    x.close("cac:DigitalSignatureAttachment")?;
    x.close("cac:Signature")?;

    x.open("cac:AccountingSupplierParty", &[])?;
    party(x, seller, true)?;
    x.close("cac:AccountingSupplierParty")?;
    x.open("cac:AccountingCustomerParty", &[])?;
    party(x, buyer, false)?;
    x.close("cac:AccountingCustomerParty")?;
    Ok(())
}

fn party(x: &mut Xml, party: &Party, seller: bool) -> Result<(), UblError> {
    x.open("cac:Party", &[])?;
    x.open("cac:PartyIdentification", &[])?;
    x.leaf(
        "cbc:ID",
        &[
            ("schemeID", identity_code(&party.document)),
            ("schemeName", "Documento de Identidad"),
            ("schemeAgencyName", SUNAT),
            ("schemeURI", &format!("{CATALOG}06")),
        ],
        party.document.number(),
    )?;
    x.close("cac:PartyIdentification")?;
    x.open("cac:PartyLegalEntity", &[])?;
    x.leaf("cbc:RegistrationName", &[], &party.name)?;
    let address = party.address.as_deref().filter(|a| !a.trim().is_empty());
    if seller || address.is_some() {
        x.open("cac:RegistrationAddress", &[])?;
        if seller {
            // 0000: the seller's registered main address (domicilio fiscal).
            x.leaf(
                "cbc:AddressTypeCode",
                &[("listAgencyName", SUNAT), ("listName", "Establecimientos anexos")],
                "0000",
            )?;
        }
        if let Some(line) = address {
            x.open("cac:AddressLine", &[])?;
            x.leaf("cbc:Line", &[], line)?;
            x.close("cac:AddressLine")?;
        }
        x.close("cac:RegistrationAddress")?;
    }
    x.close("cac:PartyLegalEntity")?;
    x.close("cac:Party")?;
    Ok(())
}

/// Catalog 06.
fn identity_code(document: &Document) -> &'static str {
    match document.kind() {
        DocumentType::Dni => "1",
        DocumentType::Ce => "4",
        DocumentType::Ruc => "6",
        DocumentType::Passport => "7",
    }
}

/// A factura says how it is paid: cash, or credit with one installment due on the due date.
fn payment_terms(x: &mut Xml, invoice: &Invoice) -> Result<(), UblError> {
    x.open("cac:PaymentTerms", &[])?;
    x.leaf("cbc:ID", &[], "FormaPago")?;
    if invoice.due_date > invoice.issue_date {
        x.leaf("cbc:PaymentMeansID", &[], "Credito")?;
        x.money("cbc:Amount", &invoice.totals.total)?;
        x.close("cac:PaymentTerms")?;
        x.open("cac:PaymentTerms", &[])?;
        x.leaf("cbc:ID", &[], "FormaPago")?;
        x.leaf("cbc:PaymentMeansID", &[], "Cuota001")?;
        x.money("cbc:Amount", &invoice.totals.total)?;
        x.leaf("cbc:PaymentDueDate", &[], &date(invoice.due_date)?)?;
    } else {
        x.leaf("cbc:PaymentMeansID", &[], "Contado")?;
    }
    x.close("cac:PaymentTerms")?;
    Ok(())
}

fn totals(x: &mut Xml, tax: &TaxConfig, totals: &Totals) -> Result<(), UblError> {
    x.open("cac:TaxTotal", &[])?;
    x.money("cbc:TaxAmount", &totals.tax)?;
    tax_subtotal(x, tax, &totals.subtotal, &totals.tax, false)?;
    x.close("cac:TaxTotal")?;
    x.open("cac:LegalMonetaryTotal", &[])?;
    x.money("cbc:LineExtensionAmount", &totals.subtotal)?;
    x.money("cbc:TaxInclusiveAmount", &totals.total)?;
    x.money("cbc:PayableAmount", &totals.total)?;
    x.close("cac:LegalMonetaryTotal")?;
    Ok(())
}

fn tax_subtotal(x: &mut Xml, tax: &TaxConfig, taxable: &Money, amount: &Money, line: bool) -> Result<(), UblError> {
    let affectation = Affectation::of(tax);
    let (code, name, type_code) = affectation.scheme();
    x.open("cac:TaxSubtotal", &[])?;
    x.money("cbc:TaxableAmount", taxable)?;
    x.money("cbc:TaxAmount", amount)?;
    x.open("cac:TaxCategory", &[])?;
    if line {
        x.leaf("cbc:Percent", &[], &percent(tax.rate_bp))?;
        x.leaf(
            "cbc:TaxExemptionReasonCode",
            &[
                ("listAgencyName", SUNAT),
                ("listName", "Afectacion del IGV"),
                ("listURI", &format!("{CATALOG}07")),
            ],
            affectation.code(),
        )?;
    }
    x.open("cac:TaxScheme", &[])?;
    x.leaf(
        "cbc:ID",
        &[
            ("schemeName", "Codigo de tributos"),
            ("schemeAgencyName", SUNAT),
            ("schemeURI", &format!("{CATALOG}05")),
        ],
        code,
    )?;
    x.leaf("cbc:Name", &[], name)?;
    x.leaf("cbc:TaxTypeCode", &[], type_code)?;
    x.close("cac:TaxScheme")?;
    x.close("cac:TaxCategory")?;
    x.close("cac:TaxSubtotal")?;
    Ok(())
}

fn lines(x: &mut Xml, element: &str, quantity: &str, tax: &TaxConfig, lines: &[InvoiceLine]) -> Result<(), UblError> {
    for (i, line) in lines.iter().enumerate() {
        x.open(element, &[])?;
        x.leaf("cbc:ID", &[], &(i + 1).to_string())?;
        // Catalog 03: goods by the unit, shipping as a service.
        let unit = match line.kind {
            LineKind::Item => "NIU",
            LineKind::Shipping => "ZZ",
        };
        x.leaf(
            quantity,
            &[
                ("unitCode", unit),
                ("unitCodeListID", "UN/ECE rec 20"),
                (
                    "unitCodeListAgencyName",
                    "United Nations Economic Commission for Europe",
                ),
            ],
            &line.quantity.to_string(),
        )?;
        x.money("cbc:LineExtensionAmount", &line.net)?;
        // What one unit costs the buyer, tax included (catalog 16, type 01).
        let with_tax = if tax.prices_include_tax {
            amount(&line.unit_price)?
        } else {
            unit_amount(&line.total, line.quantity)?
        };
        x.open("cac:PricingReference", &[])?;
        x.open("cac:AlternativeConditionPrice", &[])?;
        x.leaf(
            "cbc:PriceAmount",
            &[("currencyID", line.unit_price.currency().code())],
            &with_tax,
        )?;
        x.leaf(
            "cbc:PriceTypeCode",
            &[
                ("listName", "Tipo de Precio"),
                ("listAgencyName", SUNAT),
                ("listURI", &format!("{CATALOG}16")),
            ],
            "01",
        )?;
        x.close("cac:AlternativeConditionPrice")?;
        x.close("cac:PricingReference")?;
        x.open("cac:TaxTotal", &[])?;
        x.money("cbc:TaxAmount", &line.tax)?;
        tax_subtotal(x, tax, &line.net, &line.tax, true)?;
        x.close("cac:TaxTotal")?;
        x.open("cac:Item", &[])?;
        x.leaf("cbc:Description", &[], &line.description)?;
        if let Some(sku) = &line.sku {
            x.open("cac:SellersItemIdentification", &[])?;
            x.leaf("cbc:ID", &[], sku)?;
            x.close("cac:SellersItemIdentification")?;
        }
        x.close("cac:Item")?;
        // The unit value without tax (valor unitario).
        let without_tax = if tax.prices_include_tax {
            unit_amount(&line.net, line.quantity)?
        } else {
            amount(&line.unit_price)?
        };
        x.open("cac:Price", &[])?;
        x.leaf(
            "cbc:PriceAmount",
            &[("currencyID", line.unit_price.currency().code())],
            &without_tax,
        )?;
        x.close("cac:Price")?;
        x.close(element)?;
    }
    Ok(())
}

fn date(day: Date) -> Result<String, UblError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    day.format(&format)
        .map_err(|e| UblError::Unsupported(format!("date {day}: {e}")))
}

/// The time of issue in Peru. A date moved forward past the instant's own day (a series'
/// later number never carries an earlier date) starts at midnight of that day.
fn issue_time(issue_date: Date, issued_at: OffsetDateTime) -> Result<String, UblError> {
    let local = issued_at.to_offset(PERU);
    let time = if local.date() == issue_date {
        local.time()
    } else {
        time::Time::MIDNIGHT
    };
    let format = time::macros::format_description!("[hour]:[minute]:[second]");
    time.format(&format)
        .map_err(|e| UblError::Unsupported(format!("time {time}: {e}")))
}
