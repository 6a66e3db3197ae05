//! One invoice's account and a client's ageing:
//! - `GET /invoices/{id}`: the invoice with its payments, credit notes, outstanding balance,
//!   e-mail and SUNAT status, and short-lived links to its PDF and XML;
//! - `POST /invoices/{id}/credit-notes`: asks invoice-issue (billing queue) for a credit note,
//!   total or by lines, after checking here what the issuer checks again in its transaction:
//!   an accepted invoice, and no more than what is still owed;
//! - `GET /receivables/aging?as_of=`: what is owed, by buyer and by days past due.

use std::time::Duration;

use async_trait::async_trait;
use backoffice_domain::credit_note::{CreditNoteDraft, CreditNoteReason, CreditedLine, MAX_DESCRIPTION_CHARS};
use backoffice_domain::events::CreditNoteRequested;
use backoffice_domain::money::Money;
use backoffice_domain::principal::{Principal, Role};
use backoffice_domain::receivable::{Ageing, Buckets, Receivable, age};
use backoffice_domain::validation::Invalid;
use backoffice_edge::http::ApiError;
use backoffice_store::accounts::InvoiceFile;
use backoffice_store::sdk::SdkClient;
use serde::Deserialize;
use serde_json::{Value, json};

/// How long a link to an invoice's PDF or XML works.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

/// Short-lived links to stored documents.
#[async_trait]
pub trait DocumentLinks: Send + Sync {
    async fn link(&self, key: &str, ttl: Duration) -> Result<String, PortError>;
}

/// Presigned S3 GETs in one bucket.
pub struct S3Links {
    pub client: SdkClient<aws_sdk_s3::Client>,
    pub bucket: String,
}

#[async_trait]
impl DocumentLinks for S3Links {
    async fn link(&self, key: &str, ttl: Duration) -> Result<String, PortError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl).map_err(|e| PortError(e.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| PortError(e.to_string()))?;
        Ok(request.uri().to_owned())
    }
}

/// The body of `POST /invoices/{id}/credit-notes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteBody {
    /// SUNAT catalog 09 code: "01" cancellation, "07" return, ...
    pub reason: CreditNoteReason,
    pub description: String,
    /// Empty or absent: the whole invoice.
    #[serde(default)]
    pub lines: Vec<CreditedLine>,
}

/// The invoice file as finance reads it (links added by the caller).
pub fn file_json(file: &InvoiceFile) -> Value {
    let account = &file.account;
    let money = |minor: i64| Money::from_minor(minor, account.currency);
    let notes: Vec<Value> = file
        .credit_notes
        .iter()
        .map(|n| {
            json!({
                "credit_note_id": n.note.credit_note_id,
                "issue_date": n.note.issue_date.to_string(),
                "reason": n.note.reason,
                "description": n.note.description,
                "total": n.note.totals.total,
                "electronic_status": n.electronic.as_ref().map(|e| e.status.as_str()).unwrap_or("PENDING_SUBMISSION"),
                "requested_by": n.requested_by,
                "email_status": if n.email.is_some() { "SENT" } else { "PENDING" },
                "email": n.email,
            })
        })
        .collect();
    json!({
        "invoice": file.stored.invoice,
        "collection_status": account.status(),
        "total": money(account.total_minor),
        "credited": money(account.credited_minor),
        "paid": money(account.paid_minor),
        "outstanding": account.outstanding(),
        "payments": file.payments,
        "credit_notes": notes,
        "reminders": file.reminders.iter().map(|r| json!({
            "offset_days": r.offset,
            "state": r.state,
            "sent_at": r.sent_at.map(|at| at.to_string()),
            "message_id": r.message_id,
            "recipients": r.recipients,
        })).collect::<Vec<_>>(),
        "electronic_status": file.summary.electronic_status.as_str(),
        "sunat_code": file.summary.sunat_code,
        "sunat_description": file.summary.sunat_description,
        "email_status": file.summary.email_status,
        "email": file.stored.email,
    })
}

/// Finance, supervisors and admins read accounts.
pub fn may_read(principal: &Principal) -> Result<(), ApiError> {
    if principal.is_any(&[Role::Finance, Role::Supervisor, Role::Admin]) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "invoices are read by finance, supervisors and admins".into(),
        ))
    }
}

/// The request a credit-note call makes, after the checks the issuer repeats: the invoice is
/// valid at SUNAT and the note fits in what is still owed. Refusals name the field.
pub fn credit_request(
    file: &InvoiceFile,
    body: &CreditNoteBody,
    request_id: &str,
    requested_by: &str,
    now: time::OffsetDateTime,
) -> Result<CreditNoteRequested, ApiError> {
    let description = body.description.trim();
    if description.is_empty() || description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::Validation(vec![
            Invalid::new(
                "description_length",
                format!("the description is 1 to {MAX_DESCRIPTION_CHARS} characters"),
            )
            .at("description"),
        ]));
    }
    if !file.summary.electronic_status.is_valid() {
        return Err(ApiError::Validation(vec![
            Invalid::new(
                "invoice_not_accepted",
                format!(
                    "the invoice is {} at SUNAT: only an accepted invoice can be credited",
                    file.summary.electronic_status.as_str()
                ),
            )
            .at("invoice_id"),
        ]));
    }
    let invoice = &file.stored.invoice;
    // The draft only prices the note here (in a stand-in series of the invoice's letter);
    // invoice-issue numbers it in its own series.
    let series = format!("{}000", invoice.series.chars().next().unwrap_or('F'));
    let draft = CreditNoteDraft::requested(
        invoice,
        &body.lines,
        &series,
        body.reason,
        description,
        invoice.issue_date,
        now,
    )
    .map_err(|e| ApiError::Validation(vec![Invalid::new("invalid_lines", e.to_string()).at("lines")]))?;
    let field = if body.lines.is_empty() { "reason" } else { "lines" };
    file.account
        .credit(&draft.totals().total)
        .map_err(|e| ApiError::Validation(vec![Invalid::new(e.code, e.detail.clone()).at(field)]))?;
    Ok(CreditNoteRequested {
        request_id: request_id.to_owned(),
        client_id: invoice.client_id.clone(),
        invoice_id: invoice.invoice_id.clone(),
        reason: body.reason,
        description: description.to_owned(),
        lines: body.lines.clone(),
        requested_by: requested_by.to_owned(),
    })
}

/// Buyers listed per currency unless asked otherwise: the largest debts first (a client with
/// tens of thousands of buyers would otherwise outgrow a Lambda response).
pub const DEFAULT_BUYERS: usize = 100;
pub const MAX_BUYERS: usize = 1000;

/// The ageing as JSON: amounts as decimals, buckets that add up to each total, the `buyers`
/// largest debtors of each currency (all of them count in the total).
pub fn ageing_json(client_id: &str, as_of: time::Date, ageings: &[Ageing], invoices: usize, buyers: usize) -> Value {
    let buckets = |b: &Buckets, currency| {
        let m = |minor| Money::from_minor(minor, currency);
        json!({
            "not_due": m(b.not_due),
            "days_1_30": m(b.days_1_30),
            "days_31_60": m(b.days_31_60),
            "days_61_90": m(b.days_61_90),
            "over_90": m(b.over_90),
            "total": m(b.total()),
        })
    };
    let currencies: Vec<Value> = ageings
        .iter()
        .map(|a| {
            let mut largest: Vec<(&String, &Buckets)> = a.by_buyer.iter().collect();
            largest.sort_by(|x, y| y.1.total().cmp(&x.1.total()).then_with(|| x.0.cmp(y.0)));
            json!({
                "currency": a.currency.code(),
                "total": buckets(&a.total, a.currency),
                "buyers": a.by_buyer.len(),
                "by_buyer": largest.into_iter().take(buyers).map(|(buyer, b)| {
                    let mut row = buckets(b, a.currency);
                    row["buyer_document"] = json!(buyer);
                    row
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "client": client_id,
        "as_of": as_of.to_string(),
        "open_invoices": invoices,
        "currencies": currencies,
    })
}

/// What each open invoice still owes, for [`age`].
pub fn receivables(open: &[backoffice_store::accounts::OpenInvoice]) -> Vec<Receivable> {
    open.iter()
        .map(|i| Receivable {
            buyer: i.buyer.document.number().to_owned(),
            due_date: i.due_date,
            outstanding: i.account.outstanding(),
        })
        .collect()
}

/// The ageing of `open` on `as_of`.
pub fn ageing(open: &[backoffice_store::accounts::OpenInvoice], as_of: time::Date) -> Vec<Ageing> {
    age(as_of, &receivables(open))
}

/// Finance and admins ask for credit notes.
pub fn may_credit(principal: &Principal) -> Result<(), ApiError> {
    if principal.is_any(&[Role::Finance, Role::Admin]) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "credit notes are asked for by finance and admins".into(),
        ))
    }
}
