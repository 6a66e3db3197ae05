//! invoice-issue: each `InvoiceRequested` on the billing queue becomes exactly one invoice,
//! numbered in its client's series without gaps, rendered to PDF, stored, and e-mailed once
//! to the buyer and the client's finance team.
//!
//! Steps, each safe to repeat:
//! 1. **issue**: the sale's invoice exists, or the next number and the invoice are written in
//!    one transaction (a lost race for a number is retried with the next one);
//! 2. under a lease (one worker at a time from here on):
//!    - **electronic document**: the UBL 2.1 XML is built, signed with the issuer's
//!      certificate, stored (`{stem}.xml`) and recorded `PENDING_SUBMISSION`;
//!    - **submission**: sent to SUNAT's billService; its CDR is stored (`R-{stem}.zip`) and the
//!      answer recorded for good: a rejection at once, an acceptance (or observation) by the
//!      e-mail's closing write, sent or released (an attempt that stopped before finds the
//!      stored CDR). Unavailable: retried on the delivery schedule. Rejected: nothing is
//!      e-mailed; finance is alerted;
//!    - **PDF**: rendered as the representación impresa of the accepted document (QR, digest)
//!      and stored; a repeat reads the stored bytes back;
//!    - **e-mail**: PDF, XML and CDR, its message id recorded; once recorded, never sent again.
//!
//! A failure leaves the message for a retry and the invoice as it is; the scheduled sweep also
//! delivers invoices whose delivery is still pending. Credit notes ([`credit`]) take the same
//! steps: submitted, printed (`{note}.pdf`) and e-mailed once, the sweep retrying what is left.

pub mod courier;
pub mod credit;
pub mod email;
pub mod sunat;

use std::time::Duration;

use backon::Retryable;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use backoffice_domain::Clock;
use backoffice_domain::audit::{Actor, AuditEntry, GENESIS_HASH};
use backoffice_domain::electronic::{self, ElectronicStatus};
use backoffice_domain::events::{
    CashCollected, CreditNoteRequested, Event, InvoiceRequested, ServiceInvoiceRequested, ShipmentReturned,
};
use backoffice_domain::invoice::{BillingProfile, InvoiceDraft, InvoiceError};
use backoffice_domain::retry::{Retry, RetryPolicy};
use backoffice_domain::wire::{self, WireError};
use backoffice_edge::mail::{MailError, Mailer};
use backoffice_edge::queue;
use backoffice_edge::relay::SWEEP_MARGIN;
use backoffice_store::StoreError;
use backoffice_store::config::BillingDirectory;
use backoffice_store::credit_notes::CreditNoteStore;
use backoffice_store::documents::DocumentStore;
use backoffice_store::invoices::{
    Closing, ElectronicRecord, EmailClaim, EmailRecord, InvoiceStore, IssueOutcome, PdfRecord, SeriesHead,
    StoredInvoice,
};
use backoffice_store::payments::PaymentLedger;
use serde_json::json;
use sha2::{Digest, Sha256};
use sunat_soap::{Cdr, Outcome as SunatOutcome};
use time::OffsetDateTime;

use credit::Paper;
pub use email::Sender;
use sunat::{IssuerKeys, KeysError, Submitted, TaxAuthority};

/// Who writes the invoices' audit records.
pub const ACTOR: &str = "invoice-issue";

/// How many times one delivery tries for a number before leaving the message for later.
pub(crate) const NUMBER_ATTEMPTS: usize = 60;
/// How long a credit note is left to the message that issued it before the sweep submits it.
const CREDIT_NOTE_GRACE: time::Duration = time::Duration::minutes(2);
/// How long a worker holds the right to send an invoice's e-mail.
pub(crate) const EMAIL_LEASE: time::Duration = time::Duration::seconds(60);

pub struct Issuer<S, B, D, M, K, T, Y> {
    pub invoices: S,
    pub billing: B,
    pub documents: D,
    pub mailer: M,
    pub clock: K,
    pub sender: Sender,
    /// SUNAT's billService (or an OSE's).
    pub authority: T,
    /// Issuers' certificates and SOL credentials.
    pub keys: Y,
    /// The series this instance numbered last (`SeriesHeads::default()`).
    pub heads: SeriesHeads,
}

/// Where each series stood after this instance's last document in it, so that the next number
/// is tried without reading the series' counter (issue 14: one read less per invoice). The
/// numbering transaction is conditioned on the counter, so numbers stay gapless: a head another
/// instance moved meanwhile costs one refused transaction, then the counter is read.
#[derive(Debug, Default)]
pub struct SeriesHeads(std::sync::Mutex<std::collections::HashMap<(String, String), SeriesHead>>);

impl SeriesHeads {
    /// The series' head as this instance left it, else as its counter says.
    async fn head<S: InvoiceStore + ?Sized>(
        &self,
        store: &S,
        client_id: &str,
        series: &str,
    ) -> Result<SeriesHead, StoreError> {
        let known = self
            .0
            .lock()
            .ok()
            .and_then(|heads| heads.get(&(client_id.to_owned(), series.to_owned())).copied());
        match known {
            Some(head) => Ok(head),
            None => store.series_head(client_id, series).await,
        }
    }

    /// This instance numbered `head` in the series.
    fn advanced(&self, client_id: &str, series: &str, head: SeriesHead) {
        if let Ok(mut heads) = self.0.lock() {
            heads.insert((client_id.to_owned(), series.to_owned()), head);
        }
    }

    /// The head is not where this instance left it: read the counter next time.
    fn forget(&self, client_id: &str, series: &str) {
        if let Ok(mut heads) = self.0.lock() {
            heads.remove(&(client_id.to_owned(), series.to_owned()));
        }
    }
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
    #[error("electronic document: {0}")]
    Document(#[from] sunat_ubl::UblError),
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// SUNAT could not take the document now: retried on the delivery schedule.
    #[error("SUNAT is unavailable: {0}")]
    SunatUnavailable(String),
    /// SUNAT refused the submission itself (credentials, file): a person must act.
    #[error("SUNAT refused the submission: {0}")]
    SunatRefused(String),
    /// The credit note cannot be issued as requested (unknown or unaccepted invoice, more than
    /// is left to credit); a retry helps only if the invoice is accepted meanwhile.
    #[error("credit note not issued: {0}")]
    NotCreditable(String),
    /// A courier reported a return or a collection before the sale's invoice exists.
    #[error("sale {0} has no invoice yet")]
    NotInvoicedYet(String),
    /// Cash collected on delivery that the invoice cannot take: finance reconciles it.
    #[error("payment not recorded: {0}")]
    PaymentRefused(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Issued (now or by an earlier delivery) and e-mailed by this call.
    Delivered { invoice_id: String, message_id: String },
    /// Its e-mail had gone out already: nothing to do.
    AlreadyDelivered { invoice_id: String },
    /// SUNAT rejected the document: it is not a valid invoice and is not e-mailed.
    Rejected { invoice_id: String, code: u16 },
    /// The request's credit note, and where SUNAT left it.
    Credited {
        credit_note_id: String,
        status: ElectronicStatus,
    },
    /// Cash on delivery recorded (now or by an earlier delivery).
    Paid {
        invoice_id: String,
        status: backoffice_domain::receivable::CollectionStatus,
    },
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
        // The billing queue carries invoice requests, credit-note requests, and the couriers'
        // returns and cash collections.
        match wire::peek_type(body).as_deref() {
            Some(CreditNoteRequested::TYPE) => {
                let incoming = wire::open::<CreditNoteRequested>(body)?;
                let correlation_id = incoming
                    .correlation_id
                    .unwrap_or_else(|| incoming.body.request_id.clone());
                return self.credit(&incoming.body, &correlation_id).await;
            }
            Some(ShipmentReturned::TYPE) => {
                let incoming = wire::open::<ShipmentReturned>(body)?;
                let correlation_id = incoming
                    .correlation_id
                    .unwrap_or_else(|| incoming.body.shipment_id.to_string());
                return self.returned(&incoming.body, &correlation_id).await;
            }
            Some(CashCollected::TYPE) => {
                let incoming = wire::open::<CashCollected>(body)?;
                return self.collected(&incoming.body).await;
            }
            Some(ServiceInvoiceRequested::TYPE) => {
                let incoming = wire::open::<ServiceInvoiceRequested>(body)?;
                let correlation_id = incoming
                    .correlation_id
                    .unwrap_or_else(|| incoming.body.request_id.clone());
                return self.service(&incoming.body, &correlation_id).await;
            }
            _ => {}
        }
        let incoming = wire::open::<InvoiceRequested>(body)?;
        let request = incoming.body;
        // Messages sent before correlation ids existed fall back to the pre-sale's id.
        let correlation_id = incoming
            .correlation_id
            .unwrap_or_else(|| request.presale_id.to_string());
        // No read of the sale's guard first: the issuing transaction is conditioned on it, and a
        // redelivery learns from that condition which invoice the sale has (issue 14).
        let profile = self.profile(&request.client_id).await?;
        let draft = match InvoiceDraft::prepare(&request, &profile, self.clock.now()) {
            Ok(draft) => draft,
            // A sale invoiced before its client's profile changed still gets its invoice delivered.
            Err(e) => {
                return match self.invoices.invoice_for_sale(&request.sale_id).await? {
                    Some(existing) => self.deliver(&request.client_id, &existing, Some(&profile)).await,
                    None => Err(e.into()),
                };
            }
        };
        match self.issue(&draft, &correlation_id).await? {
            // Just written by this worker: delivered from memory, not read back.
            Issued::Now(invoice) => {
                let stored = StoredInvoice::issued(invoice);
                self.deliver_stored(stored, &profile, Lease::Held).await
            }
            Issued::Before(invoice_id) => self.deliver(&request.client_id, &invoice_id, Some(&profile)).await,
        }
    }

    /// The call center's invoice for a client company's month (ADR 0028): one per billing run,
    /// numbered in the call center's series and delivered like a sale's.
    async fn service(&self, request: &ServiceInvoiceRequested, correlation_id: &str) -> Result<Outcome, IssueError> {
        if let Some(existing) = self.invoices.invoice_for_run(&request.request_id).await? {
            return self.deliver(&request.seller_id, &existing, None).await;
        }
        let seller = self.profile(&request.seller_id).await?;
        let buyer = self.profile(&request.client_id).await?;
        let draft = InvoiceDraft::for_service(request, &seller, &buyer, self.clock.now())?;
        match self.issue(&draft, correlation_id).await? {
            Issued::Now(invoice) => {
                self.deliver_stored(StoredInvoice::issued(invoice), &seller, Lease::Held)
                    .await
            }
            Issued::Before(invoice_id) => self.deliver(&request.seller_id, &invoice_id, Some(&seller)).await,
        }
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

    /// The request's invoice (a sale's or a billing run's): numbered now, or the one a
    /// concurrent delivery numbered.
    async fn issue(&self, draft: &InvoiceDraft, correlation_id: &str) -> Result<Issued, IssueError> {
        let take_next = || async {
            let head = self
                .heads
                .head(&self.invoices, draft.client_id(), draft.series())
                .await?;
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
                "billing_run": invoice.billing_run.as_ref().map(|r| &r.run_id),
                "total": invoice.totals.total,
                "correlation_id": correlation_id,
            }))
            .seal(GENESIS_HASH);
            // The e-mail's lease rides on the issuing write: this worker delivers what it issued.
            let lease_until = invoice.issued_at + EMAIL_LEASE;
            match self
                .invoices
                .issue_with_email_lease(&invoice, &audit, lease_until)
                .await?
            {
                IssueOutcome::Issued => {
                    self.heads.advanced(
                        &invoice.client_id,
                        &invoice.series,
                        SeriesHead {
                            number: invoice.number,
                            issue_date: Some(invoice.issue_date),
                        },
                    );
                    tracing::info!(
                        invoice_id = %invoice.invoice_id,
                        sale_id = invoice.sale_id.as_ref().map(|s| s.as_str()),
                        billing_run = invoice.billing_run.as_ref().map(|r| r.run_id.as_str()),
                        total = %invoice.totals.total,
                        "invoice issued"
                    );
                    metrics::counter!("InvoicesIssued").increment(1);
                    Ok(Issued::Now(Box::new(invoice)))
                }
                IssueOutcome::SaleAlreadyInvoiced => {
                    let existing = match (&invoice.billing_run, &invoice.sale_id) {
                        (Some(run), _) => self.invoices.invoice_for_run(&run.run_id).await?,
                        (None, Some(sale)) => self.invoices.invoice_for_sale(sale).await?,
                        (None, None) => None,
                    };
                    Ok(Issued::Before(existing.ok_or_else(|| {
                        IssueError::Store(StoreError::Corrupt(format!(
                            "the request of {} is invoiced but has no invoice id",
                            invoice.invoice_id
                        )))
                    })?))
                }
                IssueOutcome::NumberTaken => {
                    self.heads.forget(&invoice.client_id, &invoice.series);
                    Err(Numbering::Taken)
                }
            }
        };
        take_next
            .retry(numbering_backoff())
            .when(Numbering::is_taken)
            .await
            .map_err(IssueError::from)
    }

    /// Make the invoice an accepted electronic document, store its PDF and send the e-mail,
    /// unless done already. `profile` is the client's, when the caller has read it already.
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
        self.deliver_stored(stored, profile, Lease::ToTake).await
    }

    /// `deliver`, for an invoice in hand.
    async fn deliver_stored(
        &self,
        stored: StoredInvoice,
        profile: &BillingProfile,
        lease: Lease,
    ) -> Result<Outcome, IssueError> {
        let (client_id, invoice_id) = (stored.invoice.client_id.as_str(), stored.invoice.invoice_id.as_str());
        if stored.email.is_some() {
            return Ok(Outcome::AlreadyDelivered {
                invoice_id: invoice_id.to_owned(),
            });
        }
        if let Some(e) = stored
            .electronic
            .as_ref()
            .filter(|e| e.status == ElectronicStatus::Rejected)
        {
            return Ok(Outcome::Rejected {
                invoice_id: invoice_id.to_owned(),
                code: e.response_code.unwrap_or_default(),
            });
        }
        // One worker from here on: nothing leaves twice, to SUNAT or by mail.
        let now = self.clock.now();
        let claim = match lease {
            Lease::Held => EmailClaim::Claimed,
            Lease::ToTake => {
                self.invoices
                    .claim_email(client_id, invoice_id, now, now + EMAIL_LEASE)
                    .await?
            }
        };
        match claim {
            EmailClaim::Claimed => {}
            EmailClaim::AlreadySent(_) => {
                return Ok(Outcome::AlreadyDelivered {
                    invoice_id: invoice_id.to_owned(),
                });
            }
            EmailClaim::Busy => return Err(IssueError::EmailInProgress(invoice_id.to_owned())),
        }
        // Issued by this very attempt (its lease taken by the issuing write): nothing was signed.
        let fresh = matches!(lease, Lease::Held);
        let mut produced = Produced::default();
        match self.deliver_claimed(&stored, profile, fresh, &mut produced).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                self.release(&stored, &e.to_string(), produced.closing()).await;
                Err(e)
            }
        }
    }

    async fn deliver_claimed(
        &self,
        stored: &StoredInvoice,
        profile: &BillingProfile,
        fresh: bool,
        produced: &mut Produced,
    ) -> Result<Outcome, IssueError> {
        let (client_id, invoice_id) = (&stored.invoice.client_id, &stored.invoice.invoice_id);
        let paper = Paper::Invoice(&stored.invoice);
        let (mut record, xml) = self
            .electronic_document(paper, stored.electronic.as_ref(), fresh)
            .await?;
        let mut cdr = None;
        if record.status == ElectronicStatus::PendingSubmission && !fresh {
            cdr = self.answer_kept(paper, &mut record).await?;
        }
        if record.status == ElectronicStatus::PendingSubmission {
            cdr = self.submit(paper, &mut record, &xml, Keep::ValidWithEmail).await?;
            if record.status.is_valid() {
                produced.electronic = Some(record.clone());
            }
        } else if cdr.is_none()
            && let Some(key) = &record.cdr_key
        {
            cdr = self.documents.get(key).await?;
        }
        if record.status == ElectronicStatus::Rejected {
            let code = record.response_code.unwrap_or_default();
            // Not a valid invoice: nothing is e-mailed, and the delivery leaves the pending list.
            self.invoices
                .release_email(
                    client_id,
                    invoice_id,
                    "rejected by SUNAT",
                    Retry::Park,
                    Closing::default(),
                )
                .await?;
            return Ok(Outcome::Rejected {
                invoice_id: invoice_id.clone(),
                code,
            });
        }
        let acceptance = invoice_pdf::Acceptance {
            digest_value: &record.digest_value,
            observed: record.status == ElectronicStatus::Observed,
        };
        let (pdf, fresh_pdf) = self.pdf(stored, &acceptance).await?;
        produced.pdf = fresh_pdf;
        let now = self.clock.now();
        let evidence = self.evidence(&stored.invoice).await?;
        let files = email::Attachments {
            pdf: &pdf,
            file_stem: &record.file_stem,
            xml: &xml,
            cdr: cdr.as_deref(),
            evidence: evidence.as_ref().map(|(name, csv)| (name.as_str(), csv.as_slice())),
        };
        let message = email::build(&stored.invoice, &files, &profile.finance_email, &self.sender, now)
            .map_err(|e| IssueError::Email(e.to_string()))?;
        let message_id = self.mailer.send(&message).await?;
        let sent = EmailRecord {
            message_id: message_id.clone(),
            recipients: message.recipients(),
            sent_at: now,
        };
        if let Err(e) = self
            .invoices
            .record_email(client_id, invoice_id, &sent, produced.closing())
            .await
        {
            // Sent but not remembered: a retry after the lease would send it again.
            tracing::error!(invoice_id = %invoice_id, message_id = %message_id, error = %e, "e-mail sent but not recorded");
            return Err(e.into());
        }
        tracing::info!(invoice_id = %invoice_id, message_id = %message_id, recipients = sent.recipients.len(), "invoice e-mailed");
        metrics::counter!("InvoicesEmailed").increment(1);
        Ok(Outcome::Delivered {
            invoice_id: invoice_id.clone(),
            message_id,
        })
    }

    /// The document's signed XML and its record: built, signed and stored the first time, read
    /// back afterwards (the stored file is the document SUNAT knows). The XML is always stored
    /// before it is submitted, under a key its number decides; its record is written with
    /// SUNAT's answer (or the failed submission), not before: one write less per document
    /// (issue 14). So a document with no record may still have been signed and even submitted
    /// by an attempt that stopped: unless `fresh` (issued by this very attempt), its stored XML
    /// is looked for and reused.
    async fn electronic_document(
        &self,
        paper: Paper<'_>,
        existing: Option<&ElectronicRecord>,
        fresh: bool,
    ) -> Result<(ElectronicRecord, Vec<u8>), IssueError> {
        if let Some(record) = existing
            && let Some(xml) = self.documents.get(&record.xml_key).await?
        {
            return Ok((record.clone(), xml));
        }
        let stem = paper.file_stem();
        let xml_key = paper.document_key(&format!("{stem}.xml"));
        let stored = match (existing, fresh) {
            (None, false) => self.documents.get(&xml_key).await?,
            _ => None,
        };
        let signed = match stored {
            Some(xml) => sunat_ubl::read_signed(&xml)?,
            None => {
                let credentials = self.keys.credentials(paper.ruc(), false).await?;
                let signed = sunat_ubl::sign(&paper.build_xml()?, &credentials.signer)?;
                self.documents
                    .put(&xml_key, signed.xml.clone(), "application/xml")
                    .await?;
                tracing::info!(document = %paper.label(), file = %stem, "electronic document signed");
                signed
            }
        };
        let record = ElectronicRecord {
            status: ElectronicStatus::PendingSubmission,
            xml_key,
            xml_sha256: hex::encode(Sha256::digest(&signed.xml)),
            file_stem: stem,
            digest_value: signed.digest_value,
            cdr_key: None,
            response_code: None,
            description: None,
            notes: Vec::new(),
            submissions: 0,
            last_error: None,
            answered_at: None,
        };
        Ok((record, signed.xml))
    }

    /// Where the document's electronic record is kept: on the invoice, or on the credit note.
    async fn record(&self, paper: Paper<'_>, record: &ElectronicRecord) -> Result<(), StoreError> {
        match paper {
            Paper::Invoice(invoice) => {
                self.invoices
                    .record_electronic(&invoice.client_id, &invoice.invoice_id, record)
                    .await
            }
            Paper::CreditNote(note) => {
                self.invoices
                    .record_credit_note_electronic(&note.client_id, &note.invoice_id, &note.credit_note_id, record)
                    .await
            }
        }
    }

    /// The answer an earlier attempt received and did not record: it stopped between storing
    /// SUNAT's CDR and the write that records it (an invoice's answer rides on its e-mail's
    /// closing write). Read only by an attempt that did not issue the document itself, and
    /// recorded at once; the CDR's bytes when there is one.
    async fn answer_kept(
        &self,
        paper: Paper<'_>,
        record: &mut ElectronicRecord,
    ) -> Result<Option<Vec<u8>>, IssueError> {
        let cdr_key = paper.document_key(&format!("R-{}.zip", record.file_stem));
        let Some(zip) = self.documents.get(&cdr_key).await? else {
            return Ok(None);
        };
        let cdr =
            Cdr::read(zip).map_err(|e| IssueError::Store(StoreError::Corrupt(format!("stored CDR {cdr_key}: {e}"))))?;
        apply_cdr(record, &cdr, cdr_key, self.clock.now());
        self.record(paper, record).await?;
        tracing::warn!(document = %paper.label(), status = record.status.as_str(), "SUNAT's answer to an earlier attempt recorded from its stored CDR");
        Ok(Some(cdr.into_zip()))
    }

    /// Send the document to SUNAT and record its answer (an accepted or observed one left to
    /// the caller with [`Keep::ValidWithEmail`]); the CDR's bytes when it answered with one.
    async fn submit(
        &self,
        paper: Paper<'_>,
        record: &mut ElectronicRecord,
        xml: &[u8],
        keep: Keep,
    ) -> Result<Option<Vec<u8>>, IssueError> {
        let document = paper.label();
        let credentials = self.keys.credentials(paper.ruc(), false).await?;
        let zip = sunat_ubl::zip_document(&record.file_stem, xml)?;
        let answer = self
            .authority
            .send_bill(&format!("{}.zip", record.file_stem), &zip, &credentials.sol)
            .await;
        record.submissions = record.submissions.saturating_add(1);
        let now = self.clock.now();
        match answer {
            Submitted::Answered(cdr) => {
                let cdr_key = paper.document_key(&format!("R-{}.zip", record.file_stem));
                self.documents
                    .put(&cdr_key, cdr.zip().to_vec(), "application/zip")
                    .await?;
                let outcome = apply_cdr(record, &cdr, cdr_key, now);
                if keep == Keep::RecordNow || !record.status.is_valid() {
                    self.record(paper, record).await?;
                }
                metrics::counter!("SunatAnswers", "Status" => record.status.as_str()).increment(1);
                match outcome {
                    SunatOutcome::Rejected { code, description } => {
                        // The alarm's metric filter matches `error_kind`; finance acts on it.
                        tracing::error!(document, code, description = %description, error_kind = "einvoice_rejected", "SUNAT rejected the document");
                    }
                    SunatOutcome::Observed(notes) => {
                        tracing::warn!(
                            document,
                            observations = notes.len(),
                            "SUNAT accepted the document with observations"
                        );
                    }
                    SunatOutcome::Accepted => {
                        tracing::info!(document, "SUNAT accepted the document");
                    }
                }
                Ok(Some(cdr.into_zip()))
            }
            Submitted::RejectedByFault { code, message } => {
                record.status = ElectronicStatus::Rejected;
                record.response_code = Some(code);
                record.description = Some(message.clone());
                record.answered_at = Some(now);
                record.last_error = None;
                self.record(paper, record).await?;
                tracing::error!(document, code, description = %message, error_kind = "einvoice_rejected", "SUNAT rejected the document");
                Ok(None)
            }
            Submitted::Refused { code, message } => {
                record.response_code = code;
                record.last_error = Some(message.clone());
                self.record(paper, record).await?;
                tracing::error!(document, code, error = %message, error_kind = "einvoice_refused", "SUNAT refused the submission");
                Err(IssueError::SunatRefused(message))
            }
            Submitted::Unavailable(message) => {
                record.last_error = Some(message.clone());
                self.record(paper, record).await?;
                if electronic::deadline_near(paper.issued_at(), now) {
                    let issue_date = paper.issue_date();
                    tracing::error!(document, issue_date = %issue_date, deadline = %electronic::submission_deadline(issue_date), error_kind = "einvoice_deadline_near", "document still not accepted by SUNAT near its legal deadline");
                }
                Err(IssueError::SunatUnavailable(message))
            }
        }
    }

    /// Give the e-mail lease back after a failed attempt, due again on the retry schedule, or
    /// parked once its attempts are spent.
    async fn release(&self, stored: &StoredInvoice, reason: &str, closing: Closing<'_>) {
        let (client_id, invoice_id) = (&stored.invoice.client_id, &stored.invoice.invoice_id);
        let attempts = stored.email_attempts.saturating_add(1);
        let retry = RetryPolicy::DELIVERY.after_failure(attempts, self.clock.now());
        if retry == Retry::Park {
            // The alarm's metric filter matches this message.
            tracing::error!(invoice_id = %invoice_id, attempts, "invoice e-mail parked: its attempts are spent");
        }
        if let Err(e) = self
            .invoices
            .release_email(client_id, invoice_id, reason, retry, closing)
            .await
        {
            // The lease then simply runs out before the next attempt.
            tracing::warn!(invoice_id = %invoice_id, error = %e, "could not release the e-mail lease");
        }
    }

    /// A billing run's evidence CSV, copied beside the invoice's PDF the first time (ADR 0028):
    /// its name and bytes; `None` for a sale's invoice.
    async fn evidence(
        &self,
        invoice: &backoffice_domain::invoice::Invoice,
    ) -> Result<Option<(String, Vec<u8>)>, IssueError> {
        let Some(run) = &invoice.billing_run else {
            return Ok(None);
        };
        let name = format!("evidencia-{}.csv", run.run_id);
        let beside = invoice.document_key(&name);
        if let Some(csv) = self.documents.get(&beside).await? {
            return Ok(Some((name, csv)));
        }
        let csv = self.documents.get(&run.evidence_key).await?.ok_or_else(|| {
            IssueError::Store(StoreError::Corrupt(format!(
                "billing run {}: no evidence at {}",
                run.run_id, run.evidence_key
            )))
        })?;
        self.documents.put(&beside, csv.clone(), "text/csv").await?;
        Ok(Some((name, csv)))
    }

    /// The invoice's PDF bytes, as stored; rendered and stored until an e-mail's closing write
    /// (sent or released) records it: its record, then, as the second value. Rendering is
    /// deterministic, so an attempt that stopped before that write prints the same bytes.
    async fn pdf(
        &self,
        stored: &StoredInvoice,
        acceptance: &invoice_pdf::Acceptance<'_>,
    ) -> Result<(Vec<u8>, Option<PdfRecord>), IssueError> {
        let key = stored.invoice.pdf_key();
        if stored.pdf.is_some()
            && let Some(bytes) = self.documents.get(&key).await?
        {
            return Ok((bytes, None));
        }
        let bytes = invoice_pdf::render(&stored.invoice, Some(acceptance))?;
        let record = PdfRecord {
            key: key.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
        };
        self.documents.put(&key, bytes.clone(), "application/pdf").await?;
        Ok((bytes, Some(record)))
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
        // Credit notes SUNAT has not answered yet (it was unavailable, or a worker stopped), or
        // accepted but not e-mailed yet (a failed send due again, or a crash in between).
        let mut credit_notes = 0;
        if !stopped_early {
            // Only notes left pending for a while: a note just issued is its message's to submit.
            let issued_before = self.clock.now() - CREDIT_NOTE_GRACE;
            for (client_id, invoice_id, note_id) in self.invoices.pending_credit_notes(issued_before, 50).await? {
                if self.clock.now() + SWEEP_MARGIN >= deadline {
                    stopped_early = true;
                    break;
                }
                match self.submit_credit_note(&client_id, &invoice_id, &note_id).await {
                    Ok(_) => credit_notes += 1,
                    // A live lease: its worker is on the note's e-mail.
                    Err(IssueError::EmailInProgress(_)) => {}
                    Err(e) => {
                        tracing::warn!(credit_note_id = %note_id, error = %e, "pending credit note not submitted");
                        failed += 1;
                    }
                }
            }
        }
        tracing::info!(delivered, credit_notes, failed, stopped_early, "invoice e-mail sweep");
        Ok(
            json!({"delivered": delivered, "credit_notes": credit_notes, "failed": failed, "stopped_early": stopped_early}),
        )
    }
}

/// One invoice (issue, signature, SUNAT's answer within its 20 s timeout, PDF, e-mail) fits in
/// this much of an invocation's time.
pub const MESSAGE_MARGIN: time::Duration = time::Duration::seconds(25);

/// Who writes SUNAT's answer to a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// `submit` records every answer (credit notes).
    RecordNow,
    /// An accepted or observed answer rides on the e-mail's closing write (`Closing`): one
    /// write less per invoice (issue 14). Its CDR is stored first, so an attempt that stops in
    /// between leaves it for the next one ([`Issuer::answer_kept`]).
    ValidWithEmail,
}

/// What an e-mail attempt printed and received that its closing write (sent or released)
/// records.
#[derive(Debug, Default)]
struct Produced {
    pdf: Option<PdfRecord>,
    electronic: Option<ElectronicRecord>,
}

impl Produced {
    fn closing(&self) -> Closing<'_> {
        Closing {
            pdf: self.pdf.as_ref(),
            electronic: self.electronic.as_ref(),
        }
    }
}

/// SUNAT's CDR as the document's record: its code, description, notes and status; the outcome.
fn apply_cdr(record: &mut ElectronicRecord, cdr: &Cdr, cdr_key: String, now: OffsetDateTime) -> SunatOutcome {
    let outcome = cdr.outcome();
    record.cdr_key = Some(cdr_key);
    record.response_code = Some(cdr.response_code);
    record.description = Some(cdr.description.clone());
    record.notes = cdr
        .notes
        .iter()
        .map(|n| match n.code {
            Some(code) => format!("{code:04} - {}", n.text),
            None => n.text.clone(),
        })
        .collect();
    record.answered_at = Some(now);
    record.last_error = None;
    record.status = match &outcome {
        SunatOutcome::Accepted => ElectronicStatus::Accepted,
        SunatOutcome::Observed(_) => ElectronicStatus::Observed,
        SunatOutcome::Rejected { .. } => ElectronicStatus::Rejected,
    };
    outcome
}

/// Workers that lost a race for a number try the next one after an exponential backoff with
/// jitter (5 ms to 100 ms), so they spread out instead of colliding again.
pub(crate) fn numbering_backoff() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(100))
        .with_max_times(NUMBER_ATTEMPTS)
        .with_jitter()
}

/// One attempt at taking a series' next number: lost to another worker (tried again), or failed.
#[derive(Debug)]
pub(crate) enum Numbering {
    Taken,
    Failed(IssueError),
}

impl Numbering {
    pub(crate) fn is_taken(&self) -> bool {
        matches!(self, Numbering::Taken)
    }
}

impl From<IssueError> for Numbering {
    fn from(error: IssueError) -> Self {
        Numbering::Failed(error)
    }
}

impl From<StoreError> for Numbering {
    fn from(error: StoreError) -> Self {
        Numbering::Failed(error.into())
    }
}

impl From<InvoiceError> for Numbering {
    fn from(error: InvoiceError) -> Self {
        Numbering::Failed(error.into())
    }
}

impl From<Numbering> for IssueError {
    fn from(numbering: Numbering) -> Self {
        match numbering {
            Numbering::Taken => IssueError::Contention,
            Numbering::Failed(e) => e,
        }
    }
}

/// Whether the worker holds the invoice's e-mail lease already (it issued the invoice).
enum Lease {
    Held,
    ToTake,
}

/// The invoice of a sale, as `issue` found it.
enum Issued {
    /// Numbered by this worker.
    Now(Box<backoffice_domain::invoice::Invoice>),
    /// Numbered by another delivery of the same request.
    Before(String),
}

#[cfg(test)]
mod tests;
