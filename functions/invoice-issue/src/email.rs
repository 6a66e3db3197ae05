//! The invoice (and credit note) e-mail: a multipart MIME message (plain text and HTML alternatives; the PDF,
//! the signed XML and SUNAT's CDR attached) built with mail-builder, and its envelope.

use backoffice_domain::credit_note::CreditNote;
use backoffice_domain::invoice::{Invoice, Party};
use backoffice_edge::mail::{EmailTag, OutgoingEmail, invoice_tags};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use time::OffsetDateTime;

/// Who invoices are sent from: one verified identity for every client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// `facturacion@backoffice.example.com`.
    pub address: String,
}

impl Sender {
    fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost")
    }
}

/// What an invoice e-mail carries: the representación impresa, the signed electronic document
/// (`{stem}.xml`) and SUNAT's answer (`R-{stem}.zip`), which is the buyer's proof of
/// acceptance.
#[derive(Debug, Clone, Copy)]
pub struct Attachments<'a> {
    pub pdf: &'a [u8],
    pub file_stem: &'a str,
    pub xml: &'a [u8],
    pub cdr: Option<&'a [u8]>,
    /// A billing run's evidence CSV (file name, bytes): the call center's invoice to a client
    /// company carries the events it bills (ADR 0028).
    pub evidence: Option<(&'a str, &'a [u8])>,
}

/// The e-mail for `invoice`: to the buyer (when they gave an address) and, hidden from them,
/// to the client's finance team; replies go to finance.
pub fn build(
    invoice: &Invoice,
    files: &Attachments<'_>,
    finance_email: &str,
    sender: &Sender,
    now: OffsetDateTime,
) -> std::io::Result<OutgoingEmail> {
    envelope(
        &Letter {
            seller: &invoice.seller,
            buyer: &invoice.buyer,
            document_id: &invoice.invoice_id,
            subject: subject(invoice),
            headers: vec![("X-Invoice-Id", &invoice.invoice_id)],
            text: text_body(invoice),
            html: html_body(invoice),
            tags: tags(invoice),
        },
        files,
        finance_email,
        sender,
        now,
    )
}

/// The e-mail for a credit note, sent like its invoice's (same recipients, same attachments),
/// naming the note and the invoice it corrects; its tags lead bounces to that invoice.
pub fn build_credit_note(
    note: &CreditNote,
    files: &Attachments<'_>,
    finance_email: &str,
    sender: &Sender,
    now: OffsetDateTime,
) -> std::io::Result<OutgoingEmail> {
    envelope(
        &Letter {
            seller: &note.seller,
            buyer: &note.buyer,
            document_id: &note.credit_note_id,
            subject: credit_note_subject(note),
            headers: vec![
                ("X-Invoice-Id", &note.invoice_id),
                ("X-Credit-Note-Id", &note.credit_note_id),
            ],
            text: credit_note_text(note),
            html: credit_note_html(note),
            tags: credit_note_tags(note),
        },
        files,
        finance_email,
        sender,
        now,
    )
}

/// What differs between an invoice's e-mail and a credit note's.
struct Letter<'a> {
    seller: &'a Party,
    buyer: &'a Party,
    /// The attached document's number: the PDF's name and the Message-ID's.
    document_id: &'a str,
    subject: String,
    headers: Vec<(&'static str, &'a str)>,
    text: String,
    html: String,
    tags: Vec<EmailTag>,
}

fn envelope(
    letter: &Letter<'_>,
    files: &Attachments<'_>,
    finance_email: &str,
    sender: &Sender,
    now: OffsetDateTime,
) -> std::io::Result<OutgoingEmail> {
    let (seller, buyer) = (letter.seller, letter.buyer);
    let buyer_email = buyer.email.clone().filter(|e| !e.trim().is_empty());
    let (to, bcc) = match &buyer_email {
        Some(buyer) if !buyer.eq_ignore_ascii_case(finance_email) => {
            (vec![buyer.clone()], vec![finance_email.to_owned()])
        }
        _ => (vec![finance_email.to_owned()], vec![]),
    };
    let to_header: Address<'_> = match &buyer_email {
        Some(address) => Address::new_address(Some(buyer.name.as_str()), address.as_str()),
        None => Address::new_address(Some(seller.name.as_str()), finance_email),
    };
    let mut raw = MessageBuilder::new()
        .from((seller.name.as_str(), sender.address.as_str()))
        .to(to_header)
        .reply_to((seller.name.as_str(), finance_email))
        .subject(letter.subject.as_str())
        .message_id(format!(
            "{}.{}@{}",
            letter.document_id,
            now.unix_timestamp(),
            sender.domain()
        ))
        .date(now.unix_timestamp());
    for (name, value) in &letter.headers {
        raw = raw.header(*name, mail_builder::headers::raw::Raw::new(*value));
    }
    let raw = raw
        .text_body(letter.text.as_str())
        .html_body(letter.html.as_str())
        .attachment("application/pdf", format!("{}.pdf", letter.document_id), files.pdf)
        .attachment("application/xml", format!("{}.xml", files.file_stem), files.xml);
    let raw = match files.cdr {
        Some(cdr) => raw.attachment("application/zip", format!("R-{}.zip", files.file_stem), cdr),
        None => raw,
    };
    let raw = match files.evidence {
        Some((name, csv)) => raw.attachment("text/csv", name.to_owned(), csv),
        None => raw,
    }
    .write_to_vec()?;
    Ok(OutgoingEmail {
        from: sender.address.clone(),
        to,
        bcc,
        raw,
        tags: letter.tags.clone(),
    })
}

/// The tags the configuration set's bounce and complaint events carry back to email-events,
/// which finds the invoice by them.
pub fn tags(invoice: &Invoice) -> Vec<EmailTag> {
    invoice_tags(&invoice.client_id, &invoice.invoice_id, &[])
}

/// Tag names, as email-events reads them from SES events.
pub use backoffice_edge::mail::{TAG_CLIENT, TAG_INVOICE};
pub const TAG_CREDIT_NOTE: &str = "credit_note_id";

/// A note's e-mail carries the corrected invoice's tags (a bounce is that buyer's address) and
/// its own number.
pub fn credit_note_tags(note: &CreditNote) -> Vec<EmailTag> {
    invoice_tags(
        &note.client_id,
        &note.invoice_id,
        &[(TAG_CREDIT_NOTE, &note.credit_note_id)],
    )
}

/// "Nota de crédito electrónica FC01-00000001 (modifica F001-00000042) - Seller".
pub fn credit_note_subject(note: &CreditNote) -> String {
    format!(
        "Nota de crédito electrónica {} (modifica {}) - {}",
        note.credit_note_id, note.invoice_id, note.seller.name
    )
}

fn credit_note_text(note: &CreditNote) -> String {
    format!(
        "Estimado(a) {buyer}:\n\n\
         Adjuntamos la nota de crédito electrónica {number} emitida por {seller} (RUC {ruc}), que modifica su {kind} {invoice} del {invoice_date}.\n\n\
         Motivo: {code} - {reason}\n\
         Sustento: {description}\n\
         Fecha de emisión: {issued}\n\
         Importe total: {total}\n\
         SON: {words}\n\n\
         Van adjuntos la representación impresa (PDF), el comprobante electrónico firmado (XML) y la constancia de recepción de SUNAT (CDR). Para cualquier consulta, responda a este correo.\n",
        buyer = note.buyer.name,
        number = note.credit_note_id,
        seller = note.seller.name,
        ruc = note.seller.document.number(),
        kind = title_case(note.invoice_kind.title()).to_lowercase(),
        invoice = note.invoice_id,
        invoice_date = note.invoice_issue_date,
        code = note.reason.code(),
        reason = note.reason.description(),
        description = note.description,
        issued = note.issue_date,
        total = note.totals.total,
        words = note.total_in_words,
    )
}

fn credit_note_html(note: &CreditNote) -> String {
    let e = |s: &str| escape(s);
    format!(
        "<!DOCTYPE html><html lang=\"es\"><body style=\"font-family:Arial,sans-serif\">\
         <p>Estimado(a) {buyer}:</p>\
         <p>Adjuntamos la nota de crédito electrónica <strong>{number}</strong> emitida por {seller} (RUC {ruc}), que modifica su {kind} <strong>{invoice}</strong> del {invoice_date}.</p>\
         <p>Motivo: {code} - {reason}<br>Sustento: {description}<br>Fecha de emisión: {issued}<br>Importe total: <strong>{total}</strong><br>SON: {words}</p>\
         <p>Van adjuntos la representación impresa (PDF), el comprobante electrónico firmado (XML) y la constancia de recepción de SUNAT (CDR).</p></body></html>",
        buyer = e(&note.buyer.name),
        number = e(&note.credit_note_id),
        seller = e(&note.seller.name),
        ruc = e(note.seller.document.number()),
        kind = e(&title_case(note.invoice_kind.title()).to_lowercase()),
        invoice = e(&note.invoice_id),
        invoice_date = note.invoice_issue_date,
        code = e(note.reason.code()),
        reason = e(note.reason.description()),
        description = e(&note.description),
        issued = note.issue_date,
        total = e(&note.totals.total.to_string()),
        words = e(&note.total_in_words),
    )
}

pub fn subject(invoice: &Invoice) -> String {
    format!(
        "{} {} - {}",
        title_case(invoice.kind.title()),
        invoice.invoice_id,
        invoice.seller.name
    )
}

/// "BOLETA DE VENTA ELECTRÓNICA" → "Boleta de venta electrónica".
fn title_case(title: &str) -> String {
    let lower = title.to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn text_body(invoice: &Invoice) -> String {
    format!(
        "Estimado(a) {buyer}:\n\n\
         Adjuntamos su {kind} {number} emitida por {seller} (RUC {ruc}).\n\n\
         Fecha de emisión: {issued}\n\
         Fecha de vencimiento: {due}\n\
         Importe total: {total}\n\
         SON: {words}\n\n\
         {bills}\n\n\
         Van adjuntos la representación impresa (PDF), el comprobante electrónico firmado (XML) y la constancia de recepción de SUNAT (CDR){evidence}. Para cualquier consulta sobre el pago, responda a este correo.\n",
        buyer = invoice.buyer.name,
        kind = title_case(invoice.kind.title()).to_lowercase(),
        number = invoice.invoice_id,
        seller = invoice.seller.name,
        ruc = invoice.seller.document.number(),
        issued = invoice.issue_date,
        due = invoice.due_date,
        total = invoice.totals.total,
        words = invoice.total_in_words,
        bills = what_it_bills(invoice).join("\n"),
        evidence = evidence_note(invoice),
    )
}

fn html_body(invoice: &Invoice) -> String {
    let e = |s: &str| escape(s);
    let rows: String = invoice
        .lines
        .iter()
        .map(|l| {
            format!(
                "<tr><td>{}</td><td>{}</td><td style=\"text-align:right\">{}</td></tr>",
                l.quantity,
                e(&l.description),
                e(&l.total.to_string())
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html><html lang=\"es\"><body style=\"font-family:Arial,sans-serif\">\
         <p>Estimado(a) {buyer}:</p>\
         <p>Adjuntamos su {kind} <strong>{number}</strong> emitida por {seller} (RUC {ruc}).</p>\
         <table cellpadding=\"4\" style=\"border-collapse:collapse\">\
         <tr><th>Cant.</th><th>Descripción</th><th>Importe</th></tr>{rows}\
         <tr><td></td><td>Op. gravadas</td><td style=\"text-align:right\">{subtotal}</td></tr>\
         <tr><td></td><td>{tax_name}</td><td style=\"text-align:right\">{tax}</td></tr>\
         <tr><td></td><td><strong>Importe total</strong></td><td style=\"text-align:right\"><strong>{total}</strong></td></tr>\
         </table>\
         <p>SON: {words}</p>\
         <p>Fecha de emisión: {issued}<br>Fecha de vencimiento: {due}<br>{bills}</p>\
         <p>Van adjuntos la representación impresa (PDF), el comprobante electrónico firmado (XML) y la constancia de recepción de SUNAT (CDR){evidence}.</p></body></html>",
        buyer = e(&invoice.buyer.name),
        kind = e(&title_case(invoice.kind.title()).to_lowercase()),
        number = e(&invoice.invoice_id),
        seller = e(&invoice.seller.name),
        ruc = e(invoice.seller.document.number()),
        subtotal = e(&invoice.totals.subtotal.to_string()),
        tax_name = e(&invoice.tax.name),
        tax = e(&invoice.totals.tax.to_string()),
        total = e(&invoice.totals.total.to_string()),
        words = e(&invoice.total_in_words),
        issued = invoice.issue_date,
        due = invoice.due_date,
        bills = what_it_bills(invoice)
            .iter()
            .map(|l| e(l))
            .collect::<Vec<_>>()
            .join("<br>"),
        evidence = evidence_note(invoice),
    )
}

/// The sale and its shipment, or the billing run of the call center's invoice.
fn what_it_bills(invoice: &Invoice) -> Vec<String> {
    match (&invoice.billing_run, &invoice.sale_id) {
        (Some(run), _) => vec![format!("Servicios de {}: liquidación {}", run.month, run.run_id)],
        (None, Some(sale)) => vec![
            format!("Venta: {sale}"),
            format!(
                "Envío: {} (seguimiento {})",
                invoice.shipment_id.as_ref().map(|s| s.as_str()).unwrap_or("-"),
                invoice.tracking_reference.as_deref().unwrap_or("-")
            ),
        ],
        (None, None) => Vec::new(),
    }
}

fn evidence_note(invoice: &Invoice) -> &'static str {
    if invoice.billing_run.is_some() {
        ", y la evidencia de los eventos facturados (CSV)"
    } else {
        ""
    }
}

/// Names come from pre-sales typed by agents: never trusted as HTML.
fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
