//! invoice-issue: each `InvoiceRequested` on the billing queue becomes exactly one invoice,
//! numbered in its client's series without gaps, rendered to PDF, stored, and e-mailed once
//! to the buyer and the client's finance team.
//!
//! Three steps, each safe to repeat:
//! 1. **issue**: the sale's invoice exists, or the next number and the invoice are written in
//!    one transaction (a lost race for a number is retried with the next one);
//! 2. **PDF**: rendered deterministically and stored under a key derived from the number; a
//!    repeat reads the stored bytes back, so the attachment is always the stored file;
//! 3. **e-mail**: sent under a lease, its message id recorded; once recorded, never sent again.
//!
//! A failure in step 2 or 3 leaves the message for a retry and the invoice as it is; the
//! scheduled sweep also delivers invoices whose e-mail is still pending.

pub mod email;

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use backoffice_domain::Clock;
use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::events::InvoiceRequested;
use backoffice_domain::invoice::{BillingProfile, InvoiceDraft, InvoiceError};
use backoffice_domain::retry::{Retry, RetryPolicy};
use backoffice_domain::wire::{self, WireError};
use backoffice_edge::mail::{MailError, Mailer};
use backoffice_edge::queue;
use backoffice_edge::relay::SWEEP_MARGIN;
use backoffice_store::StoreError;
use backoffice_store::config::BillingDirectory;
use backoffice_store::documents::DocumentStore;
use backoffice_store::invoices::{EmailClaim, EmailRecord, InvoiceStore, IssueOutcome, PdfRecord, StoredInvoice};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use email::Sender;

/// Who writes the invoices' audit records.
pub const ACTOR: &str = "invoice-issue";

/// How many times one delivery tries for a number before leaving the message for later.
const NUMBER_ATTEMPTS: u32 = 60;
/// How long a worker holds the right to send an invoice's e-mail.
const EMAIL_LEASE: time::Duration = time::Duration::seconds(60);

pub struct Issuer<S, B, D, M, K> {
    pub invoices: S,
    pub billing: B,
    pub documents: D,
    pub mailer: M,
    pub clock: K,
    pub sender: Sender,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Not an InvoiceRequested we can read: retrying cannot help, the DLQ keeps it for a person.
    #[error("poison message: {0}")]
    Poison(#[from] WireError),
    #[error(transparent)]
    Invoice(#[from] InvoiceError),
    #[error("client {0} has no billing profile")]
    NoBillingProfile(String),
    #[error("no number after {NUMBER_ATTEMPTS} attempts: the series is busy")]
    Contention,
    #[error("another worker is sending invoice {0}")]
    EmailInProgress(String),
    #[error("cannot render the PDF: {0}")]
    Render(#[from] invoice_pdf::RenderError),
    #[error("cannot build the e-mail: {0}")]
    Email(String),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Issued (now or by an earlier delivery) and e-mailed by this call.
    Delivered { invoice_id: String, message_id: String },
    /// Its e-mail had gone out already: nothing to do.
    AlreadyDelivered { invoice_id: String },
}

impl<S, B, D, M, K> Issuer<S, B, D, M, K>
where
    S: InvoiceStore,
    B: BillingDirectory,
    D: DocumentStore,
    M: Mailer,
    K: Clock,
{
    /// One batch, message by message, starting none within [`MESSAGE_MARGIN`] of `deadline`:
    /// the rest come back untouched instead of the whole batch timing out.
    pub async fn handle(&self, event: SqsEvent, deadline: OffsetDateTime) -> SqsBatchResponse {
        queue::each_message_in_time(
            event,
            || self.clock.now() + MESSAGE_MARGIN >= deadline,
            |body| async move { self.process(&body).await },
        )
        .await
    }

    pub async fn process(&self, body: &str) -> Result<Outcome, IssueError> {
        let incoming = wire::open::<InvoiceRequested>(body)?;
        let request = incoming.body;
        // Messages sent before correlation ids existed fall back to the pre-sale's id.
        let correlation_id = incoming
            .correlation_id
            .unwrap_or_else(|| request.presale_id.to_string());
        let (invoice_id, profile) = match self.invoices.invoice_for_sale(&request.sale_id).await? {
            // A redelivery: the profile is read only if the e-mail is still to be sent.
            Some(existing) => (existing, None),
            None => {
                let profile = self.profile(&request.client_id).await?;
                (self.issue(&request, &profile, &correlation_id).await?, Some(profile))
            }
        };
        self.deliver(&request.client_id, &invoice_id, profile.as_ref()).await
    }

    async fn profile(&self, client_id: &str) -> Result<BillingProfile, IssueError> {
        match self.billing.billing_profile(client_id).await? {
            Some(profile) => Ok(profile),
            None => {
                // The alarm's metric filter matches `error_kind`: the client's sales wait,
                // unbilled, until operations configure its billing profile.
                tracing::error!(
                    client_id,
                    error_kind = "billing_profile_missing",
                    "client has no billing profile: its sales cannot be invoiced"
                );
                Err(IssueError::NoBillingProfile(client_id.to_owned()))
            }
        }
    }

    /// The sale's invoice number: allocated now, or the one a concurrent delivery allocated.
    async fn issue(
        &self,
        request: &InvoiceRequested,
        profile: &BillingProfile,
        correlation_id: &str,
    ) -> Result<String, IssueError> {
        let draft = InvoiceDraft::prepare(request, profile, self.clock.now())?;
        for attempt in 0..NUMBER_ATTEMPTS {
            let head = self.invoices.series_head(&request.client_id, draft.series()).await?;
            let invoice = draft.numbered_not_before(head.number + 1, head.issue_date)?;
            let audit = AuditEntry::new(
                &invoice.invoice_id,
                1,
                invoice.issued_at,
                &Actor::system(ACTOR),
                "ISSUED",
                "ISSUED",
            )
            .details(json!({
                "sale_id": invoice.sale_id,
                "total": invoice.totals.total,
                "correlation_id": correlation_id,
            }))
            .seal(GENESIS_HASH);
            match self.invoices.issue(&invoice, &audit).await? {
                IssueOutcome::Issued => {
                    tracing::info!(invoice_id = %invoice.invoice_id, sale_id = %invoice.sale_id, total = %invoice.totals.total, "invoice issued");
                    return Ok(invoice.invoice_id);
                }
                IssueOutcome::SaleAlreadyInvoiced => {
                    return self.invoices.invoice_for_sale(&request.sale_id).await?.ok_or_else(|| {
                        IssueError::Store(StoreError::Corrupt(format!(
                            "sale {} is invoiced but has no invoice id",
                            request.sale_id
                        )))
                    });
                }
                IssueOutcome::NumberTaken => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        Err(IssueError::Contention)
    }

    /// Store the PDF and send the e-mail unless done already. `profile` is the client's, when
    /// the caller has read it already.
    pub async fn deliver(
        &self,
        client_id: &str,
        invoice_id: &str,
        profile: Option<&BillingProfile>,
    ) -> Result<Outcome, IssueError> {
        let stored = self.invoices.load(client_id, invoice_id).await?.ok_or_else(|| {
            IssueError::Store(StoreError::Corrupt(format!(
                "invoice {invoice_id} is referenced but missing"
            )))
        })?;
        if stored.email.is_some() {
            return Ok(Outcome::AlreadyDelivered {
                invoice_id: invoice_id.to_owned(),
            });
        }
        let loaded;
        let profile = match profile {
            Some(profile) => profile,
            None => {
                loaded = self.profile(client_id).await?;
                &loaded
            }
        };
        let pdf = self.pdf(&stored).await?;
        let now = self.clock.now();
        match self
            .invoices
            .claim_email(client_id, invoice_id, now, now + EMAIL_LEASE)
            .await?
        {
            EmailClaim::Claimed => {}
            EmailClaim::AlreadySent(_) => {
                return Ok(Outcome::AlreadyDelivered {
                    invoice_id: invoice_id.to_owned(),
                });
            }
            EmailClaim::Busy => return Err(IssueError::EmailInProgress(invoice_id.to_owned())),
        }
        let message = match email::build(&stored.invoice, &pdf, &profile.finance_email, &self.sender, now) {
            Ok(message) => message,
            Err(e) => {
                self.release(&stored, &e.to_string()).await;
                return Err(IssueError::Email(e.to_string()));
            }
        };
        match self.mailer.send(&message).await {
            Ok(message_id) => {
                let record = EmailRecord {
                    message_id: message_id.clone(),
                    recipients: message.recipients(),
                    sent_at: now,
                };
                if let Err(e) = self.invoices.record_email(client_id, invoice_id, &record).await {
                    // Sent but not remembered: a retry after the lease would send it again.
                    tracing::error!(invoice_id, message_id = %message_id, error = %e, "e-mail sent but not recorded");
                    return Err(e.into());
                }
                tracing::info!(invoice_id, message_id = %message_id, recipients = record.recipients.len(), "invoice e-mailed");
                Ok(Outcome::Delivered {
                    invoice_id: invoice_id.to_owned(),
                    message_id,
                })
            }
            Err(e) => {
                self.release(&stored, &e.to_string()).await;
                Err(e.into())
            }
        }
    }

    /// Give the e-mail lease back after a failed attempt, due again on the retry schedule, or
    /// parked once its attempts are spent.
    async fn release(&self, stored: &StoredInvoice, reason: &str) {
        let (client_id, invoice_id) = (&stored.invoice.client_id, &stored.invoice.invoice_id);
        let attempts = stored.email_attempts.saturating_add(1);
        let retry = RetryPolicy::DELIVERY.after_failure(attempts, self.clock.now());
        if retry == Retry::Park {
            // The alarm's metric filter matches this message.
            tracing::error!(invoice_id = %invoice_id, attempts, "invoice e-mail parked: its attempts are spent");
        }
        if let Err(e) = self.invoices.release_email(client_id, invoice_id, reason, retry).await {
            // The lease then simply runs out before the next attempt.
            tracing::warn!(invoice_id = %invoice_id, error = %e, "could not release the e-mail lease");
        }
    }

    /// The invoice's PDF bytes, as stored.
    async fn pdf(&self, stored: &StoredInvoice) -> Result<Vec<u8>, IssueError> {
        let key = stored.invoice.pdf_key();
        if stored.pdf.is_some()
            && let Some(bytes) = self.documents.get(&key).await?
        {
            return Ok(bytes);
        }
        let bytes = invoice_pdf::render(&stored.invoice, None)?;
        let record = PdfRecord {
            key: key.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
        };
        self.documents.put(&key, bytes.clone(), "application/pdf").await?;
        self.invoices
            .record_pdf(&stored.invoice.client_id, &stored.invoice.invoice_id, &record)
            .await?;
        Ok(bytes)
    }

    /// Deliver invoices whose e-mail is due (scheduled every few minutes): after a mail outage
    /// outlasted the message's retries, or a crash between steps. Failures wait for their
    /// retry time behind newer invoices; the sweep stops [`SWEEP_MARGIN`] before `deadline`.
    pub async fn sweep(&self, deadline: OffsetDateTime) -> Result<serde_json::Value, StoreError> {
        let (mut delivered, mut failed) = (0, 0);
        let mut stopped_early = false;
        for (client_id, invoice_id) in self.invoices.pending_emails(self.clock.now(), 50).await? {
            if self.clock.now() + SWEEP_MARGIN >= deadline {
                stopped_early = true;
                break;
            }
            match self.deliver(&client_id, &invoice_id, None).await {
                Ok(_) => delivered += 1,
                // A live lease: its worker is on it.
                Err(IssueError::EmailInProgress(_)) => {}
                Err(e) => {
                    tracing::warn!(invoice_id = %invoice_id, error = %e, "pending invoice not delivered");
                    failed += 1;
                }
            }
        }
        tracing::info!(delivered, failed, stopped_early, "invoice e-mail sweep");
        Ok(json!({"delivered": delivered, "failed": failed, "stopped_early": stopped_early}))
    }
}

/// One invoice (issue, PDF, e-mail) fits in this much of an invocation's time.
pub const MESSAGE_MARGIN: time::Duration = time::Duration::seconds(5);

/// Exponential backoff with full jitter, capped: workers that lost a race for a number spread
/// out instead of colliding again.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = 5u64.saturating_mul(1 << attempt.min(5)).min(100);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(cap_ms + 1)) as u64;
    Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests;
