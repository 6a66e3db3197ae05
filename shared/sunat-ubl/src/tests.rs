//! The documents read back (structure, codes, amounts adding up to the domain's totals,
//! escaping), and their signatures checked by a foreign verifier: Debian's `xmlsec1`, which
//! the project's test scripts install at /usr/bin/xmlsec1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use backoffice_domain::credit_note::{CreditNote, CreditNoteDraft, CreditNoteReason};
use backoffice_domain::identity::{Document, DocumentType};
use backoffice_domain::invoice::{DocumentKind, Invoice, InvoiceDraft, Totals};
use backoffice_domain::money::{Currency, Money};
use backoffice_domain::testing::{billing_profile, invoice_request};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

/// 10:00 in Lima.
const NOW: OffsetDateTime = datetime!(2026-12-01 15:00 UTC);
const AWKWARD_NAME: &str = "Comercial \"Ñandú\" & Hijos <S.A.C.>";

/// F001-00000042 to a RUC buyer whose name needs escaping, payable in 30 days.
fn factura() -> Invoice {
    let mut request = invoice_request("p-factura", "acme");
    request.customer.document = Document::new(DocumentType::Ruc, "20601234565").expect("RUC");
    request.customer.full_name = AWKWARD_NAME.into();
    let invoice = InvoiceDraft::prepare(&request, &billing_profile("acme"), NOW)
        .and_then(|d| d.numbered(42))
        .expect("factura");
    assert_eq!(invoice.kind, DocumentKind::Factura);
    invoice
}

/// B001-00000007 to María (DNI), paid on the spot.
fn boleta() -> Invoice {
    let mut profile = billing_profile("acme");
    profile.payment_terms_days = 0;
    let invoice = InvoiceDraft::prepare(&invoice_request("p-boleta", "acme"), &profile, NOW)
        .and_then(|d| d.numbered(7))
        .expect("boleta");
    assert_eq!(invoice.kind, DocumentKind::Boleta);
    invoice
}

/// FC01-00000001: one router and the shipping of the factura returned.
fn credit_note() -> CreditNote {
    let invoice = factura();
    CreditNoteDraft::by_lines(
        &invoice,
        &[(1, 1), (2, 1)],
        "FC01",
        CreditNoteReason::ItemReturn,
        "Devolución de 1 router & envío",
        invoice.issue_date,
        NOW,
    )
    .and_then(|d| d.numbered(1))
    .expect("credit note")
}

type Attributes = Vec<(String, String)>;
/// (path of local names from the root, the element's attributes, its text).
type Leaf = (String, Attributes, String);

/// Every element with text, as (path of local names from the root, attributes, text), the
/// text unescaped. Fails on anything not well-formed.
fn leaves(xml: &str) -> (String, Vec<Leaf>) {
    let mut reader = NsReader::from_str(xml);
    let mut path: Vec<(String, Attributes)> = Vec::new();
    let mut out = Vec::new();
    let mut root = String::new();
    loop {
        let (ns, event) = reader.read_resolved_event().expect("well-formed XML");
        match event {
            Event::Start(start) => {
                if path.is_empty() {
                    let ns = match ns {
                        ResolveResult::Bound(n) => n.as_ref().to_owned(),
                        _ => String::new(),
                    };
                    root = format!("{{{ns}}}{}", start.local_name().as_ref());
                }
                let attributes = start
                    .attributes()
                    .map(|a| {
                        let a = a.expect("attribute");
                        let value = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .expect("value")
                            .into_owned();
                        (a.key.as_ref().to_owned(), value)
                    })
                    .collect();
                path.push((start.local_name().as_ref().to_owned(), attributes));
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(text) => {
                let text = text.xml_content(quick_xml::XmlVersion::Implicit1_0).into_owned();
                push_text(&mut out, &path, &text);
            }
            Event::GeneralRef(r) => {
                let name = r.into_inner().into_owned();
                let text = quick_xml::escape::unescape(&format!("&{name};"))
                    .expect("entity")
                    .into_owned();
                push_text(&mut out, &path, &text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (root, out)
}

/// Appends text to the element's entry (quick-xml reports `a &amp; b` as three events).
fn push_text(out: &mut Vec<Leaf>, path: &[(String, Attributes)], text: &str) {
    if text.trim().is_empty() && !text.is_empty() && text.contains('\n') {
        return; // indentation
    }
    let joined = path.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join("/");
    let attributes = path.last().map(|(_, a)| a.clone()).unwrap_or_default();
    match out.last_mut() {
        Some((last, _, value)) if *last == joined => value.push_str(text),
        _ => out.push((joined, attributes, text.to_owned())),
    }
}

struct Read {
    root: String,
    leaves: Vec<Leaf>,
}

impl Read {
    fn of(xml: &str) -> Read {
        let (root, leaves) = leaves(xml);
        Read { root, leaves }
    }

    fn all(&self, path: &str) -> Vec<&str> {
        self.leaves
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, _, t)| t.as_str())
            .collect()
    }

    fn one(&self, path: &str) -> &str {
        match self.all(path).as_slice() {
            [one] => one,
            other => panic!("{path}: expected one value, got {other:?}"),
        }
    }

    fn attribute(&self, path: &str, name: &str) -> &str {
        let (_, attributes, _) = self
            .leaves
            .iter()
            .find(|(p, _, _)| p == path)
            .unwrap_or_else(|| panic!("no {path}"));
        attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{path} has no {name}"))
    }

    fn minor(&self, path: &str) -> i64 {
        cents(self.one(path))
    }

    fn sum(&self, path: &str) -> i64 {
        self.all(path).into_iter().map(cents).sum()
    }
}

fn cents(text: &str) -> i64 {
    Money::parse(text, Currency::parse("PEN").expect("PEN"))
        .expect("an amount with two decimals")
        .amount_minor()
}

fn assert_totals(read: &Read, root: &str, line: &str, totals: &Totals) {
    assert_eq!(
        read.minor(&format!("{root}/LegalMonetaryTotal/LineExtensionAmount")),
        totals.subtotal.amount_minor()
    );
    assert_eq!(
        read.minor(&format!("{root}/LegalMonetaryTotal/TaxInclusiveAmount")),
        totals.total.amount_minor()
    );
    assert_eq!(
        read.minor(&format!("{root}/LegalMonetaryTotal/PayableAmount")),
        totals.total.amount_minor()
    );
    assert_eq!(
        read.minor(&format!("{root}/TaxTotal/TaxAmount")),
        totals.tax.amount_minor()
    );
    assert_eq!(
        read.minor(&format!("{root}/TaxTotal/TaxSubtotal/TaxableAmount")),
        totals.subtotal.amount_minor()
    );
    assert_eq!(
        read.sum(&format!("{root}/{line}/LineExtensionAmount")),
        totals.subtotal.amount_minor()
    );
    assert_eq!(
        read.sum(&format!("{root}/{line}/TaxTotal/TaxAmount")),
        totals.tax.amount_minor()
    );
    assert_eq!(
        read.sum(&format!("{root}/{line}/TaxTotal/TaxSubtotal/TaxAmount")),
        totals.tax.amount_minor()
    );
    assert_eq!(
        read.attribute(&format!("{root}/LegalMonetaryTotal/PayableAmount"), "currencyID"),
        "PEN"
    );
}

const UBL_INVOICE: &str = "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice";
const UBL_CREDIT_NOTE: &str = "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote";

#[test]
fn a_factura_on_credit_to_a_ruc_buyer() {
    let invoice = factura();
    let xml = build_invoice(&invoice).expect("xml");
    let read = Read::of(&xml);
    assert_eq!(read.root, UBL_INVOICE);
    assert_eq!(read.one("Invoice/UBLVersionID"), "2.1");
    assert_eq!(read.one("Invoice/CustomizationID"), "2.0");
    assert_eq!(read.one("Invoice/ID"), "F001-00000042");
    assert_eq!(read.one("Invoice/IssueDate"), "2026-12-01");
    assert_eq!(read.one("Invoice/IssueTime"), "10:00:00");
    assert_eq!(read.one("Invoice/DueDate"), "2026-12-31");
    assert_eq!(read.one("Invoice/InvoiceTypeCode"), "01");
    assert_eq!(read.attribute("Invoice/InvoiceTypeCode", "listID"), "0101");
    assert_eq!(read.one("Invoice/Note"), invoice.total_in_words);
    assert_eq!(read.attribute("Invoice/Note", "languageLocaleID"), "1000");
    assert_eq!(read.one("Invoice/DocumentCurrencyCode"), "PEN");
    assert_eq!(
        read.one("Invoice/Signature/DigitalSignatureAttachment/ExternalReference/URI"),
        "#SignatureSP"
    );
    let supplier = "Invoice/AccountingSupplierParty/Party";
    assert_eq!(read.one(&format!("{supplier}/PartyIdentification/ID")), "20100070970");
    assert_eq!(
        read.attribute(&format!("{supplier}/PartyIdentification/ID"), "schemeID"),
        "6"
    );
    assert_eq!(
        read.one(&format!("{supplier}/PartyLegalEntity/RegistrationName")),
        "ACME Telecom S.A.C."
    );
    assert_eq!(
        read.one(&format!(
            "{supplier}/PartyLegalEntity/RegistrationAddress/AddressTypeCode"
        )),
        "0000"
    );
    let customer = "Invoice/AccountingCustomerParty/Party";
    assert_eq!(read.one(&format!("{customer}/PartyIdentification/ID")), "20601234565");
    assert_eq!(
        read.attribute(&format!("{customer}/PartyIdentification/ID"), "schemeID"),
        "6"
    );
    assert_eq!(read.all("Invoice/PaymentTerms/PaymentMeansID"), ["Credito", "Cuota001"]);
    assert_eq!(
        read.sum("Invoice/PaymentTerms/Amount"),
        2 * invoice.totals.total.amount_minor()
    );
    assert_eq!(read.one("Invoice/PaymentTerms/PaymentDueDate"), "2026-12-31");
    assert_eq!(
        read.one("Invoice/TaxTotal/TaxSubtotal/TaxCategory/TaxScheme/ID"),
        "1000"
    );
    assert_eq!(
        read.one("Invoice/TaxTotal/TaxSubtotal/TaxCategory/TaxScheme/Name"),
        "IGV"
    );
    assert_eq!(
        read.one("Invoice/TaxTotal/TaxSubtotal/TaxCategory/TaxScheme/TaxTypeCode"),
        "VAT"
    );
    assert_totals(&read, "Invoice", "InvoiceLine", &invoice.totals);
    assert_eq!(read.all("Invoice/InvoiceLine/ID"), ["1", "2", "3"]);
    assert_eq!(read.all("Invoice/InvoiceLine/InvoicedQuantity"), ["1", "2", "1"]);
    assert_eq!(
        read.attribute("Invoice/InvoiceLine/InvoicedQuantity", "unitCode"),
        "NIU"
    );
    let units: Vec<&str> = read
        .leaves
        .iter()
        .filter(|(p, _, _)| p == "Invoice/InvoiceLine/InvoicedQuantity")
        .flat_map(|(_, a, _)| a.iter().filter(|(n, _)| n == "unitCode").map(|(_, v)| v.as_str()))
        .collect();
    assert_eq!(units, ["NIU", "NIU", "ZZ"]);
    assert_eq!(
        read.all("Invoice/InvoiceLine/TaxTotal/TaxSubtotal/TaxCategory/TaxExemptionReasonCode"),
        ["10"; 3]
    );
    assert_eq!(
        read.all("Invoice/InvoiceLine/TaxTotal/TaxSubtotal/TaxCategory/Percent"),
        ["18.00"; 3]
    );
    assert_eq!(
        read.all("Invoice/InvoiceLine/PricingReference/AlternativeConditionPrice/PriceAmount"),
        ["149.90", "19.99", "15.00"]
    );
    assert_eq!(
        read.all("Invoice/InvoiceLine/PricingReference/AlternativeConditionPrice/PriceTypeCode"),
        ["01"; 3]
    );
    assert_eq!(
        read.all("Invoice/InvoiceLine/Item/SellersItemIdentification/ID"),
        ["FIB-300", "ROUTER"]
    );
    // Unit values without tax: quantity × value is each line's net within a cent.
    let values = read.all("Invoice/InvoiceLine/Price/PriceAmount");
    for ((line, value), quantity) in invoice.lines.iter().zip(&values).zip([1i64, 2, 1]) {
        let (whole, fraction) = value.split_once('.').expect("decimal");
        let scale = 10i64.pow(fraction.len() as u32);
        let exact = whole.parse::<i64>().expect("whole") * scale + fraction.parse::<i64>().expect("fraction");
        let net_scaled = exact * quantity * 100;
        assert!(
            (net_scaled - line.net.amount_minor() * scale).abs() <= scale,
            "{value} × {quantity} vs {}",
            line.net
        );
    }
}

#[test]
fn a_boleta_paid_cash_to_a_dni_buyer() {
    let invoice = boleta();
    let xml = build_invoice(&invoice).expect("xml");
    let read = Read::of(&xml);
    assert_eq!(read.root, UBL_INVOICE);
    assert_eq!(read.one("Invoice/ID"), "B001-00000007");
    assert_eq!(read.one("Invoice/InvoiceTypeCode"), "03");
    let customer = "Invoice/AccountingCustomerParty/Party";
    assert_eq!(read.one(&format!("{customer}/PartyIdentification/ID")), "45678912");
    assert_eq!(
        read.attribute(&format!("{customer}/PartyIdentification/ID"), "schemeID"),
        "1"
    );
    assert_eq!(
        read.one(&format!("{customer}/PartyLegalEntity/RegistrationName")),
        "María Fernanda Quispe Huamán"
    );
    assert!(
        read.all("Invoice/PaymentTerms/PaymentMeansID").is_empty(),
        "boletas carry no payment terms"
    );
    assert_totals(&read, "Invoice", "InvoiceLine", &invoice.totals);
}

#[test]
fn a_factura_paid_cash_says_contado() {
    let mut profile = billing_profile("acme");
    profile.payment_terms_days = 0;
    let mut request = invoice_request("p-cash", "acme");
    request.customer.document = Document::new(DocumentType::Ruc, "20601234565").expect("RUC");
    let invoice = InvoiceDraft::prepare(&request, &profile, NOW)
        .and_then(|d| d.numbered(1))
        .expect("factura");
    let read = Read::of(&build_invoice(&invoice).expect("xml"));
    assert_eq!(read.all("Invoice/PaymentTerms/PaymentMeansID"), ["Contado"]);
    assert!(read.all("Invoice/PaymentTerms/Amount").is_empty());
}

#[test]
fn a_credit_note_for_part_of_a_factura() {
    let note = credit_note();
    let xml = build_credit_note(&note).expect("xml");
    let read = Read::of(&xml);
    assert_eq!(read.root, UBL_CREDIT_NOTE);
    assert_eq!(read.one("CreditNote/ID"), "FC01-00000001");
    assert_eq!(read.one("CreditNote/DiscrepancyResponse/ReferenceID"), "F001-00000042");
    assert_eq!(read.one("CreditNote/DiscrepancyResponse/ResponseCode"), "07");
    assert_eq!(
        read.one("CreditNote/DiscrepancyResponse/Description"),
        "Devolución de 1 router & envío"
    );
    assert_eq!(
        read.one("CreditNote/BillingReference/InvoiceDocumentReference/ID"),
        "F001-00000042"
    );
    assert_eq!(
        read.one("CreditNote/BillingReference/InvoiceDocumentReference/IssueDate"),
        "2026-12-01"
    );
    assert_eq!(
        read.one("CreditNote/BillingReference/InvoiceDocumentReference/DocumentTypeCode"),
        "01"
    );
    assert_eq!(read.one("CreditNote/Note"), note.total_in_words);
    assert!(read.all("CreditNote/PaymentTerms/PaymentMeansID").is_empty());
    assert_eq!(read.all("CreditNote/CreditNoteLine/CreditedQuantity"), ["1", "1"]);
    assert_totals(&read, "CreditNote", "CreditNoteLine", &note.totals);
    assert_eq!(note.totals.total.amount_minor(), 3499);
}

#[test]
fn names_are_escaped_and_read_back_whole() {
    let xml = build_invoice(&factura()).expect("xml");
    assert!(xml.contains("&amp; Hijos &lt;S.A.C.&gt;"), "{xml}");
    let read = Read::of(&xml);
    assert_eq!(
        read.one("Invoice/AccountingCustomerParty/Party/PartyLegalEntity/RegistrationName"),
        AWKWARD_NAME
    );
}

#[test]
fn rate_zero_is_exonerado() {
    let mut profile = billing_profile("acme");
    profile.tax.rate_bp = 0;
    let invoice = InvoiceDraft::prepare(&invoice_request("p-exo", "acme"), &profile, NOW)
        .and_then(|d| d.numbered(8))
        .expect("boleta");
    let read = Read::of(&build_invoice(&invoice).expect("xml"));
    assert_eq!(
        read.one("Invoice/TaxTotal/TaxSubtotal/TaxCategory/TaxScheme/ID"),
        "9997"
    );
    assert_eq!(
        read.all("Invoice/InvoiceLine/TaxTotal/TaxSubtotal/TaxCategory/TaxExemptionReasonCode"),
        ["20"; 3]
    );
    assert_eq!(read.minor("Invoice/TaxTotal/TaxAmount"), 0);
    assert_totals(&read, "Invoice", "InvoiceLine", &invoice.totals);
}

#[test]
fn files_are_named_and_zipped_as_sunat_expects() {
    let stem = file_stem("20100070970", FACTURA, "F001", 42);
    assert_eq!(stem, "20100070970-01-F001-00000042");
    assert_eq!(invoice_type_code(DocumentKind::Boleta), BOLETA);
    let xml = build_invoice(&factura()).expect("xml");
    let zipped = zip_document(&stem, xml.as_bytes()).expect("zip");
    assert_eq!(
        zipped,
        zip_document(&stem, xml.as_bytes()).expect("zip"),
        "deterministic"
    );
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zipped)).expect("a zip");
    assert_eq!(archive.len(), 1);
    let mut file = archive.by_index(0).expect("entry");
    assert_eq!(file.name().expect("name"), "20100070970-01-F001-00000042.xml");
    assert_eq!(file.compression(), zip::CompressionMethod::Deflated);
    let mut back = String::new();
    std::io::Read::read_to_string(&mut file, &mut back).expect("inflate");
    assert_eq!(back, xml);
}

// ---- signatures ----------------------------------------------------------------------------

/// A scratch directory of this test process.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sunat-ubl-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

/// A fresh self-signed certificate and RSA key, made by openssl: (cert path, cert PEM, key PEM).
fn credentials(name: &str) -> (PathBuf, Vec<u8>, Vec<u8>) {
    let cert = scratch().join(format!("{name}.crt.pem"));
    let key = scratch().join(format!("{name}.key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj"])
        .arg("/C=PE/O=ACME Telecom S.A.C./CN=20100070970")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        status.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let cert_pem = std::fs::read(&cert).expect("cert");
    let key_pem = std::fs::read(&key).expect("key");
    (cert, cert_pem, key_pem)
}

fn signer() -> &'static (PathBuf, Signer) {
    static SIGNER: OnceLock<(PathBuf, Signer)> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let (path, cert, key) = credentials("issuer");
        (path, Signer::from_pem(&cert, &key).expect("signer"))
    })
}

/// What xmlsec1 says about `xml`: Ok on a valid signature, Err with its output otherwise.
fn xmlsec1_verify(name: &str, xml: &[u8], cert: &Path) -> Result<(), String> {
    let file = scratch().join(format!("{name}.xml"));
    std::fs::write(&file, xml).expect("write");
    let output = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(cert)
        .args(["--id-attr:Id", "Signature"])
        .arg(&file)
        .output()
        .expect("xmlsec1 runs (the test scripts install it at /usr/bin/xmlsec1)");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn bergshamra_verifies(xml: &[u8], cert_pem: &[u8]) -> bool {
    let mut keys = bergshamra::KeysManager::new();
    keys.add_key(bergshamra::keys::loader::load_x509_cert_pem(cert_pem).expect("cert"));
    let ctx = bergshamra::DsigContext::new(keys);
    bergshamra::verify(&ctx, std::str::from_utf8(xml).expect("utf-8"))
        .map(|r| r.is_valid())
        .unwrap_or(false)
}

/// The document with its PayableAmount raised by one cent.
fn tampered(xml: &[u8], totals: &Totals) -> Vec<u8> {
    let xml = std::str::from_utf8(xml).expect("utf-8");
    let total = totals.total.to_decimal_string();
    let raised = Money::from_minor(totals.total.amount_minor() + 1, totals.total.currency()).to_decimal_string();
    let needle = format!("<cbc:PayableAmount currencyID=\"PEN\">{total}</cbc:PayableAmount>");
    assert!(xml.contains(&needle), "no {needle}");
    xml.replace(
        &needle,
        &format!("<cbc:PayableAmount currencyID=\"PEN\">{raised}</cbc:PayableAmount>"),
    )
    .into_bytes()
}

fn check_signed(name: &str, xml: &str, totals: &Totals) {
    let (cert_path, signer) = signer();
    let signed = sign(xml, signer).expect("signed");
    let cert_pem = std::fs::read(cert_path).expect("cert");
    // The values reported are the ones in the document; a SHA-256 digest is 32 bytes.
    let text = std::str::from_utf8(&signed.xml).expect("utf-8");
    assert!(text.contains(&format!("<ds:DigestValue>{}</ds:DigestValue>", signed.digest_value)));
    assert_eq!(signed.digest_value.len(), 44, "{}", signed.digest_value);
    assert!(!signed.signature_value.is_empty());
    // Read back from its stored bytes, it is the same signed document.
    assert_eq!(crate::read_signed(&signed.xml).expect("read back"), signed);
    assert!(crate::read_signed(b"<Invoice/>").is_err(), "an unsigned document");
    assert!(text.contains("<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" Id=\"SignatureSP\">"));
    assert!(text.contains("<ds:X509Certificate>"));
    // Still the same document around the signature.
    let read = Read::of(text);
    assert_eq!(
        read.leaves
            .iter()
            .filter(|(p, _, _)| !p.contains("/UBLExtensions/"))
            .count(),
        Read::of(xml).leaves.len()
    );

    xmlsec1_verify(name, &signed.xml, cert_path).unwrap_or_else(|e| panic!("xmlsec1 rejects {name}: {e}"));
    assert!(bergshamra_verifies(&signed.xml, &cert_pem));

    let forged = tampered(&signed.xml, totals);
    assert!(
        xmlsec1_verify(&format!("{name}-tampered"), &forged, cert_path).is_err(),
        "xmlsec1 accepted a tampered {name}"
    );
    assert!(!bergshamra_verifies(&forged, &cert_pem));
}

#[test]
fn a_signed_factura_verifies_with_xmlsec1_and_a_tampered_one_does_not() {
    let invoice = factura();
    check_signed("factura", &build_invoice(&invoice).expect("xml"), &invoice.totals);
}

#[test]
fn a_signed_boleta_verifies_with_xmlsec1_and_a_tampered_one_does_not() {
    let invoice = boleta();
    check_signed("boleta", &build_invoice(&invoice).expect("xml"), &invoice.totals);
}

#[test]
fn a_signed_credit_note_verifies_with_xmlsec1_and_a_tampered_one_does_not() {
    let note = credit_note();
    check_signed("credit-note", &build_credit_note(&note).expect("xml"), &note.totals);
}

#[test]
fn signing_refuses_what_it_cannot_place_and_mismatched_credentials() {
    let (_, signer) = signer();
    assert!(matches!(sign("<Invoice/>", signer), Err(UblError::NotSignable(_))));
    assert!(matches!(sign("<Invoice>", signer), Err(UblError::NotSignable(_))));
    let signed = sign(&build_invoice(&boleta()).expect("xml"), signer).expect("signed");
    let twice = sign(std::str::from_utf8(&signed.xml).expect("utf-8"), signer);
    assert!(matches!(twice, Err(UblError::NotSignable(_))), "already signed");

    let (_, cert_a, _) = credentials("a");
    let (_, _, key_b) = credentials("b");
    assert!(matches!(
        Signer::from_pem(&cert_a, &key_b),
        Err(UblError::Credentials(_))
    ));
    assert!(matches!(
        Signer::from_pem(b"junk", &key_b),
        Err(UblError::Credentials(_))
    ));
}

#[test]
fn a_pkcs1_key_signs_as_its_pkcs8_form_does_and_an_ec_key_is_refused() {
    let (cert_path, cert, _) = credentials("pkcs1");
    let key_path = scratch().join("pkcs1.key.pem");
    let pkcs1 = Command::new("openssl")
        .args(["pkey", "-traditional", "-in"])
        .arg(&key_path)
        .output()
        .expect("openssl runs");
    assert!(pkcs1.status.success(), "{}", String::from_utf8_lossy(&pkcs1.stderr));
    assert!(String::from_utf8_lossy(&pkcs1.stdout).starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let signer = Signer::from_pem(&cert, &pkcs1.stdout).expect("a PKCS#1 key");
    let signed = sign(&build_invoice(&factura()).expect("xml"), &signer).expect("signed");
    xmlsec1_verify("pkcs1", &signed.xml, &cert_path).unwrap_or_else(|e| panic!("xmlsec1 rejects it: {e}"));

    let ec = Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
        .output()
        .expect("openssl runs");
    assert!(ec.status.success(), "{}", String::from_utf8_lossy(&ec.stderr));
    assert!(matches!(
        Signer::from_pem(&cert, &ec.stdout),
        Err(UblError::Credentials(_))
    ));
}
