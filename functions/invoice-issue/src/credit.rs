//! Credit notes (type 07): each `CreditNoteRequested` on the billing queue becomes at most one
//! note, numbered without gaps in its own series (`FC01`, `BC01`), signed and submitted to
//! SUNAT exactly like an invoice. The store refuses a note that would credit more than its
//! invoice's total or credit an invoice SUNAT has not accepted.
//!
//! Steps, each safe to repeat: **issue** (the request's note exists, or the next number, the
//! note, the request guard and the invoice's credited amount are written in one transaction),
//! then the **electronic document** and its **submission** as for invoices; once SUNAT accepts
//! (or observes) it, its **PDF** (the representación impresa) is stored and it is **e-mailed**
//! like an invoice, under a lease on the note and recorded once. A note SUNAT has not answered,
//! or whose e-mail has not gone out, stays on the pending index for the sweep.

use backoffice_domain::Clock;
use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::credit_note::{CreditNote, CreditNoteDraft};
use backoffice_domain::electronic::ElectronicStatus;
use backoffice_domain::events::CreditNoteRequested;
use backoffice_domain::invoice::{Invoice, InvoiceError};
use backoffice_domain::retry::{Retry, RetryPolicy};
use backoffice_edge::mail::Mailer;
use backoffice_store::StoreError;
use backoffice_store::config::BillingDirectory;
use backoffice_store::credit_notes::{CreditNoteStore, CreditOutcome, StoredCreditNote};
use backoffice_store::documents::DocumentStore;
use backoffice_store::invoices::{ElectronicRecord, EmailClaim, EmailRecord, InvoiceStore, PdfRecord};
use backoffice_store::payments::PaymentLedger;
use backon::Retryable;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime};

use crate::sunat::{IssuerKeys, TaxAuthority};
use crate::{ACTOR, EMAIL_LEASE, IssueError, Issuer, Numbering, Outcome, email, numbering_backoff};
use backoffice_store::invoices::SeriesHead;

/// The document being made electronic.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Paper<'a> {
    Invoice(&'a Invoice),
    CreditNote(&'a CreditNote),
}

impl<'a> Paper<'a> {
    /// Its legal number (`F001-00000042`, `FC01-00000001`).
    pub(crate) fn label(self) -> &'a str {
        match self {
            Paper::Invoice(i) => &i.invoice_id,
            Paper::CreditNote(n) => &n.credit_note_id,
        }
    }

    pub(crate) fn ruc(self) -> &'a str {
        match self {
            Paper::Invoice(i) => i.seller.document.number(),
            Paper::CreditNote(n) => n.seller.document.number(),
        }
    }

    pub(crate) fn issued_at(self) -> OffsetDateTime {
        match self {
            Paper::Invoice(i) => i.issued_at,
            Paper::CreditNote(n) => n.issued_at,
        }
    }

    pub(crate) fn issue_date(self) -> Date {
        match self {
            Paper::Invoice(i) => i.issue_date,
            Paper::CreditNote(n) => n.issue_date,
        }
    }

    pub(crate) fn document_key(self, name: &str) -> String {
        match self {
            Paper::Invoice(i) => i.document_key(name),
            Paper::CreditNote(n) => n.document_key(name),
        }
    }

    /// `{RUC}-{type}-{series}-{number}`.
    pub(crate) fn file_stem(self) -> String {
        match self {
            Paper::Invoice(i) => {
                sunat_ubl::file_stem(self.ruc(), sunat_ubl::invoice_type_code(i.kind), &i.series, i.number)
            }
            Paper::CreditNote(n) => sunat_ubl::file_stem(self.ruc(), sunat_ubl::CREDIT_NOTE, &n.series, n.number),
        }
    }

    pub(crate) fn build_xml(self) -> Result<String, sunat_ubl::UblError> {
        match self {
            Paper::Invoice(i) => sunat_ubl::build_invoice(i),
            Paper::CreditNote(n) => sunat_ubl::build_credit_note(n),
        }
    }
}

impl<S, B, D, M, K, T, Y> Issuer<S, B, D, M, K, T, Y>
where
    S: InvoiceStore + CreditNoteStore + PaymentLedger,
    B: BillingDirectory,
    D: DocumentStore,
    M: Mailer,
    K: Clock,
    T: TaxAuthority,
    Y: IssuerKeys,
{
    /// The request's credit note: issued now or by an earlier delivery, then submitted unless
    /// SUNAT has answered for good.
    pub async fn credit(&self, request: &CreditNoteRequested, correlation_id: &str) -> Result<Outcome, IssueError> {
        let client_id = &request.client_id;
        let (invoice_id, credit_note_id) = match self
            .invoices
            .credit_note_for_request(client_id, &request.request_id)
            .await?
        {
            Some(ids) => ids,
            None => self.issue_credit_note(request, correlation_id).await?,
        };
        self.submit_credit_note(client_id, &invoice_id, &credit_note_id).await
    }

    async fn issue_credit_note(
        &self,
        request: &CreditNoteRequested,
        correlation_id: &str,
    ) -> Result<(String, String), IssueError> {
        let client_id = &request.client_id;
        let Some(stored) = self.invoices.load(client_id, &request.invoice_id).await? else {
            return Err(refused(
                request,
                format!("client {client_id} has no invoice {}", request.invoice_id),
            ));
        };
        let invoice = &stored.invoice;
        let profile = self.profile(client_id).await?;
        let series = profile.credit_note_series(invoice.kind);
        let now = self.clock.now();
        let today = profile
            .local_time()?
            .local(now)
            .ok_or_else(|| InvoiceError::Invalid(format!("{now} is beyond the calendar")))?
            .date();
        let take_next = || async {
            let head = self.heads.head(&self.invoices, client_id, series).await?;
            // A note is never dated before the last of its series, nor before its invoice.
            let issue_date = head.issue_date.map_or(today, |last| last.max(today));
            let draft = CreditNoteDraft::requested(
                invoice,
                &request.lines,
                series,
                request.reason,
                &request.description,
                issue_date,
                now,
            )
            .map_err(|e| refused(request, e.to_string()))?;
            let note = draft.numbered(head.number + 1)?;
            let audit = AuditEntry::new(
                &note.credit_note_id,
                1,
                note.issued_at,
                &Actor::system(ACTOR),
                "ISSUED",
                "ISSUED",
            )
            .details(json!({
                "invoice_id": note.invoice_id,
                "reason": note.reason,
                "total": note.totals.total,
                "request_id": request.request_id,
                "requested_by": request.requested_by,
                "correlation_id": correlation_id,
            }))
            .seal(GENESIS_HASH);
            match self
                .invoices
                .issue_credit_note(invoice, &note, &request.request_id, &request.requested_by, &audit)
                .await?
            {
                CreditOutcome::Issued => {
                    self.heads.advanced(
                        client_id,
                        series,
                        SeriesHead {
                            number: note.number,
                            issue_date: Some(note.issue_date),
                        },
                    );
                    tracing::info!(credit_note_id = %note.credit_note_id, invoice_id = %note.invoice_id, total = %note.totals.total, "credit note issued");
                    metrics::counter!("CreditNotesIssued").increment(1);
                    Ok((note.invoice_id, note.credit_note_id))
                }
                CreditOutcome::AlreadyIssued {
                    invoice_id,
                    credit_note_id,
                } => Ok((invoice_id, credit_note_id)),
                // Both mean: read the series and the account again, and decide again.
                CreditOutcome::NumberTaken | CreditOutcome::Stale => {
                    self.heads.forget(client_id, series);
                    Err(Numbering::Taken)
                }
                CreditOutcome::NotCreditable(why) => Err(refused(request, why).into()),
            }
        };
        take_next
            .retry(numbering_backoff())
            .when(Numbering::is_taken)
            .await
            .map_err(IssueError::from)
    }

    /// Sign and submit the note unless SUNAT has answered for good; once it accepted (or
    /// observed) the note, store its PDF and e-mail it unless that was done.
    pub async fn submit_credit_note(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
    ) -> Result<Outcome, IssueError> {
        let mut stored = self.load_note(client_id, invoice_id, credit_note_id).await?;
        // Accepted and e-mailed: a redelivery has nothing left to do, not even a read of the XML.
        if stored.email.is_some()
            && let Some(done) = stored.electronic.as_ref().filter(|e| e.status.is_final())
        {
            return Ok(Outcome::Credited {
                credit_note_id: credit_note_id.to_owned(),
                status: done.status,
            });
        }
        let paper = Paper::CreditNote(&stored.note);
        let submitted = async {
            // Notes are read from the store, not carried from their issue: a note without a
            // record may have been signed by an attempt that stopped.
            let (mut record, xml) = self
                .electronic_document(paper, stored.electronic.as_ref(), false)
                .await?;
            let mut cdr = None;
            if record.status == ElectronicStatus::PendingSubmission {
                cdr = self.submit(paper, &mut record, &xml, crate::Keep::RecordNow).await?;
            }
            Ok::<_, IssueError>((record, Some(xml), cdr))
        };
        let (record, xml, cdr) = match submitted.await {
            Ok(done) => done,
            // Another worker (a redelivery, the sweep) recorded SUNAT's answer meanwhile: it stands.
            Err(IssueError::Store(StoreError::Conflict(_))) => {
                stored = self.load_note(client_id, invoice_id, credit_note_id).await?;
                let record = stored
                    .electronic
                    .clone()
                    .filter(|e| e.status.is_final())
                    .ok_or(IssueError::Store(StoreError::Conflict(
                        backoffice_store::ConflictKind::StaleVersion,
                    )))?;
                (record, None, None)
            }
            Err(e) => return Err(e),
        };
        if record.status.is_valid() {
            self.deliver_credit_note(&stored, &record, xml, cdr).await?;
        }
        Ok(Outcome::Credited {
            credit_note_id: credit_note_id.to_owned(),
            status: record.status,
        })
    }

    async fn load_note(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
    ) -> Result<StoredCreditNote, IssueError> {
        self.invoices
            .load_credit_note(client_id, invoice_id, credit_note_id)
            .await?
            .ok_or_else(|| {
                IssueError::Store(StoreError::Corrupt(format!(
                    "credit note {credit_note_id} is referenced but missing"
                )))
            })
    }

    /// E-mail the accepted note under its lease, unless it went out already: a redelivery or
    /// the sweep sends nothing more. `xml` and `cdr` when the caller has them in hand; read
    /// back from the archive otherwise. Failures give the lease back for the sweep's retry.
    async fn deliver_credit_note(
        &self,
        stored: &StoredCreditNote,
        record: &ElectronicRecord,
        xml: Option<Vec<u8>>,
        cdr: Option<Vec<u8>>,
    ) -> Result<(), IssueError> {
        let note = &stored.note;
        if stored.email.is_some() {
            return Ok(());
        }
        let now = self.clock.now();
        match self
            .invoices
            .claim_credit_note_email(
                &note.client_id,
                &note.invoice_id,
                &note.credit_note_id,
                now,
                now + EMAIL_LEASE,
            )
            .await?
        {
            EmailClaim::Claimed => {}
            EmailClaim::AlreadySent(_) => return Ok(()),
            EmailClaim::Busy => return Err(IssueError::EmailInProgress(note.credit_note_id.clone())),
        }
        let mut printed = None;
        match self.deliver_claimed_note(stored, record, xml, cdr, &mut printed).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let attempts = stored.email_attempts.saturating_add(1);
                let retry = RetryPolicy::DELIVERY.after_failure(attempts, self.clock.now());
                if retry == Retry::Park {
                    // The alarm's metric filter matches this message, as for invoices.
                    tracing::error!(credit_note_id = %note.credit_note_id, attempts, "invoice e-mail parked: its attempts are spent");
                }
                if let Err(release) = self
                    .invoices
                    .release_credit_note_email(
                        &note.client_id,
                        &note.invoice_id,
                        &note.credit_note_id,
                        &e.to_string(),
                        retry,
                        printed.as_ref(),
                    )
                    .await
                {
                    // The lease then simply runs out before the next attempt.
                    tracing::warn!(credit_note_id = %note.credit_note_id, error = %release, "could not release the e-mail lease");
                }
                Err(e)
            }
        }
    }

    async fn deliver_claimed_note(
        &self,
        stored: &StoredCreditNote,
        record: &ElectronicRecord,
        xml: Option<Vec<u8>>,
        cdr: Option<Vec<u8>>,
        printed: &mut Option<PdfRecord>,
    ) -> Result<(), IssueError> {
        let note = &stored.note;
        let profile = self.profile(&note.client_id).await?;
        let xml = match xml {
            Some(xml) => xml,
            None => self.archived(&record.xml_key).await?,
        };
        let cdr = match (cdr, &record.cdr_key) {
            (Some(cdr), _) => Some(cdr),
            (None, Some(key)) => self.documents.get(key).await?,
            (None, None) => None,
        };
        let (pdf, fresh) = self.credit_note_pdf(stored, record).await?;
        *printed = fresh;
        let files = email::Attachments {
            pdf: &pdf,
            file_stem: &record.file_stem,
            xml: &xml,
            cdr: cdr.as_deref(),
            evidence: None,
        };
        let now = self.clock.now();
        let message = email::build_credit_note(note, &files, &profile.finance_email, &self.sender, now)
            .map_err(|e| IssueError::Email(e.to_string()))?;
        let message_id = self.mailer.send(&message).await?;
        let sent = EmailRecord {
            message_id: message_id.clone(),
            recipients: message.recipients(),
            sent_at: now,
        };
        if let Err(e) = self
            .invoices
            .record_credit_note_email(
                &note.client_id,
                &note.invoice_id,
                &note.credit_note_id,
                &sent,
                printed.as_ref(),
            )
            .await
        {
            // Sent but not remembered: a retry after the lease would send it again.
            tracing::error!(credit_note_id = %note.credit_note_id, message_id = %message_id, error = %e, "e-mail sent but not recorded");
            return Err(e.into());
        }
        tracing::info!(credit_note_id = %note.credit_note_id, invoice_id = %note.invoice_id, message_id = %message_id, recipients = sent.recipients.len(), "credit note e-mailed");
        metrics::counter!("CreditNotesEmailed").increment(1);
        Ok(())
    }

    /// A stored document's bytes; missing means the archive lost what the record points at.
    async fn archived(&self, key: &str) -> Result<Vec<u8>, IssueError> {
        self.documents
            .get(key)
            .await?
            .ok_or_else(|| IssueError::Store(StoreError::Corrupt(format!("document {key} is recorded but missing"))))
    }

    /// The note's representación impresa, as stored (`{note}.pdf` beside its XML); rendered
    /// and stored until an e-mail's closing write records it (its record, then, as the second
    /// value).
    async fn credit_note_pdf(
        &self,
        stored: &StoredCreditNote,
        record: &ElectronicRecord,
    ) -> Result<(Vec<u8>, Option<PdfRecord>), IssueError> {
        let note = &stored.note;
        let key = note.document_key(&format!("{}.pdf", note.credit_note_id));
        if stored.pdf.is_some()
            && let Some(bytes) = self.documents.get(&key).await?
        {
            return Ok((bytes, None));
        }
        let acceptance = invoice_pdf::Acceptance {
            digest_value: &record.digest_value,
            observed: record.status == ElectronicStatus::Observed,
        };
        let bytes = invoice_pdf::render_credit_note(note, Some(&acceptance))?;
        let pdf = PdfRecord {
            key: key.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
        };
        self.documents.put(&key, bytes.clone(), "application/pdf").await?;
        Ok((bytes, Some(pdf)))
    }
}

/// A request no retry can satisfy as it stands; logged for the alarm and for finance.
fn refused(request: &CreditNoteRequested, why: String) -> IssueError {
    tracing::error!(request_id = %request.request_id, invoice_id = %request.invoice_id, error = %why, error_kind = "credit_note_refused", "credit note not issued");
    IssueError::NotCreditable(why)
}
