//! The printed representation of an issued invoice or credit note: a PDF in Spanish laid out like a Peruvian
//! electronic invoice (comprobante electrónico), for the buyer's e-mail and the archive.
//!
//! Only a document SUNAT has accepted is a "representación impresa": given its
//! [`Acceptance`], the page names the electronic document, prints its digest ("valor
//! resumen") and SUNAT's QR code ([`qr_payload`]). Without one, nothing on the page claims the
//! document is electronic or valid, and every page says it is pending SUNAT's acceptance.
//!
//! The file is built with the standard Helvetica fonts, which every PDF reader has, so no
//! font file ships with the function; text is encoded to WinAnsi and measured with the
//! fonts' metrics to right-align figures, wrap descriptions and cut what cannot fit. Lines
//! flow onto as many pages as needed, the table header repeated on each, the totals on the
//! last. Rendering is a pure function of the invoice: the same invoice always gives the same
//! bytes, so a render repeated after a crash matches the stored file.

mod canvas;
mod metrics;
mod qr;
mod text;
mod winansi;

#[cfg(test)]
mod tests;

use backoffice_domain::credit_note::CreditNote;
use backoffice_domain::identity::Document;
use backoffice_domain::invoice::{DocumentKind, Invoice, InvoiceLine, Party, TaxConfig, Totals};
use backoffice_domain::money::{Currency, Money};
use time::Date;

use canvas::{Canvas, DocumentInfo, PAGE_HEIGHT, PAGE_WIDTH, Page};
use metrics::Font;
use winansi::encode;

pub use qr::{credit_note_qr_payload, qr_payload};

/// What SUNAT's acceptance of the signed electronic document gives the printed copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acceptance<'a> {
    /// The base64 `DigestValue` of the document's XML signature (its "hash").
    pub digest_value: &'a str,
    /// Accepted with observations: still valid, and the page says so.
    pub observed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// An issued invoice always has a line (shipping at least): one without is corrupt data,
    /// and printing it would show a document that bills nothing.
    #[error("the invoice has no lines to print")]
    NoLines,
    #[error("the invoice needs more than {max} pages")]
    TooManyPages { max: usize },
    /// A digest that is not base64 would print a QR code no one can verify.
    #[error("the digest value is empty or not base64")]
    InvalidDigest,
    #[error("the QR code cannot be encoded: {0}")]
    QrCode(String),
}

/// The invoice as a PDF document (A4, one page or more): the printed representation of the
/// electronic document SUNAT accepted, or with `None` a copy marked as not yet valid.
/// Deterministic: the same inputs always give the same bytes (no wall-clock timestamps, no
/// random ids), so a re-render after a crash matches what was stored.
pub fn render(invoice: &Invoice, acceptance: Option<&Acceptance<'_>>) -> Result<Vec<u8>, RenderError> {
    let sheet = Sheet {
        id: &invoice.invoice_id,
        seller: &invoice.seller,
        buyer: &invoice.buyer,
        currency: invoice.currency,
        tax: &invoice.tax,
        lines: &invoice.lines,
        totals: &invoice.totals,
        total_in_words: &invoice.total_in_words,
        dates: vec![
            format!("Fecha de emisión: {}", iso_date(invoice.issue_date)),
            format!("Fecha de vencimiento: {}", iso_date(invoice.due_date)),
        ],
        modifies: Vec::new(),
        // The sale and its shipment, or the billing run (the call center's invoice).
        references: Some(invoice.reference()),
    };
    let payload = |digest: &str| qr_payload(invoice, digest);
    lay_out(
        &sheet,
        document_title(invoice.kind, acceptance.is_some()),
        acceptance,
        payload,
    )
}

/// The credit note (type 07) as a PDF document, like [`render`]: its own number, the document
/// it modifies (type, number, date) and why (SUNAT's catalog 09), the lines and totals it
/// credits, and once SUNAT accepted it the digest and the QR code for type 07.
pub fn render_credit_note(note: &CreditNote, acceptance: Option<&Acceptance<'_>>) -> Result<Vec<u8>, RenderError> {
    let sheet = Sheet {
        id: &note.credit_note_id,
        seller: &note.seller,
        buyer: &note.buyer,
        currency: note.currency,
        tax: &note.tax,
        lines: &note.lines,
        totals: &note.totals,
        total_in_words: &note.total_in_words,
        dates: vec![format!("Fecha de emisión: {}", iso_date(note.issue_date))],
        modifies: vec![
            Field::from((
                "Documento que modifica:",
                format!(
                    "{} {} (tipo {})",
                    note.invoice_kind.title(),
                    note.invoice_id,
                    qr::document_type_code(note.invoice_kind)
                ),
                2,
            )),
            Field::from(("Fecha del documento:", iso_date(note.invoice_issue_date))),
            Field::from((
                "Motivo:",
                format!("{} - {}", note.reason.code(), note.reason.description()),
            )),
            Field::from(("Sustento:", note.description.clone())),
        ],
        references: None,
    };
    let title = if acceptance.is_some() {
        "NOTA DE CRÉDITO ELECTRÓNICA"
    } else {
        "NOTA DE CRÉDITO"
    };
    let payload = |digest: &str| credit_note_qr_payload(note, digest);
    lay_out(&sheet, title, acceptance, payload)
}

/// What the page prints, whatever the document.
struct Sheet<'a> {
    /// The legal number: `F001-00000042`, `FC01-00000001`.
    id: &'a str,
    seller: &'a Party,
    buyer: &'a Party,
    currency: Currency,
    tax: &'a TaxConfig,
    lines: &'a [InvoiceLine],
    totals: &'a Totals,
    total_in_words: &'a str,
    /// Beside the buyer: "Fecha de emisión: …"; the currency follows.
    dates: Vec<String>,
    /// A note's framed block under the parties: label, value, at most so many lines.
    modifies: Vec<Field>,
    /// Under the totals: the sale's references.
    references: Option<String>,
}

/// A labelled value in a frame, wrapped to at most `max_lines`.
struct Field {
    label: &'static str,
    value: String,
    max_lines: usize,
}

impl From<(&'static str, String, usize)> for Field {
    fn from((label, value, max_lines): (&'static str, String, usize)) -> Field {
        Field {
            label,
            value,
            max_lines,
        }
    }
}

impl From<(&'static str, String)> for Field {
    fn from((label, value): (&'static str, String)) -> Field {
        (label, value, 3).into()
    }
}

/// Lays `sheet` out under `title`; `payload` gives the QR code's text for the digest.
fn lay_out(
    sheet: &Sheet<'_>,
    title: &'static str,
    acceptance: Option<&Acceptance<'_>>,
    payload: impl Fn(&str) -> String,
) -> Result<Vec<u8>, RenderError> {
    if sheet.lines.is_empty() {
        return Err(RenderError::NoLines);
    }
    let accepted = match acceptance {
        Some(acceptance) => {
            qr::check_digest(acceptance.digest_value)?;
            Some(Accepted {
                modules: qr::modules(&payload(acceptance.digest_value))?,
                digest_value: acceptance.digest_value,
                observed: acceptance.observed,
            })
        }
        None => None,
    };
    let mut layout = Layout {
        sheet,
        accepted: accepted.as_ref(),
        title,
        canvas: Canvas::new(),
        y: TOP,
    };
    layout.first_page_header();
    if accepted.is_none() {
        layout.pending_banner();
    }
    layout.parties();
    layout.modifies();
    layout.table_header();
    for line in sheet.lines {
        layout.row(line)?;
    }
    layout.totals()?;
    let info = DocumentInfo {
        title: format!("{} {}", title, sheet.id),
        author: sheet.seller.name.clone(),
    };
    let document_id = encode(sheet.id);
    let legend = encode(&match accepted {
        Some(_) => format!("Representación impresa de la {title}"),
        None => PENDING_NOTICE.to_owned(),
    });
    layout.canvas.finish(&info, |page, number, count| {
        footer(page, &legend, &document_id, number, count)
    })
}

/// On every page of a document SUNAT has not accepted (yet).
const PENDING_NOTICE: &str = "Pendiente de aceptación por SUNAT — no válido como comprobante";

/// The document's name: "FACTURA ELECTRÓNICA" only once SUNAT accepted it, "FACTURA" before.
fn document_title(kind: DocumentKind, electronic: bool) -> &'static str {
    match (kind, electronic) {
        (DocumentKind::Factura, true) => "FACTURA ELECTRÓNICA",
        (DocumentKind::Boleta, true) => "BOLETA DE VENTA ELECTRÓNICA",
        (DocumentKind::Factura, false) => "FACTURA",
        (DocumentKind::Boleta, false) => "BOLETA DE VENTA",
    }
}

/// The accepted document's QR code and digest, ready to draw.
struct Accepted<'a> {
    modules: qr::Modules,
    digest_value: &'a str,
    observed: bool,
}

/// Side of the QR code with its quiet zone, whatever its version: about 3.5 cm, modules of
/// 2 pt for the usual payload (version 6 at level Q), well above what phone cameras and
/// printers resolve.
const QR_SIDE: f32 = 100.0;

// Page geometry, in points from the bottom-left corner.
const MARGIN: f32 = 40.0;
const LEFT: f32 = MARGIN;
const RIGHT: f32 = PAGE_WIDTH - MARGIN;
const TOP: f32 = PAGE_HEIGHT - MARGIN;
const CONTENT_WIDTH: f32 = RIGHT - LEFT;
/// The body stops here; below are the footer's rule and text.
const BODY_BOTTOM: f32 = 56.0;
const FOOTER_RULE: f32 = 46.0;
const FOOTER_BASELINE: f32 = 34.0;
const FOOTER_SIZE: f32 = 7.5;

// The table of lines.
const TABLE_SIZE: f32 = 8.0;
const TABLE_LEADING: f32 = 10.0;
const CELL_PAD_X: f32 = 4.0;
const CELL_PAD_Y: f32 = 3.0;
const HEADER_ROW_HEIGHT: f32 = 16.0;
/// A description longer than this many lines is cut with an ellipsis: a row must always fit
/// on a fresh page, and the full text is in the electronic document anyway.
const MAX_DESCRIPTION_LINES: usize = 4;
/// Column widths; the description takes what the figures leave.
const QUANTITY_WIDTH: f32 = 38.0;
const UNIT_PRICE_WIDTH: f32 = 66.0;
const NET_WIDTH: f32 = 66.0;
const TAX_WIDTH: f32 = 58.0;
const TOTAL_WIDTH: f32 = 70.0;
const DESCRIPTION_WIDTH: f32 = CONTENT_WIDTH - QUANTITY_WIDTH - UNIT_PRICE_WIDTH - NET_WIDTH - TAX_WIDTH - TOTAL_WIDTH;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Quantity,
    Description,
    UnitPrice,
    Net,
    Tax,
    Total,
}

impl Column {
    const ALL: [Column; 6] = [
        Column::Quantity,
        Column::Description,
        Column::UnitPrice,
        Column::Net,
        Column::Tax,
        Column::Total,
    ];

    fn width(self) -> f32 {
        match self {
            Column::Quantity => QUANTITY_WIDTH,
            Column::Description => DESCRIPTION_WIDTH,
            Column::UnitPrice => UNIT_PRICE_WIDTH,
            Column::Net => NET_WIDTH,
            Column::Tax => TAX_WIDTH,
            Column::Total => TOTAL_WIDTH,
        }
    }

    fn left(self) -> f32 {
        LEFT + Column::ALL
            .iter()
            .take_while(|c| **c != self)
            .map(|c| c.width())
            .sum::<f32>()
    }

    /// Room for text between the cell's paddings.
    fn inner_width(self) -> f32 {
        self.width() - 2.0 * CELL_PAD_X
    }

    /// Figures are right-aligned so their digits line up.
    fn is_figure(self) -> bool {
        self != Column::Description
    }

    fn title(self, tax: &TaxConfig) -> String {
        match self {
            Column::Quantity => "Cant.".into(),
            Column::Description => "Descripción".into(),
            Column::UnitPrice => "P. unit.".into(),
            Column::Net => "Valor venta".into(),
            Column::Tax => tax_name(tax).into(),
            Column::Total => "Importe".into(),
        }
    }

    /// Draws `codes` in this column, left- or right-aligned.
    fn draw(self, page: &mut Page, font: Font, size: f32, baseline: f32, codes: &[u8]) {
        if self.is_figure() {
            page.text_right(font, size, self.left() + self.width() - CELL_PAD_X, baseline, codes);
        } else {
            page.text(font, size, self.left() + CELL_PAD_X, baseline, codes);
        }
    }
}

/// Baseline of a line of text of `size` points whose line box starts at `top`: room above
/// for capitals' accents, below for descenders.
fn baseline(top: f32, size: f32) -> f32 {
    top - 0.9 * size
}

/// A line of text laid out in a block.
struct Line {
    font: Font,
    size: f32,
    /// Height the line takes in its block.
    leading: f32,
    codes: Vec<u8>,
}

impl Line {
    fn new(font: Font, size: f32, codes: Vec<u8>) -> Line {
        Line {
            font,
            size,
            leading: size * 1.3,
            codes,
        }
    }

    /// Baseline when the line's box starts at `top`: as [`baseline`] for its nominal size, so
    /// a figure shrunk to fit stays on the line it belongs to.
    fn baseline(&self, top: f32) -> f32 {
        top - self.leading * (0.9 / 1.3)
    }

    /// `text` wrapped to `width`, at most `max_lines` lines.
    fn wrapped(text: &str, font: Font, size: f32, width: f32, max_lines: usize) -> Vec<Line> {
        text::wrap_at_most(&encode(text), font, size, width, max_lines)
            .into_iter()
            .map(|codes| Line::new(font, size, codes))
            .collect()
    }

    /// `text` on one line, cut to `width`.
    fn single(text: &str, font: Font, size: f32, width: f32) -> Line {
        Line::new(font, size, text::one_line(&encode(text), font, size, width))
    }
}

fn block_height(lines: &[Line]) -> f32 {
    lines.iter().map(|l| l.leading).sum()
}

/// The pages being laid out, and where the next thing goes.
struct Layout<'a> {
    sheet: &'a Sheet<'a>,
    accepted: Option<&'a Accepted<'a>>,
    title: &'static str,
    canvas: Canvas,
    /// Top of the free space on the current page.
    y: f32,
}

impl Layout<'_> {
    /// Seller on the left; on the right the framed box that identifies the document (the
    /// seller's RUC, the kind of document and its number), as SUNAT's printed formats have.
    fn first_page_header(&mut self) {
        const BOX_WIDTH: f32 = 210.0;
        const BOX_PAD: f32 = 10.0;
        let sheet = self.sheet;
        let box_left = RIGHT - BOX_WIDTH;
        let box_inner = BOX_WIDTH - 2.0 * BOX_PAD;

        let mut doc_box = vec![Line::single(
            &document_label(&sheet.seller.document),
            Font::Bold,
            11.0,
            box_inner,
        )];
        doc_box.extend(Line::wrapped(self.title, Font::Bold, 11.0, box_inner, 2));
        // The number is shrunk rather than cut: it is what the buyer quotes.
        let (size, codes) = text::figure(&encode(sheet.id), Font::Bold, 12.0, box_inner);
        doc_box.push(Line {
            leading: 12.0 * 1.3,
            ..Line::new(Font::Bold, size, codes)
        });
        let box_height = block_height(&doc_box) + 2.0 * BOX_PAD;

        let seller_width = box_left - 16.0 - LEFT;
        let mut seller = Line::wrapped(&sheet.seller.name, Font::Bold, 14.0, seller_width, 2);
        seller.push(Line::single(
            &document_label(&sheet.seller.document),
            Font::Regular,
            9.0,
            seller_width,
        ));
        if let Some(address) = &sheet.seller.address {
            seller.extend(Line::wrapped(address, Font::Regular, 9.0, seller_width, 3));
        }
        if let Some(email) = &sheet.seller.email {
            seller.push(Line::single(email, Font::Regular, 9.0, seller_width));
        }

        let page = self.canvas.page();
        page.frame(box_left, TOP, BOX_WIDTH, box_height, 1.0);
        let center = box_left + BOX_WIDTH / 2.0;
        let mut top = TOP - BOX_PAD;
        for line in &doc_box {
            page.text_centered(line.font, line.size, center, line.baseline(top), &line.codes);
            top -= line.leading;
        }
        let mut top = TOP;
        for line in &seller {
            page.text(line.font, line.size, LEFT, line.baseline(top), &line.codes);
            top -= line.leading;
        }
        self.y = (TOP - box_height).min(top) - 14.0;
    }

    /// A shaded band under the header: this copy is not a valid payment document yet.
    fn pending_banner(&mut self) {
        const SIZE: f32 = 10.0;
        const HEIGHT: f32 = 20.0;
        let notice = text::one_line(&encode(PENDING_NOTICE), Font::Bold, SIZE, CONTENT_WIDTH - 16.0);
        let page = self.canvas.page();
        page.shade(LEFT, self.y, CONTENT_WIDTH, HEIGHT, 0.85);
        let base = self.y - (HEIGHT + 0.72 * SIZE) / 2.0;
        page.text_centered(Font::Bold, SIZE, LEFT + CONTENT_WIDTH / 2.0, base, &notice);
        self.y -= HEIGHT + 10.0;
    }

    /// The buyer on the left, dates and currency on the right, in one frame.
    fn parties(&mut self) {
        const PAD: f32 = 8.0;
        const SIZE: f32 = 9.0;
        const LEADING: f32 = 12.0;
        const SPLIT: f32 = LEFT + 330.0;
        let sheet = self.sheet;
        let buyer = sheet.buyer;
        let present = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let mut fields: Vec<(&str, String, usize)> = vec![
            ("Cliente:", buyer.name.clone(), 2),
            ("Documento:", document_label(&buyer.document), 1),
        ];
        if let Some(address) = present(&buyer.address) {
            fields.push(("Dirección:", address, 3));
        }
        if let Some(email) = present(&buyer.email) {
            fields.push(("Correo:", email, 1));
        }
        let label_width = fields
            .iter()
            .map(|(label, _, _)| Font::Bold.width(&encode(label), SIZE))
            .fold(0.0, f32::max)
            + 6.0;
        let value_left = LEFT + PAD + label_width;
        let value_width = SPLIT - PAD - value_left;
        let dates_left = SPLIT + PAD;
        let dates_width = RIGHT - PAD - dates_left;
        let mut dates = sheet.dates.clone();
        dates.push(format!("Moneda: {}", sheet.currency.code()));

        let page = self.canvas.page();
        let mut top = self.y - PAD;
        for (label, value, max_lines) in &fields {
            page.text(Font::Bold, SIZE, LEFT + PAD, baseline(top, SIZE), &encode(label));
            let lines = text::wrap_at_most(&encode(value), Font::Regular, SIZE, value_width, *max_lines);
            for line in &lines {
                page.text(Font::Regular, SIZE, value_left, baseline(top, SIZE), line);
                top -= LEADING;
            }
            if lines.is_empty() {
                top -= LEADING;
            }
        }
        let buyer_bottom = top;
        let mut top = self.y - PAD;
        for date in &dates {
            let line = text::one_line(&encode(date), Font::Regular, SIZE, dates_width);
            page.text(Font::Regular, SIZE, dates_left, baseline(top, SIZE), &line);
            top -= LEADING;
        }
        let height = self.y - buyer_bottom.min(top) + PAD;
        page.frame(LEFT, self.y, CONTENT_WIDTH, height, 0.6);
        self.y -= height + 12.0;
    }

    /// What a credit note modifies and why, framed under the parties; nothing for an invoice.
    fn modifies(&mut self) {
        const PAD: f32 = 8.0;
        const SIZE: f32 = 9.0;
        const LEADING: f32 = 12.0;
        let fields = &self.sheet.modifies;
        if fields.is_empty() {
            return;
        }
        let label_width = fields
            .iter()
            .map(|f| Font::Bold.width(&encode(f.label), SIZE))
            .fold(0.0, f32::max)
            + 6.0;
        let value_left = LEFT + PAD + label_width;
        let value_width = RIGHT - PAD - value_left;
        let page = self.canvas.page();
        let mut top = self.y - PAD;
        for field in fields {
            page.text(Font::Bold, SIZE, LEFT + PAD, baseline(top, SIZE), &encode(field.label));
            let lines = text::wrap_at_most(&encode(&field.value), Font::Regular, SIZE, value_width, field.max_lines);
            for line in &lines {
                page.text(Font::Regular, SIZE, value_left, baseline(top, SIZE), line);
                top -= LEADING;
            }
            if lines.is_empty() {
                top -= LEADING;
            }
        }
        let height = self.y - top + PAD;
        page.frame(LEFT, self.y, CONTENT_WIDTH, height, 0.6);
        self.y -= height + 12.0;
    }

    fn table_header(&mut self) {
        let top = self.y;
        let page = self.canvas.page();
        page.shade(LEFT, top, CONTENT_WIDTH, HEADER_ROW_HEIGHT, 0.88);
        page.rule(LEFT, RIGHT, top, 0.6, 0.0);
        page.rule(LEFT, RIGHT, top - HEADER_ROW_HEIGHT, 0.6, 0.0);
        // Capitals centred in the row: cap height is about 0.72 of the size.
        let base = top - (HEADER_ROW_HEIGHT + 0.72 * TABLE_SIZE) / 2.0;
        for column in Column::ALL {
            let title = text::one_line(
                &encode(&column.title(self.sheet.tax)),
                Font::Bold,
                TABLE_SIZE,
                column.inner_width(),
            );
            column.draw(page, Font::Bold, TABLE_SIZE, base, &title);
        }
        self.y -= HEADER_ROW_HEIGHT;
    }

    /// One line of the invoice; on a new page (with the table header again) if it does not
    /// fit on this one.
    fn row(&mut self, line: &InvoiceLine) -> Result<(), RenderError> {
        let description = text::wrap_at_most(
            &encode(&line.description),
            Font::Regular,
            TABLE_SIZE,
            Column::Description.inner_width(),
            MAX_DESCRIPTION_LINES,
        );
        let figures = [
            (Column::Quantity, line.quantity.to_string()),
            (Column::UnitPrice, line.unit_price.to_decimal_string()),
            (Column::Net, line.net.to_decimal_string()),
            (Column::Tax, line.tax.to_decimal_string()),
            (Column::Total, line.total.to_decimal_string()),
        ];
        let height = 2.0 * CELL_PAD_Y + TABLE_LEADING * description.len().max(1) as f32;
        if self.y - height < BODY_BOTTOM {
            self.close_table();
            self.continuation_page()?;
            self.table_header();
        }
        let top = self.y - CELL_PAD_Y;
        let page = self.canvas.page();
        for (column, figure) in &figures {
            let (size, codes) = text::figure(figure.as_bytes(), Font::Regular, TABLE_SIZE, column.inner_width());
            column.draw(page, Font::Regular, size, baseline(top, TABLE_SIZE), &codes);
        }
        let mut line_top = top;
        for codes in &description {
            Column::Description.draw(page, Font::Regular, TABLE_SIZE, baseline(line_top, TABLE_SIZE), codes);
            line_top -= TABLE_LEADING;
        }
        self.y -= height;
        page.rule(LEFT, RIGHT, self.y, 0.3, 0.7);
        Ok(())
    }

    /// A firm rule under the last row drawn, where the table ends or breaks to the next page.
    fn close_table(&mut self) {
        let y = self.y;
        self.canvas.page().rule(LEFT, RIGHT, y, 0.6, 0.0);
    }

    /// Pages after the first repeat who issued which document, so a loose page is
    /// identifiable.
    fn continuation_page(&mut self) -> Result<(), RenderError> {
        const SIZE: f32 = 9.0;
        self.canvas.new_page()?;
        let sheet = self.sheet;
        let document = text::one_line(
            &encode(&format!("{} {}", self.title, sheet.id)),
            Font::Bold,
            SIZE,
            CONTENT_WIDTH * 0.6,
        );
        let seller_width = CONTENT_WIDTH - Font::Bold.width(&document, SIZE) - 12.0;
        let seller = text::one_line(&encode(&sheet.seller.name), Font::Bold, SIZE, seller_width);
        let page = self.canvas.page();
        page.text(Font::Bold, SIZE, LEFT, baseline(TOP, SIZE), &seller);
        page.text_right(Font::Bold, SIZE, RIGHT, baseline(TOP, SIZE), &document);
        page.rule(LEFT, RIGHT, TOP - 15.0, 0.6, 0.0);
        self.y = TOP - 27.0;
        Ok(())
    }

    /// Totals under the table, the amount in words, the references of the sale and the tax
    /// note; all together, on a new page if they do not fit under the last line.
    fn totals(&mut self) -> Result<(), RenderError> {
        const ROW_HEIGHT: f32 = 14.0;
        const VALUE_WIDTH: f32 = 110.0;
        const LABEL_WIDTH: f32 = 200.0;
        const GAP: f32 = 8.0;
        let sheet = self.sheet;
        let tax = sheet.tax;
        let value_right = Column::Total.left() + Column::Total.width() - CELL_PAD_X;
        let label_right = value_right - VALUE_WIDTH - 10.0;
        self.close_table();
        let subtotal_label = if tax.rate_bp == 0 {
            "Op. exoneradas"
        } else {
            "Op. gravadas"
        };
        let amounts = [
            (Font::Regular, 9.0, subtotal_label.to_owned(), &sheet.totals.subtotal),
            (
                Font::Regular,
                9.0,
                format!("{} {}", tax_name(tax), percent(tax.rate_bp)),
                &sheet.totals.tax,
            ),
            (Font::Bold, 10.0, "Importe total".to_owned(), &sheet.totals.total),
        ];
        let words = Line::wrapped(
            &format!("SON: {}", sheet.total_in_words),
            Font::Bold,
            9.0,
            CONTENT_WIDTH,
            3,
        );
        let references = sheet
            .references
            .as_deref()
            .map(|references| Line::wrapped(references, Font::Regular, 8.0, CONTENT_WIDTH, 3))
            .unwrap_or_default();
        let note = Line::wrapped(&price_note(tax), Font::Regular, 8.0, CONTENT_WIDTH, 2);
        let acceptance = self.accepted.map(|accepted| AcceptanceBlock::new(accepted, self.title));
        let height = GAP
            + ROW_HEIGHT * amounts.len() as f32
            + GAP
            + block_height(&words)
            + GAP
            + block_height(&references)
            + block_height(&note)
            + acceptance.as_ref().map_or(0.0, |block| GAP + block.height());
        if self.y - height < BODY_BOTTOM {
            self.continuation_page()?;
        }

        let page = self.canvas.page();
        let mut top = self.y - GAP;
        for (index, (font, size, label, amount)) in amounts.iter().enumerate() {
            if index == amounts.len() - 1 {
                page.rule(label_right - LABEL_WIDTH, RIGHT, top + 1.0, 0.6, 0.0);
                top -= 2.0;
            }
            let label = text::one_line(&encode(label), *font, *size, LABEL_WIDTH);
            page.text_right(*font, *size, label_right, baseline(top, 10.0), &label);
            let value = format!("{} {}", sheet.currency.code(), amount_text(amount));
            let (value_size, value) = text::figure(value.as_bytes(), *font, *size, VALUE_WIDTH);
            page.text_right(*font, value_size, value_right, baseline(top, 10.0), &value);
            top -= ROW_HEIGHT;
        }
        top -= GAP - 2.0;
        for line in &words {
            page.text(line.font, line.size, LEFT, line.baseline(top), &line.codes);
            top -= line.leading;
        }
        top -= GAP;
        for line in references.iter().chain(&note) {
            page.text(line.font, line.size, LEFT, line.baseline(top), &line.codes);
            top -= line.leading;
        }
        if let Some(block) = &acceptance {
            top -= GAP;
            block.draw(page, top);
            top -= block.height();
        }
        self.y = top;
        Ok(())
    }
}

/// SUNAT's QR code on the left; on its right what the document is, its digest and SUNAT's
/// answer.
struct AcceptanceBlock<'a> {
    accepted: &'a Accepted<'a>,
    lines: Vec<Line>,
}

impl<'a> AcceptanceBlock<'a> {
    const TEXT_LEFT: f32 = LEFT + QR_SIDE + 8.0;

    fn new(accepted: &'a Accepted<'a>, title: &str) -> AcceptanceBlock<'a> {
        let width = RIGHT - Self::TEXT_LEFT;
        let status = if accepted.observed {
            "Comprobante aceptado por SUNAT con observaciones."
        } else {
            "Comprobante aceptado por SUNAT."
        };
        // The quiet zone is blank: the text starts level with the code's first modules.
        let mut lines = vec![Line {
            leading: Self::module(accepted) * qr::QUIET_ZONE as f32,
            ..Line::new(Font::Regular, 8.0, Vec::new())
        }];
        lines.extend(Line::wrapped(
            &format!("Representación impresa de la {title}"),
            Font::Bold,
            9.0,
            width,
            2,
        ));
        lines.extend(Line::wrapped(
            &format!("Valor resumen: {}", accepted.digest_value),
            Font::Regular,
            8.0,
            width,
            3,
        ));
        lines.push(Line::single(status, Font::Regular, 8.0, width));
        AcceptanceBlock { accepted, lines }
    }

    /// Side of one module: the code and its quiet zone fill [`QR_SIDE`].
    fn module(accepted: &Accepted<'_>) -> f32 {
        QR_SIDE / (accepted.modules.width + 2 * qr::QUIET_ZONE) as f32
    }

    fn height(&self) -> f32 {
        block_height(&self.lines).max(QR_SIDE)
    }

    fn draw(&self, page: &mut Page, top: f32) {
        let modules = &self.accepted.modules;
        let module = Self::module(self.accepted);
        let origin_x = LEFT + module * qr::QUIET_ZONE as f32;
        let origin_top = top - module * qr::QUIET_ZONE as f32;
        page.fill_boxes(modules.runs.iter().map(|&(row, column, length)| {
            (
                origin_x + module * column as f32,
                origin_top - module * row as f32,
                module * length as f32,
                module,
            )
        }));
        let mut line_top = top;
        for line in &self.lines {
            page.text(
                line.font,
                line.size,
                Self::TEXT_LEFT,
                line.baseline(line_top),
                &line.codes,
            );
            line_top -= line.leading;
        }
    }
}

/// Footer of every page: what the document is (or that it is not valid yet), the number and
/// the page.
fn footer(page: &mut Page, legend: &[u8], document_id: &[u8], number: usize, count: usize) {
    page.rule(LEFT, RIGHT, FOOTER_RULE, 0.4, 0.6);
    page.text(Font::Regular, FOOTER_SIZE, LEFT, FOOTER_BASELINE, legend);
    let page_label = encode(&format!(" · Página {number} de {count}"));
    let id_width =
        CONTENT_WIDTH - Font::Regular.width(legend, FOOTER_SIZE) - Font::Regular.width(&page_label, FOOTER_SIZE) - 20.0;
    let mut right = text::one_line(document_id, Font::Regular, FOOTER_SIZE, id_width);
    right.extend_from_slice(&page_label);
    page.text_right(Font::Regular, FOOTER_SIZE, RIGHT, FOOTER_BASELINE, &right);
}

/// "RUC 20100070970", "DNI 45678912".
fn document_label(document: &Document) -> String {
    format!("{} {}", document.kind().as_str(), document.number())
}

/// "2026-11-24", whatever `time`'s display format.
pub(crate) fn iso_date(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

fn amount_text(amount: &Money) -> String {
    amount.to_decimal_string()
}

/// A rate in basis points as a percentage without needless decimals: 1800 → "18%",
/// 1050 → "10.5%", 1025 → "10.25%".
fn percent(rate_bp: u32) -> String {
    let (whole, hundredths) = (rate_bp / 100, rate_bp % 100);
    match hundredths {
        0 => format!("{whole}%"),
        h if h % 10 == 0 => format!("{whole}.{}%", h / 10),
        h => format!("{whole}.{h:02}%"),
    }
}

/// The tax's name as configured, or a generic one if the configuration left it blank.
fn tax_name(tax: &TaxConfig) -> &str {
    let name = tax.name.trim();
    if name.is_empty() { "Impuesto" } else { name }
}

/// Whether the unit prices shown already include the tax: the buyer otherwise cannot tell
/// how "P. unit." relates to "Importe".
fn price_note(tax: &TaxConfig) -> String {
    let name = tax_name(tax);
    let rate = percent(tax.rate_bp);
    if tax.rate_bp == 0 {
        format!("Operación no gravada con el {name} (tasa {rate}).")
    } else if tax.prices_include_tax {
        format!("Los precios unitarios incluyen el {name} ({rate}).")
    } else {
        format!("Los precios unitarios no incluyen el {name} ({rate}); se agrega en la columna {name}.")
    }
}
