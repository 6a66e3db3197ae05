//! Renders invoices and reads the PDFs back with lopdf: what is checked is what a reader
//! would see.

use std::path::{Path, PathBuf};
use std::process::Command;

use backoffice_domain::identity::{DocumentType, ruc_check_digit};
use backoffice_domain::invoice::{Invoice, InvoiceDraft};
use backoffice_domain::testing::{billing_profile, invoice_request};
use lopdf::content::Content;
use lopdf::{Document, Object};
use time::macros::datetime;

use super::*;

fn fixture() -> Invoice {
    InvoiceDraft::prepare(
        &invoice_request("P-1", "acme"),
        &billing_profile("acme"),
        datetime!(2026-11-24 15:00 UTC),
    )
    .and_then(|draft| draft.numbered(42))
    .unwrap()
}

/// A SHA-1 `DigestValue` as SUNAT's signatures carry (28 base64 characters; SHA-1 of "F001-00000042").
const DIGEST: &str = "23SdpBwgx4HTBmro/lfo8Ic1I7Q=";
/// SHA-256 (44 characters): the code grows a version and still fits.
const LONG_DIGEST: &str = "ZOjnHcuFpXbUkFS6YR0seQ0vl8/uA5/9+l0VeeXMxik=";

fn accepted(digest_value: &str) -> Acceptance<'_> {
    Acceptance {
        digest_value,
        observed: false,
    }
}

/// The fixture sold to a company: a factura, the buyer identified by a RUC.
fn factura() -> Invoice {
    let mut invoice = fixture();
    let first_ten = *b"2060123456";
    let check = ruc_check_digit(&first_ten.map(|d| d - b'0'));
    let ruc = format!("{}{check}", std::str::from_utf8(&first_ten).unwrap());
    invoice.buyer.document = backoffice_domain::identity::Document::new(DocumentType::Ruc, &ruc).unwrap();
    invoice.buyer.name = "Distribuidora Andina S.A.C.".into();
    invoice.kind = DocumentKind::for_buyer(&invoice.buyer.document);
    assert_eq!(invoice.kind, DocumentKind::Factura);
    invoice.series = "F001".into();
    invoice.invoice_id = "F001-00000042".into();
    invoice
}

fn load(pdf: &[u8]) -> Document {
    assert!(pdf.starts_with(b"%PDF-"), "no PDF header");
    assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"), "no %%EOF trailer");
    Document::load_mem(pdf).unwrap()
}

/// Text of each page, as lopdf extracts it.
fn page_texts(doc: &Document) -> Vec<String> {
    doc.get_pages()
        .keys()
        .map(|&number| doc.extract_text(&[number]).unwrap())
        .collect()
}

/// Text of each page decoded by hand from the content streams (`Tj` strings through the
/// WinAnsi table), independent of lopdf's text extraction.
fn shown_strings(doc: &Document) -> Vec<Vec<String>> {
    doc.get_pages()
        .values()
        .map(|&page_id| {
            let content = Content::decode(&doc.get_page_content(page_id)).unwrap();
            content
                .operations
                .iter()
                .filter(|op| op.operator == "Tj")
                .map(|op| match op.operands.first() {
                    Some(Object::String(bytes, _)) => winansi::decode(bytes),
                    other => panic!("Tj without a string: {other:?}"),
                })
                .collect()
        })
        .collect()
}

/// Everything drawn on every page stays inside the printable area: text measured with the
/// fonts' metrics between the margins and above the footer, rules and boxes too.
fn assert_within_page(doc: &Document) {
    for (page_number, page_id) in doc.get_pages() {
        let content = Content::decode(&doc.get_page_content(page_id)).unwrap();
        let number = |o: &Object| o.as_float().unwrap();
        let (mut font, mut size, mut x, mut y) = (Font::Regular, 0.0f32, 0.0f32, 0.0f32);
        for op in &content.operations {
            match op.operator.as_str() {
                "Tf" => {
                    font = match op.operands[0].as_name().unwrap() {
                        b"F1" => Font::Regular,
                        b"F2" => Font::Bold,
                        other => panic!("unknown font {other:?}"),
                    };
                    size = number(&op.operands[1]);
                }
                "Td" => (x, y) = (number(&op.operands[0]), number(&op.operands[1])),
                "Tj" => {
                    let Object::String(bytes, _) = &op.operands[0] else {
                        panic!("Tj without a string")
                    };
                    let width = font.width(bytes, size);
                    let shown = winansi::decode(bytes);
                    assert!(
                        x >= LEFT - 0.01 && x + width <= RIGHT + 0.01,
                        "page {page_number}: {shown:?} at x {x}..{}",
                        x + width
                    );
                    assert!(
                        y <= TOP && (y >= BODY_BOTTOM || y == FOOTER_BASELINE),
                        "page {page_number}: {shown:?} at y {y}"
                    );
                    assert!(size >= 4.0, "page {page_number}: {shown:?} at {size} pt");
                }
                "m" | "l" => {
                    let (px, py) = (number(&op.operands[0]), number(&op.operands[1]));
                    assert!(
                        (LEFT - 0.01..=RIGHT + 0.01).contains(&px) && (FOOTER_RULE - 0.01..=TOP + 0.01).contains(&py),
                        "page {page_number}: line to ({px}, {py})"
                    );
                }
                "re" => {
                    let [rx, ry, w, h] = [0, 1, 2, 3].map(|i| number(&op.operands[i]));
                    assert!(
                        rx >= LEFT - 0.01 && rx + w <= RIGHT + 0.01 && ry >= BODY_BOTTOM - 0.01 && ry + h <= TOP + 0.01,
                        "page {page_number}: box {rx} {ry} {w} {h}"
                    );
                }
                _ => {}
            }
        }
    }
}

#[test]
fn renders_the_fixture_invoice() {
    let invoice = fixture();
    let pdf = render(&invoice, Some(&accepted(DIGEST))).unwrap();
    let doc = load(&pdf);
    assert_eq!(doc.get_pages().len(), 1);
    let text = page_texts(&doc).concat();
    // The references line is long enough to wrap: each part is checked on its own.
    let (sale, presale, shipment) = (
        invoice.sale_id.clone().unwrap(),
        invoice.presale_id.clone().unwrap(),
        invoice.shipment_id.clone().unwrap(),
    );
    let references = [
        format!("Venta: {sale}"),
        format!("Pre-venta: {presale}"),
        "Envío:".to_owned(),
        shipment.to_string(),
        format!("Seguimiento: {}", invoice.tracking_reference.clone().unwrap()),
    ];
    assert!(sale.as_str().starts_with("S-") && shipment.as_str().starts_with("SH-S-"));
    for expected in &references {
        assert!(text.contains(expected.as_str()), "{expected:?} missing from:\n{text}");
    }
    for expected in [
        "B001-00000042",
        "BOLETA DE VENTA ELECTRÓNICA",
        "RUC 20100070970",
        "ACME Telecom S.A.C.",
        "Av. Javier Prado Este 1234, San Isidro, Lima",
        "María Fernanda Quispe Huamán",
        "DNI 45678912",
        "Jr. Los Pinos 456, Miraflores, Lima, Lima",
        "maria.quispe@example.com",
        "Fecha de emisión: 2026-11-24",
        "Fecha de vencimiento: 2026-12-24",
        "Moneda: PEN",
        "Descripción",
        "Fibra 300 Mbps - instalación",
        "Envío OLVA (LIMA_METRO, 1 bulto(s))",
        "149.90",
        "39.98",
        "Op. gravadas",
        "PEN 173.63",
        "IGV 18%",
        "PEN 31.25",
        "Importe total",
        "PEN 204.88",
        "SON: DOSCIENTOS CUATRO CON 88/100 SOLES",
        "Los precios unitarios incluyen el IGV (18%).",
        "Representación impresa de la BOLETA DE VENTA ELECTRÓNICA",
        "Valor resumen: 23SdpBwgx4HTBmro/lfo8Ic1I7Q=",
        "Comprobante aceptado por SUNAT.",
        "Página 1 de 1",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    // The same, decoded from the content streams by hand: lopdf's extraction is not what
    // makes the accents right.
    let shown = shown_strings(&doc).concat();
    assert!(shown.iter().any(|s| s == "María Fernanda Quispe Huamán"), "{shown:?}");
    assert!(shown.iter().any(|s| s == "BOLETA DE VENTA ELECTRÓNICA"), "{shown:?}");
    // The fonts are the standard ones, declared with the encoding the text uses.
    let fonts = doc.get_page_fonts(*doc.get_pages().values().next().unwrap()).unwrap();
    let mut declared: Vec<(Vec<u8>, Vec<u8>)> = fonts
        .values()
        .map(|font| {
            (
                font.get(b"BaseFont").unwrap().as_name().unwrap().to_vec(),
                font.get(b"Encoding").unwrap().as_name().unwrap().to_vec(),
            )
        })
        .collect();
    declared.sort();
    assert_eq!(
        declared,
        [
            (b"Helvetica".to_vec(), b"WinAnsiEncoding".to_vec()),
            (b"Helvetica-Bold".to_vec(), b"WinAnsiEncoding".to_vec())
        ]
    );
    assert_within_page(&doc);
}

#[test]
fn figures_are_right_aligned_in_their_columns() {
    let doc = load(&render(&fixture(), Some(&accepted(DIGEST))).unwrap());
    let page_id = *doc.get_pages().values().next().unwrap();
    let content = Content::decode(&doc.get_page_content(page_id)).unwrap();
    let (mut font, mut size, mut x) = (Font::Regular, 0.0f32, 0.0f32);
    // Where each occurrence of these strings ends.
    let mut ends: Vec<(String, f32)> = Vec::new();
    for op in &content.operations {
        match op.operator.as_str() {
            "Tf" => {
                font = if op.operands[0].as_name().unwrap() == b"F2" {
                    Font::Bold
                } else {
                    Font::Regular
                };
                size = op.operands[1].as_float().unwrap();
            }
            "Td" => x = op.operands[0].as_float().unwrap(),
            "Tj" => {
                if let Object::String(bytes, _) = &op.operands[0]
                    && matches!(
                        bytes.as_slice(),
                        b"P. unit." | b"19.99" | b"Importe" | b"39.98" | b"PEN 204.88"
                    )
                {
                    ends.push((winansi::decode(bytes), x + font.width(bytes, size)));
                }
            }
            _ => {}
        }
    }
    let unit_price_edge = Column::UnitPrice.left() + Column::UnitPrice.width() - CELL_PAD_X;
    let total_edge = Column::Total.left() + Column::Total.width() - CELL_PAD_X;
    assert_eq!(ends.len(), 5, "{ends:?}");
    for (shown, end) in ends {
        let edge = if shown == "P. unit." || shown == "19.99" {
            unit_price_edge
        } else {
            total_edge
        };
        assert!((end - edge).abs() < 0.01, "{shown:?} ends at {end}, not at {edge}");
    }
}

#[test]
fn rendering_is_deterministic() {
    let invoice = fixture();
    let acceptance = accepted(DIGEST);
    for acceptance in [None, Some(&acceptance)] {
        assert_eq!(
            render(&invoice, acceptance).unwrap(),
            render(&invoice, acceptance).unwrap()
        );
        // Not a constant either: the content is the invoice's.
        let mut other = invoice.clone();
        other.invoice_id = "B001-00000043".into();
        assert_ne!(
            render(&invoice, acceptance).unwrap(),
            render(&other, acceptance).unwrap()
        );
    }
    // And the acceptance's.
    let pending = render(&invoice, None).unwrap();
    let plain = render(&invoice, Some(&accepted(DIGEST))).unwrap();
    let longer = render(&invoice, Some(&accepted(LONG_DIGEST))).unwrap();
    let observed = Acceptance {
        observed: true,
        ..accepted(DIGEST)
    };
    let observed = render(&invoice, Some(&observed)).unwrap();
    for (a, b) in [(&pending, &plain), (&plain, &longer), (&plain, &observed)] {
        assert_ne!(a, b);
    }
}

#[test]
fn many_lines_flow_onto_further_pages() {
    let mut invoice = fixture();
    let lines = invoice.lines.clone();
    invoice.lines = lines.iter().cycle().take(120).cloned().collect();
    let pdf = render(&invoice, Some(&accepted(DIGEST))).unwrap();
    let doc = load(&pdf);
    let texts = page_texts(&doc);
    let count = texts.len();
    assert!(count >= 3, "{count} pages");
    for (index, text) in texts.iter().enumerate() {
        assert!(
            text.contains(&format!("Página {} de {count}", index + 1)),
            "page {}:\n{text}",
            index + 1
        );
        assert!(text.contains("B001-00000042"), "page {}", index + 1);
        assert!(text.contains("Representación impresa de la BOLETA DE VENTA ELECTRÓNICA"));
    }
    // The table header is repeated on every page holding lines; the totals are on the last.
    let with_lines: Vec<&String> = texts.iter().filter(|t| t.contains("Router Wi-Fi 6")).collect();
    assert!(with_lines.len() >= 2);
    for text in &with_lines {
        assert!(
            text.contains("Descripción") && text.contains("Valor venta") && text.contains("Importe\n"),
            "{text}"
        );
    }
    let last = texts.last().unwrap();
    assert!(last.contains("Importe total") && last.contains("PEN 204.88"), "{last}");
    // The code and the digest go with the totals.
    assert!(last.contains("Valor resumen:"), "{last}");
    assert!(texts[..count - 1].iter().all(|t| !t.contains("Valor resumen")));
    assert!(texts[..count - 1].iter().all(|t| !t.contains("Importe total")));
    // Every line is printed once.
    let printed = texts.iter().map(|t| t.matches("Router Wi-Fi 6").count()).sum::<usize>();
    assert_eq!(printed, 40);
    // Continuation pages say whose document they belong to.
    assert!(texts[1].contains("ACME Telecom S.A.C.") && texts[1].contains("BOLETA DE VENTA ELECTRÓNICA B001-00000042"));
    assert_within_page(&doc);
}

#[test]
fn hostile_content_renders_within_the_page() {
    let mut invoice = fixture();
    let long: String = "Descripción muy larga con palabras y números 1234567890 "
        .chars()
        .cycle()
        .take(500)
        .collect();
    assert_eq!(long.chars().count(), 500);
    invoice.lines[0].description = long;
    invoice.lines[1].description = "x".repeat(500);
    invoice.lines[2].description = String::new();
    invoice.buyer.name = "Zhang Wěi 张伟 🙂👨‍👩‍👧 Ñandú ".repeat(20);
    invoice.seller.name = "ＡＣＭＥ 株式会社 ".repeat(30);
    invoice.seller.address = Some(String::new());
    invoice.buyer.address = Some("Línea\nmúltiple\tcon\r\ncontroles\u{0}".repeat(40));
    invoice.buyer.email = Some("a".repeat(300) + "@example.com");
    invoice.total_in_words = "MUY ".repeat(200);
    // Stored data is read as it is: an absurd sale id must still render.
    invoice.sale_id = serde_json::from_value(serde_json::Value::String("S".repeat(400))).unwrap();
    invoice.tracking_reference = Some(String::new());
    invoice.tax.name = "Impuesto General a las Ventas con un nombre larguísimo".into();
    invoice.tax.rate_bp = 1050;
    let huge = Money::from_minor(i64::MAX, invoice.currency);
    let lowest = Money::from_minor(i64::MIN, invoice.currency);
    invoice.lines[0].unit_price = huge;
    invoice.lines[0].quantity = u32::MAX;
    invoice.lines[1].total = lowest;
    invoice.totals.total = huge;
    invoice.totals.subtotal = lowest;
    let pdf = render(&invoice, Some(&accepted(LONG_DIGEST))).unwrap();
    let doc = load(&pdf);
    let text = page_texts(&doc).concat();
    // One `?` per character the fonts lack; the family emoji's zero-width joiners vanish.
    assert!(text.contains("Zhang W?i ?? ???? Ñandú"), "{text}");
    assert!(text.contains("92233720368547758.07"), "{text}");
    assert!(text.contains("-92233720368547758.08"), "{text}");
    assert!(text.contains("4294967295"), "{text}");
    assert!(text.contains("10.5%"), "{text}");
    assert!(text.contains('…'), "long text is cut with an ellipsis");
    assert_within_page(&doc);

    // Blank everything that can be blank.
    let mut blank = fixture();
    blank.seller.name.clear();
    blank.buyer.name.clear();
    blank.invoice_id.clear();
    blank.total_in_words.clear();
    blank.tax.name.clear();
    blank.buyer.address = None;
    blank.buyer.email = None;
    for line in &mut blank.lines {
        line.description.clear();
    }
    for acceptance in [None, Some(&accepted(DIGEST))] {
        let doc = load(&render(&blank, acceptance).unwrap());
        assert!(page_texts(&doc).concat().contains("Impuesto"));
        assert_within_page(&doc);
    }
}

#[test]
fn an_invoice_without_lines_is_refused() {
    let mut invoice = fixture();
    invoice.lines.clear();
    assert_eq!(render(&invoice, None), Err(RenderError::NoLines));
}

#[test]
fn rates_print_without_needless_decimals() {
    assert_eq!(percent(1800), "18%");
    assert_eq!(percent(1050), "10.5%");
    assert_eq!(percent(1025), "10.25%");
    assert_eq!(percent(5), "0.05%");
    assert_eq!(percent(0), "0%");
    assert_eq!(percent(10_000), "100%");
}

#[test]
fn exempt_and_tax_exclusive_invoices_say_so() {
    let mut invoice = fixture();
    invoice.tax.prices_include_tax = false;
    let text = page_texts(&load(&render(&invoice, None).unwrap())).concat();
    assert!(
        text.contains("Los precios unitarios no incluyen el IGV (18%)"),
        "{text}"
    );
    invoice.tax.rate_bp = 0;
    let text = page_texts(&load(&render(&invoice, None).unwrap())).concat();
    assert!(text.contains("Op. exoneradas") && text.contains("IGV 0%"), "{text}");
}

#[test]
fn the_qr_payload_follows_sunats_field_order() {
    assert_eq!(
        qr_payload(&fixture(), DIGEST),
        "20100070970|03|B001|00000042|31.25|204.88|2026-11-24|1|45678912|23SdpBwgx4HTBmro/lfo8Ic1I7Q=|"
    );
    let factura = factura();
    let buyer = factura.buyer.document.number();
    assert_eq!(
        qr_payload(&factura, LONG_DIGEST),
        format!("20100070970|01|F001|00000042|31.25|204.88|2026-11-24|6|{buyer}|{LONG_DIGEST}|")
    );
}

#[test]
fn buyer_documents_map_to_sunat_catalog_06() {
    let codes: Vec<(DocumentType, &str)> = DocumentType::ALL
        .iter()
        .map(|&kind| (kind, qr::identity_code(kind)))
        .collect();
    assert_eq!(
        codes,
        [
            (DocumentType::Dni, "1"),
            (DocumentType::Ruc, "6"),
            (DocumentType::Ce, "4"),
            (DocumentType::Passport, "7"),
        ]
    );
}

#[test]
fn qr_amounts_have_two_decimals_whatever_the_currency() {
    let money =
        |minor: i64, code: &str| Money::from_minor(minor, backoffice_domain::money::Currency::parse(code).unwrap());
    assert_eq!(qr::two_decimals(&money(20_488, "PEN")), "204.88");
    assert_eq!(qr::two_decimals(&money(5, "PEN")), "0.05");
    assert_eq!(qr::two_decimals(&money(0, "USD")), "0.00");
    assert_eq!(qr::two_decimals(&money(-1_205, "PEN")), "-12.05");
    assert_eq!(qr::two_decimals(&money(15_990, "CLP")), "15990.00");
    assert_eq!(qr::two_decimals(&money(i64::MAX, "JPY")), "9223372036854775807.00");
}

#[test]
fn a_digest_that_is_not_base64_is_refused() {
    for digest_value in ["", "abc|def", "hash with spaces", "ñandú"] {
        assert_eq!(
            render(&fixture(), Some(&accepted(digest_value))),
            Err(RenderError::InvalidDigest),
            "{digest_value:?}"
        );
    }
}

#[test]
fn a_pending_document_claims_nothing_electronic() {
    let invoice = fixture();
    let doc = load(&render(&invoice, None).unwrap());
    let text = page_texts(&doc).concat();
    let shown = shown_strings(&doc).concat();
    assert!(shown.iter().any(|s| s == "BOLETA DE VENTA"), "{shown:?}");
    assert!(
        shown.iter().filter(|s| s.contains(PENDING_NOTICE)).count() >= 2,
        "banner and footer: {shown:?}"
    );
    let lower = text.to_lowercase();
    for claim in ["electrónic", "representación impresa", "valor resumen", "aceptado"] {
        assert!(!lower.contains(claim), "{claim:?} in:\n{text}");
    }
    // No QR code: the only filled boxes are the banner and the table header.
    let page_id = *doc.get_pages().values().next().unwrap();
    let content = Content::decode(&doc.get_page_content(page_id)).unwrap();
    let boxes = content.operations.iter().filter(|op| op.operator == "re").count();
    assert!(boxes <= 4, "{boxes} boxes");
    assert_within_page(&doc);

    // Every page of a long one says so, and continuation pages do not call it electronic.
    let mut long = invoice.clone();
    long.lines = invoice.lines.iter().cycle().take(120).cloned().collect();
    let texts = page_texts(&load(&render(&long, None).unwrap()));
    assert!(texts.len() >= 3);
    for text in &texts {
        assert!(text.contains("no válido como comprobante"), "{text}");
        assert!(!text.to_lowercase().contains("electrónic"), "{text}");
    }
}

// The checks below read the PDF with Debian's poppler-utils and zbar-tools, as someone else's
// software would: the QR code must scan from the rendered page, not just be drawn.

/// Runs a command, failing the test with its error output if it does not succeed.
fn run(program: &str, args: &[&Path], options: &[&str]) -> String {
    let output = Command::new(program)
        .args(options)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (install Debian's poppler-utils and zbar-tools)"));
    assert!(
        output.status.success(),
        "{program} {options:?} {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("invoice-pdf-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The QR code of the last page as zbarimg reads it from a 200 dpi rendering, and the text
/// of the whole document as pdftotext extracts it.
fn read_back(pdf: &[u8], name: &str) -> (String, String) {
    let dir = scratch(name);
    let file = dir.join("invoice.pdf");
    std::fs::write(&file, pdf).unwrap();
    let pages = load(pdf).get_pages().len().to_string();
    let image = dir.join("page");
    run(
        "pdftoppm",
        &[&file, &image],
        &["-r", "200", "-png", "-singlefile", "-f", &pages, "-l", &pages],
    );
    let qr = run(
        "zbarimg",
        &[&image.with_extension("png")],
        &["--raw", "-q", "-Sdisable", "-Sqrcode.enable"],
    );
    let text = run("pdftotext", &[&file, Path::new("-")], &[]);
    let _ = std::fs::remove_dir_all(&dir);
    (qr.trim_end_matches('\n').to_owned(), text)
}

#[test]
fn foreign_readers_scan_the_qr_code_and_read_the_digest() {
    let mut many = factura();
    many.lines = many.lines.iter().cycle().take(60).cloned().collect();
    let observed = Acceptance {
        digest_value: LONG_DIGEST,
        observed: true,
    };
    for (name, invoice, acceptance) in [
        ("boleta", fixture(), accepted(DIGEST)),
        ("factura", factura(), observed),
        ("pages", many, accepted(DIGEST)),
    ] {
        let pdf = render(&invoice, Some(&acceptance)).unwrap();
        let (qr, text) = read_back(&pdf, name);
        assert_eq!(qr, qr_payload(&invoice, acceptance.digest_value), "{name}");
        // Each field against the invoice itself, not against qr_payload.
        let fields: Vec<&str> = qr.split('|').collect();
        let (kind, buyer_kind) = match invoice.kind {
            DocumentKind::Factura => ("01", "6"),
            DocumentKind::Boleta => ("03", "1"),
        };
        let number = invoice.invoice_id.split_once('-').unwrap().1;
        assert_eq!(
            fields,
            [
                invoice.seller.document.number(),
                kind,
                invoice.series.as_str(),
                number,
                invoice.totals.tax.to_decimal_string().as_str(),
                invoice.totals.total.to_decimal_string().as_str(),
                "2026-11-24",
                buyer_kind,
                invoice.buyer.document.number(),
                acceptance.digest_value,
                "",
            ],
            "{name}"
        );
        assert!(
            text.contains(&format!("Valor resumen: {}", acceptance.digest_value)),
            "{name}:\n{text}"
        );
        assert!(text.contains("Representación impresa de la"), "{name}:\n{text}");
        assert!(text.contains(invoice.kind.title()), "{name}:\n{text}");
    }
}

#[test]
fn foreign_readers_see_a_pending_document_as_not_valid() {
    let dir = scratch("pending");
    let file = dir.join("invoice.pdf");
    std::fs::write(&file, render(&factura(), None).unwrap()).unwrap();
    let text = run("pdftotext", &[&file, Path::new("-")], &[]);
    let image = dir.join("page");
    run("pdftoppm", &[&file, &image], &["-r", "200", "-png", "-singlefile"]);
    // zbarimg exits with 4 when it finds no code.
    let scan = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(image.with_extension("png"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        text.contains("Pendiente de aceptación por SUNAT — no válido como comprobante"),
        "{text}"
    );
    assert!(text.contains("FACTURA"), "{text}");
    assert!(!text.to_lowercase().contains("representación impresa"), "{text}");
    assert!(!text.contains("ELECTRÓNICA"), "{text}");
    assert!(scan.stdout.is_empty(), "{}", String::from_utf8_lossy(&scan.stdout));
}

/// A total credit note of the fixture factura, in its own series.
fn credit_note() -> backoffice_domain::credit_note::CreditNote {
    use backoffice_domain::credit_note::{CreditNoteDraft, CreditNoteReason};
    CreditNoteDraft::total(
        &factura(),
        "FC01",
        CreditNoteReason::TotalReturn,
        "Devolución del envío por el courier",
        time::macros::date!(2026 - 11 - 26),
        datetime!(2026-11-26 10:00 UTC),
    )
    .and_then(|draft| draft.numbered(3))
    .unwrap()
}

#[test]
fn foreign_readers_read_a_credit_note_and_scan_its_type_07_qr_code() {
    let note = credit_note();
    let pdf = render_credit_note(&note, Some(&accepted(DIGEST))).unwrap();
    assert_eq!(
        pdf,
        render_credit_note(&note, Some(&accepted(DIGEST))).unwrap(),
        "deterministic"
    );
    let (qr, text) = read_back(&pdf, "credit-note");
    assert_eq!(qr, credit_note_qr_payload(&note, DIGEST));
    let fields: Vec<&str> = qr.split('|').collect();
    assert_eq!(
        fields,
        [
            note.seller.document.number(),
            "07",
            "FC01",
            "00000003",
            note.totals.tax.to_decimal_string().as_str(),
            note.totals.total.to_decimal_string().as_str(),
            "2026-11-26",
            "6",
            note.buyer.document.number(),
            DIGEST,
            "",
        ]
    );
    for expected in [
        "NOTA DE CRÉDITO ELECTRÓNICA",
        "FC01-00000003",
        "Documento que modifica:",
        "FACTURA ELECTRÓNICA F001-00000042 (tipo 01)",
        "Fecha del documento:",
        "2026-11-24",
        "Motivo:",
        "06 - Devolución total",
        "Devolución del envío por el courier",
        "Importe total",
        &note.totals.total.to_decimal_string(),
        &note.lines[0].description,
        &format!("Valor resumen: {DIGEST}"),
        "Representación impresa de la NOTA DE CRÉDITO ELECTRÓNICA",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    // A note is not an invoice: none of the sale's invoice-only fields.
    assert!(!text.contains("Fecha de vencimiento"), "{text}");
}

#[test]
fn a_pending_credit_note_claims_nothing_electronic() {
    let dir = scratch("pending-note");
    let file = dir.join("note.pdf");
    std::fs::write(&file, render_credit_note(&credit_note(), None).unwrap()).unwrap();
    let text = run("pdftotext", &[&file, Path::new("-")], &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(text.contains("NOTA DE CRÉDITO"), "{text}");
    assert!(text.contains("Pendiente de aceptación por SUNAT"), "{text}");
    assert!(!text.contains("NOTA DE CRÉDITO ELECTRÓNICA"), "{text}");
    assert!(!text.to_lowercase().contains("representación impresa"), "{text}");
}
