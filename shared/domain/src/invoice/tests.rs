use proptest::prelude::*;
use time::macros::{date, datetime};

use super::*;
use crate::testing::{billing_profile, invoice_request};

fn pen() -> Currency {
    Currency::parse("PEN").expect("PEN")
}

fn charge(minor: i64, quantity: u32) -> Charge {
    Charge {
        kind: LineKind::Item,
        sku: None,
        description: "x".into(),
        quantity,
        unit_price: Money::from_minor(minor, pen()),
    }
}

fn tax(rate_bp: u32, prices_include_tax: bool) -> TaxConfig {
    TaxConfig {
        name: "IGV".into(),
        rate_bp,
        prices_include_tax,
    }
}

fn minor(lines: &[InvoiceLine], f: impl Fn(&InvoiceLine) -> Money) -> i64 {
    lines.iter().map(|l| f(l).amount_minor()).sum()
}

/// The invariants every invoice keeps: lines add up to the totals, and totals add up.
fn assert_adds_up(lines: &[InvoiceLine], totals: &Totals) {
    assert_eq!(
        minor(lines, |l| l.net),
        totals.subtotal.amount_minor(),
        "Σ net = subtotal"
    );
    assert_eq!(minor(lines, |l| l.tax), totals.tax.amount_minor(), "Σ tax = tax");
    assert_eq!(
        minor(lines, |l| l.total),
        totals.total.amount_minor(),
        "Σ total = total"
    );
    assert_eq!(
        totals.subtotal.amount_minor() + totals.tax.amount_minor(),
        totals.total.amount_minor()
    );
    for line in lines {
        assert_eq!(
            line.net.amount_minor() + line.tax.amount_minor(),
            line.total.amount_minor()
        );
    }
}

#[test]
fn tax_inclusive_118_is_100_plus_18() {
    let (lines, totals) = compute(&[charge(11800, 1)], &tax(1800, true), pen()).unwrap();
    assert_eq!(
        (
            totals.subtotal.amount_minor(),
            totals.tax.amount_minor(),
            totals.total.amount_minor()
        ),
        (10000, 1800, 11800)
    );
    assert_adds_up(&lines, &totals);
}

#[test]
fn tax_exclusive_100_becomes_118() {
    let (lines, totals) = compute(&[charge(10000, 1)], &tax(1800, false), pen()).unwrap();
    assert_eq!(
        (
            totals.subtotal.amount_minor(),
            totals.tax.amount_minor(),
            totals.total.amount_minor()
        ),
        (10000, 1800, 11800)
    );
    assert_eq!(lines[0].total.amount_minor(), 11800);
}

#[test]
fn the_fixture_sale_is_taxed_once_on_the_document() {
    // 149.90 + 2 × 19.99 + 15.00 = 204.88 with IGV included: net 204.88 / 1.18 = 173.6271… → 173.63.
    let (lines, totals) = compute(
        &[
            charge(14990, 1),
            charge(1999, 2),
            Charge {
                kind: LineKind::Shipping,
                ..charge(1500, 1)
            },
        ],
        &TaxConfig::default(),
        pen(),
    )
    .unwrap();
    assert_eq!(totals.total.amount_minor(), 20488);
    assert_eq!(totals.subtotal.amount_minor(), 17363);
    assert_eq!(totals.tax.amount_minor(), 3125);
    // Exact line taxes in céntimos 2286.61, 609.86 and 228.81: the floors sum to 3123, and the
    // two céntimos left go to the largest remainders, .86 (line 2) and .81 (line 3).
    assert_eq!(
        lines.iter().map(|l| l.tax.amount_minor()).collect::<Vec<_>>(),
        vec![2286, 610, 229]
    );
    assert_adds_up(&lines, &totals);
}

#[test]
fn half_a_cent_rounds_up() {
    // 0.25 × 18% = 4.5 céntimos → 5.
    let (_, totals) = compute(&[charge(25, 1)], &tax(1800, false), pen()).unwrap();
    assert_eq!(totals.tax.amount_minor(), 5);
    // 0.15 × 10% = 1.5 → 2.
    let (_, totals) = compute(&[charge(15, 1)], &tax(1000, false), pen()).unwrap();
    assert_eq!(totals.tax.amount_minor(), 2);
}

#[test]
fn rounding_once_beats_rounding_every_line() {
    // 100 lines of 0.03 without tax: each line's tax is 0.54 céntimos. Rounding per line would
    // charge 100 céntimos; the document's exact tax is 54.
    let charges: Vec<Charge> = (0..100).map(|_| charge(3, 1)).collect();
    let (lines, totals) = compute(&charges, &tax(1800, false), pen()).unwrap();
    assert_eq!(totals.tax.amount_minor(), 54);
    assert_adds_up(&lines, &totals);
    // Equal remainders: the earlier lines take the cents.
    assert!(lines[..54].iter().all(|l| l.tax.amount_minor() == 1));
    assert!(lines[54..].iter().all(|l| l.tax.amount_minor() == 0));
}

#[test]
fn many_lines_of_odd_prices_add_up_to_the_cent() {
    let prices = [1, 7, 13, 99, 101, 333, 1999, 4999, 12345, 99999, 3, 17];
    let charges: Vec<Charge> = (0..97)
        .map(|i| charge(prices[i % prices.len()], 1 + (i as u32 % 7)))
        .collect();
    for inclusive in [true, false] {
        let (lines, totals) = compute(&charges, &tax(1800, inclusive), pen()).unwrap();
        assert_adds_up(&lines, &totals);
    }
}

#[test]
fn zero_shipping_is_a_zero_line() {
    let shipping = Charge {
        kind: LineKind::Shipping,
        ..charge(0, 1)
    };
    let (lines, totals) = compute(&[charge(5990, 1), shipping], &TaxConfig::default(), pen()).unwrap();
    assert_eq!(lines[1].kind, LineKind::Shipping);
    assert_eq!(
        (
            lines[1].net.amount_minor(),
            lines[1].tax.amount_minor(),
            lines[1].total.amount_minor()
        ),
        (0, 0, 0)
    );
    assert_eq!(totals.total.amount_minor(), 5990);
    assert_adds_up(&lines, &totals);
}

#[test]
fn exempt_sales_carry_no_tax() {
    let (lines, totals) = compute(&[charge(1234, 3)], &tax(0, true), pen()).unwrap();
    assert_eq!(totals.tax.amount_minor(), 0);
    assert_eq!(lines[0].net.amount_minor(), 3702);
}

#[test]
fn currency_is_kept_and_never_mixed() {
    let usd = Currency::parse("USD").unwrap();
    let (lines, totals) = compute(
        &[Charge {
            unit_price: Money::from_minor(999, usd),
            ..charge(0, 1)
        }],
        &TaxConfig::default(),
        usd,
    )
    .unwrap();
    assert_eq!(totals.total.currency(), usd);
    assert_eq!(lines[0].tax.currency(), usd);
    let mixed = compute(&[charge(100, 1)], &TaxConfig::default(), usd);
    assert!(matches!(mixed, Err(InvoiceError::Invalid(_))));
}

#[test]
fn refuses_what_cannot_be_an_invoice() {
    assert!(matches!(
        compute(&[], &TaxConfig::default(), pen()),
        Err(InvoiceError::Invalid(_))
    ));
    assert!(matches!(
        compute(&[charge(-100, 1)], &TaxConfig::default(), pen()),
        Err(InvoiceError::Invalid(_))
    ));
    assert!(matches!(
        compute(&[charge(100, 0)], &TaxConfig::default(), pen()),
        Err(InvoiceError::Invalid(_))
    ));
    assert!(matches!(
        compute(&[charge(100, 1)], &tax(10_001, true), pen()),
        Err(InvoiceError::Config(_))
    ));
    // Far beyond any real sale, but must be an error, not an overflow.
    assert!(compute(&[charge(i64::MAX, u32::MAX)], &tax(1800, false), pen()).is_err());
}

proptest! {
    #[test]
    fn totals_always_add_up(
        prices in prop::collection::vec((0i64..10_000_000, 1u32..50), 1..60),
        rate in 0u32..=10_000,
        inclusive: bool,
    ) {
        let charges: Vec<Charge> = prices.iter().map(|&(p, q)| charge(p, q)).collect();
        let (lines, totals) = compute(&charges, &tax(rate, inclusive), pen()).unwrap();
        assert_adds_up(&lines, &totals);
        // The document's tax is the exact tax rounded to the nearest cent.
        let quoted: i128 = prices.iter().map(|&(p, q)| i128::from(p) * i128::from(q)).sum();
        let (num, den) = if inclusive { (quoted * i128::from(rate), 10_000 + i128::from(rate)) } else { (quoted * i128::from(rate), 10_000) };
        let doubled_error = (2 * i128::from(totals.tax.amount_minor()) * den - 2 * num).abs();
        prop_assert!(doubled_error <= den, "tax {} vs exact {num}/{den}", totals.tax.amount_minor());
        // And every line is within a cent of its exact share.
        for (line, &(p, q)) in lines.iter().zip(&prices) {
            let exact_num = i128::from(p) * i128::from(q) * i128::from(rate);
            let t = i128::from(line.tax.amount_minor());
            prop_assert!(t * den <= exact_num + den && t * den >= exact_num - den);
        }
    }
}

#[test]
fn a_consumer_gets_a_boleta_dated_in_lima() {
    let request = invoice_request("P-1", "acme");
    // 03:00 UTC on the 24th is still the 23rd in Lima.
    let draft = InvoiceDraft::prepare(&request, &billing_profile("acme"), datetime!(2026-11-24 03:00 UTC)).unwrap();
    assert_eq!(draft.series(), "B001");
    let invoice = draft.numbered(42).unwrap();
    assert_eq!(invoice.kind, DocumentKind::Boleta);
    assert_eq!(invoice.series, "B001");
    assert_eq!(invoice.number, 42);
    assert_eq!(invoice.issue_date, date!(2026 - 11 - 23));
    assert_eq!(invoice.due_date, date!(2026 - 12 - 23));
    assert_eq!(invoice.lines.len(), 3);
    assert_eq!(invoice.lines[2].kind, LineKind::Shipping);
    assert_eq!(invoice.totals.total.amount_minor(), 20488);
    assert_eq!(invoice.total_in_words, "DOSCIENTOS CUATRO CON 88/100 SOLES");
    assert_eq!(invoice.buyer.document.number(), "45678912");
    assert_eq!(invoice.buyer.email.as_deref(), Some("maria.quispe@example.com"));
    assert_eq!(invoice.seller.document.number(), "20100070970");
    assert_eq!(invoice.invoice_id, "B001-00000042");
    assert_eq!(invoice.status, InvoiceStatus::Issued);
    assert_eq!(invoice.pdf_key(), "invoices/acme/B001/B001-00000042.pdf");
}

#[test]
fn a_company_gets_a_factura() {
    let mut request = invoice_request("P-2", "acme");
    request.customer.document = Document::new(DocumentType::Ruc, "20100070970").unwrap();
    let draft = InvoiceDraft::prepare(&request, &billing_profile("acme"), datetime!(2026-11-24 15:00 UTC)).unwrap();
    let invoice = draft.numbered(1).unwrap();
    assert_eq!(invoice.kind, DocumentKind::Factura);
    assert_eq!(invoice.invoice_id, "F001-00000001");
}

#[test]
fn numbers_stay_within_the_series() {
    let draft = InvoiceDraft::prepare(
        &invoice_request("P-3", "acme"),
        &billing_profile("acme"),
        datetime!(2026-11-24 15:00 UTC),
    )
    .unwrap();
    assert!(matches!(draft.numbered(0), Err(InvoiceError::SeriesExhausted(_))));
    assert!(matches!(
        draft.numbered(MAX_NUMBER + 1),
        Err(InvoiceError::SeriesExhausted(_))
    ));
    assert_eq!(draft.numbered(MAX_NUMBER).unwrap().invoice_id, "B001-99999999");
}

#[test]
fn inconsistent_requests_and_configurations_are_refused() {
    let profile = billing_profile("acme");
    let now = datetime!(2026-11-24 15:00 UTC);
    let mut wrong_total = invoice_request("P-4", "acme");
    wrong_total.items[1].line_total = Money::from_minor(1, pen());
    assert!(matches!(
        InvoiceDraft::prepare(&wrong_total, &profile, now),
        Err(InvoiceError::Invalid(_))
    ));
    // A request without a readable customer never reaches `prepare`: the typed event refuses it.
    let mut no_customer = serde_json::to_value(invoice_request("P-4", "acme")).unwrap();
    no_customer["customer"] = serde_json::json!({"name": "?"});
    assert!(serde_json::from_value::<InvoiceRequested>(no_customer).is_err());
    assert!(matches!(
        InvoiceDraft::prepare(&invoice_request("P-4", "other"), &profile, now),
        Err(InvoiceError::Config(_))
    ));
    let mut bad_series = profile.clone();
    bad_series.boleta_series = "F001".into();
    assert!(matches!(
        InvoiceDraft::prepare(&invoice_request("P-4", "acme"), &bad_series, now),
        Err(InvoiceError::Config(_))
    ));
}

#[test]
fn a_number_is_never_dated_before_the_previous_one() {
    let draft = InvoiceDraft::prepare(
        &invoice_request("P-1", "acme"),
        &billing_profile("acme"),
        datetime!(2026-11-24 23:59:59 -5),
    )
    .unwrap();
    let plain = draft.numbered(7).unwrap();
    assert_eq!(
        (plain.issue_date, plain.due_date),
        (date!(2026 - 11 - 24), date!(2026 - 12 - 24))
    );
    // Number 6 went out dated the 25th (its worker's clock had crossed midnight): 7 follows it.
    let after = draft.numbered_not_before(7, Some(date!(2026 - 11 - 25))).unwrap();
    assert_eq!(
        (after.issue_date, after.due_date),
        (date!(2026 - 11 - 25), date!(2026 - 12 - 25))
    );
    assert_eq!(after.invoice_id, plain.invoice_id);
    // An earlier floor changes nothing.
    assert_eq!(
        draft.numbered_not_before(7, Some(date!(2026 - 11 - 20))).unwrap(),
        plain
    );
}

fn call_center() -> BillingProfile {
    BillingProfile {
        legal_name: "Contacto Perú S.A.C.".into(),
        factura_series: "F900".into(),
        tax: tax(1800, false),
        ..billing_profile("callcenter")
    }
}

#[test]
fn a_billing_run_is_the_call_centers_factura_to_the_company_with_igv_on_top() {
    let request = crate::testing::service_invoice_request("callcenter", "acme");
    let buyer = billing_profile("acme");
    let invoice = InvoiceDraft::for_service(&request, &call_center(), &buyer, datetime!(2026-11-01 09:00 -5))
        .unwrap()
        .numbered(1)
        .unwrap();
    assert_eq!(
        (invoice.invoice_id.as_str(), invoice.kind, invoice.client_id.as_str()),
        ("F900-00000001", DocumentKind::Factura, "callcenter")
    );
    // 120 × 2.50 + 10 × 35.00 = 650.00 net; IGV 18 % on top.
    assert_eq!(
        (
            invoice.totals.subtotal.amount_minor(),
            invoice.totals.tax.amount_minor(),
            invoice.totals.total.amount_minor()
        ),
        (65_000, 11_700, 76_700)
    );
    assert_adds_up(&invoice.lines, &invoice.totals);
    assert_eq!(invoice.buyer.email.as_deref(), Some(buyer.finance_email.as_str()));
    assert_eq!(invoice.buyer.document, buyer.ruc);
    assert_eq!(invoice.seller.name, "Contacto Perú S.A.C.");
    assert_eq!(invoice.due_date, date!(2026 - 12 - 01));
    assert!(invoice.sale_id.is_none() && invoice.shipment_id.is_none());
    let run = invoice.billing_run.as_ref().unwrap();
    assert_eq!((run.run_id.as_str(), run.client_id.as_str()), ("acme-2026-10", "acme"));
    assert_eq!(invoice.reference(), "Servicios de 2026-10 — liquidación acme-2026-10");
}

#[test]
fn a_billing_run_needs_the_profiles_it_names_lines_and_a_ruc_buyer() {
    let request = crate::testing::service_invoice_request("callcenter", "acme");
    let now = datetime!(2026-11-01 09:00 -5);
    let wrong = InvoiceDraft::for_service(&request, &call_center(), &billing_profile("globex"), now);
    assert!(matches!(wrong, Err(InvoiceError::Config(_))));
    let empty = ServiceInvoiceRequested {
        lines: Vec::new(),
        ..request.clone()
    };
    let none = InvoiceDraft::for_service(&empty, &call_center(), &billing_profile("acme"), now);
    assert!(matches!(none, Err(InvoiceError::Invalid(_))));
}

#[test]
fn a_sale_invoice_stored_before_billing_runs_reads_and_round_trips() {
    let invoice = InvoiceDraft::prepare(
        &invoice_request("P-1", "acme"),
        &billing_profile("acme"),
        datetime!(2026-11-24 10:00 -5),
    )
    .unwrap()
    .numbered(3)
    .unwrap();
    let json = serde_json::to_value(&invoice).unwrap();
    assert!(
        json.get("billing_run").is_none(),
        "a sale's invoice is stored as before"
    );
    assert!(json["sale_id"].is_string() && json["tracking_reference"].is_string());
    let back: Invoice = serde_json::from_value(json).unwrap();
    assert_eq!(back, invoice);
    assert!(invoice.reference().starts_with("Venta: S-"));
}
