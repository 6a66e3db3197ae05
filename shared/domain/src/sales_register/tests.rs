use time::macros::{date, datetime};

use super::*;
use crate::credit_note::{CreditNoteDraft, CreditNoteReason};
use crate::identity::{Document, DocumentType};
use crate::invoice::InvoiceDraft;
use crate::testing::{billing_profile, invoice_request};

const NOV: &str = "2026-11";

/// Boleta `B001-{number}` of acme issued on `at` (204.88 with IGV: 173.63 + 31.25).
fn boleta(number: u64, at: time::OffsetDateTime) -> Invoice {
    InvoiceDraft::prepare(
        &invoice_request(&format!("p-{number}"), "acme"),
        &billing_profile("acme"),
        at,
    )
    .and_then(|d| d.numbered(number))
    .expect("invoice")
}

/// A factura to a company whose name has a comma, quotes and accents.
fn factura(number: u64, at: time::OffsetDateTime) -> Invoice {
    let mut request = invoice_request(&format!("f-{number}"), "acme");
    request.customer.document = Document::new(DocumentType::Ruc, "20100070970").expect("ruc");
    request.customer.full_name = "Distribuidora \"El Rápido\", Señor de Sipán S.A.C.".into();
    InvoiceDraft::prepare(&request, &billing_profile("acme"), at)
        .and_then(|d| d.numbered(number))
        .expect("factura")
}

/// Credit note BC01-{number}: one router (19.99: 16.94 + 3.05) of `invoice`, on `on`.
fn note(invoice: &Invoice, number: u64, on: Date) -> CreditNote {
    CreditNoteDraft::by_lines(
        invoice,
        &[(1, 1)],
        "BC01",
        CreditNoteReason::ItemReturn,
        "Devolución de un router",
        on,
        datetime!(2026-11-20 15:00 UTC),
    )
    .and_then(|d| d.numbered(number))
    .expect("note")
}

fn period() -> Period {
    Period::parse(NOV).expect("period")
}

fn accepted(invoice: &Invoice) -> RegisterDocument {
    RegisterDocument::invoice(invoice, ElectronicStatus::Accepted)
}

#[test]
fn a_month_is_yyyy_mm_and_nothing_else() {
    let p = period();
    assert_eq!(p.to_string(), "2026-11");
    assert_eq!(p.compact(), "202611");
    assert_eq!(
        (p.first_day(), p.last_day()),
        (date!(2026 - 11 - 01), date!(2026 - 11 - 30))
    );
    let feb = Period::parse("2028-02").expect("leap February");
    assert_eq!(feb.last_day(), date!(2028 - 02 - 29));
    assert!(p.contains(date!(2026 - 11 - 30)) && !p.contains(date!(2026 - 12 - 01)));
    for bad in [
        "2026-13",
        "2026-00",
        "2026-1",
        "26-11",
        "2026-11-01",
        " 2026-11",
        "2026/11",
        "",
        "abcd-ef",
        "1899-12",
    ] {
        assert_eq!(Period::parse(bad), Err(RegisterError::BadMonth(bad.into())), "{bad:?}");
    }
    assert!(Period::parse("2026-10").expect("oct") < p);
}

#[test]
fn a_note_is_negative_and_names_the_document_it_corrects() {
    let invoice = boleta(7, datetime!(2026-10-30 15:00 UTC));
    let n = note(&invoice, 3, date!(2026 - 11 - 02));
    let register = SalesRegister::build(
        period(),
        [
            accepted(&invoice), // October's: not this register's
            RegisterDocument::credit_note(&n, ElectronicStatus::Observed).expect("note row"),
        ],
    );
    let records = register.records().expect("records");
    assert_eq!(records.len(), 1);
    let row = &records[0];
    assert_eq!(
        row[..10],
        [
            "202611",
            "02/11/2026",
            "",
            "07",
            "BC01",
            "3",
            "1",
            "45678912",
            "María Fernanda Quispe Huamán",
            "PEN"
        ]
    );
    assert_eq!(row[10..14], ["-16.94", "0.00", "-3.05", "-19.99"]);
    assert_eq!(row[14..], ["30/10/2026", "03", "B001", "7", "OBSERVED"]);
    let totals = register.totals().expect("totals");
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].total.amount_minor(), -1999);
    assert_eq!(register.counts().credit_notes, 1);
}

#[test]
fn only_documents_sunat_accepted_are_rows_the_others_are_listed_apart() {
    let first = boleta(1, datetime!(2026-11-03 15:00 UTC));
    let rejected = boleta(2, datetime!(2026-11-04 15:00 UTC));
    let pending = boleta(3, datetime!(2026-11-05 15:00 UTC));
    let company = factura(1, datetime!(2026-11-04 15:00 UTC));
    let register = SalesRegister::build(
        period(),
        [
            RegisterDocument::invoice(&pending, ElectronicStatus::PendingSubmission),
            accepted(&company),
            RegisterDocument::invoice(&rejected, ElectronicStatus::Rejected),
            accepted(&first),
            RegisterDocument::credit_note(&note(&first, 1, date!(2026 - 11 - 04)), ElectronicStatus::Accepted)
                .expect("note"),
        ],
    );
    let ids: Vec<String> = register.rows.iter().map(RegisterDocument::document_id).collect();
    // By date, then factura before boleta before note.
    assert_eq!(ids, ["B001-00000001", "F001-00000001", "BC01-00000001"]);
    let excluded: Vec<(&str, ElectronicStatus)> = register
        .excluded
        .iter()
        .map(|e| (e.document_id.as_str(), e.electronic_status))
        .collect();
    assert_eq!(
        excluded,
        [
            ("B001-00000002", ElectronicStatus::Rejected),
            ("B001-00000003", ElectronicStatus::PendingSubmission)
        ]
    );
    assert_eq!(
        register.counts(),
        RowCounts {
            facturas: 1,
            boletas: 1,
            credit_notes: 1,
            total: 3
        }
    );
    // 2 × 204.88 − 19.99, to the cent; and per row base + exempt + IGV = total.
    let totals = register.totals().expect("totals");
    let minor = |m: Money| m.amount_minor();
    assert_eq!(
        (minor(totals[0].taxable), minor(totals[0].igv), minor(totals[0].total)),
        (2 * 17363 - 1694, 2 * 3125 - 305, 2 * 20488 - 1999)
    );
    for row in register.records().expect("records") {
        let cents = |s: &str| Money::parse(s, totals[0].currency).expect(s).amount_minor();
        assert_eq!(
            cents(&row[10]) + cents(&row[11]) + cents(&row[12]),
            cents(&row[13]),
            "{row:?}"
        );
    }
}

#[test]
fn the_file_opens_in_excel_and_reads_back_field_for_field() {
    let company = factura(12, datetime!(2026-11-04 15:00 UTC));
    let register = SalesRegister::build(period(), [accepted(&company)]);
    let bytes = register.to_csv().expect("csv");
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "a BOM, for Excel");
    let text = String::from_utf8(bytes).expect("utf-8");
    let mut lines = text.trim_start_matches('\u{feff}').split("\r\n");
    assert_eq!(lines.next(), Some(CSV_HEADER.join(",").as_str()));
    assert_eq!(
        lines.next(),
        Some(
            "202611,04/11/2026,04/12/2026,01,F001,12,6,20100070970,\
             \"Distribuidora \"\"El Rápido\"\", Señor de Sipán S.A.C.\",PEN,173.63,0.00,31.25,204.88,,,,,ACCEPTED"
        )
    );
    assert_eq!(lines.collect::<Vec<_>>(), [""], "CRLF after the last record too");
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("parses");
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0][8], "Distribuidora \"El Rápido\", Señor de Sipán S.A.C.");
}

#[test]
fn an_exempt_sale_is_not_taxable_base() {
    let mut invoice = boleta(1, datetime!(2026-11-03 15:00 UTC));
    invoice.tax.rate_bp = 0;
    invoice.totals.subtotal = invoice.totals.total;
    invoice.totals.tax = Money::zero(invoice.currency);
    let register = SalesRegister::build(period(), [accepted(&invoice)]);
    let records = register.records().expect("records");
    assert_eq!(records[0][10..14], ["0.00", "204.88", "0.00", "204.88"]);
}

#[test]
fn an_empty_month_is_a_header() {
    let register = SalesRegister::build(period(), []);
    assert_eq!(register.counts().total, 0);
    assert!(register.totals().expect("totals").is_empty());
    let text = String::from_utf8(register.to_csv().expect("csv")).expect("utf-8");
    assert_eq!(text, format!("\u{feff}{}\r\n", CSV_HEADER.join(",")));
}

#[test]
fn a_note_with_an_unreadable_reference_is_an_error_not_a_row() {
    let invoice = boleta(7, datetime!(2026-11-03 15:00 UTC));
    let mut n = note(&invoice, 1, date!(2026 - 11 - 04));
    n.invoice_id = "B001".into();
    assert!(matches!(
        RegisterDocument::credit_note(&n, ElectronicStatus::Accepted),
        Err(RegisterError::BadReference { .. })
    ));
    assert_eq!(file_name("acme", period()), "registro-ventas-acme-2026-11.csv");
}

#[test]
fn a_name_excel_would_run_as_a_formula_is_shown_as_text() {
    assert_eq!(
        spreadsheet_text("=HYPERLINK(\"http://x\")"),
        "'=HYPERLINK(\"http://x\")"
    );
    assert_eq!(spreadsheet_text("@SUM(A1)"), "'@SUM(A1)");
    assert_eq!(spreadsheet_text("María Quispe"), "María Quispe");
    let mut invoice = factura(3, datetime!(2026-11-04 15:00 UTC));
    invoice.buyer.name = "+51 Comercial".into();
    let records = SalesRegister::build(period(), [accepted(&invoice)])
        .records()
        .expect("records");
    assert_eq!(records[0][8], "'+51 Comercial");
    assert_eq!(records[0][13], "204.88", "amounts are numbers, never prefixed");
}
