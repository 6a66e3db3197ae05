//! Credit notes: the port and its DynamoDB adapter, on the invoices' table (InvoicesTable).
//!
//! | item           | pk                            | sk                              | index                 |
//! |----------------|-------------------------------|---------------------------------|-----------------------|
//! | series counter | `SERIES#{client}#{series}`    | `COUNTER`                       |                       |
//! | request guard  | `CREDITREQ#{client}#{request}`| `CREDIT_NOTE`                   |                       |
//! | credit note    | `INVOICE#{client}#{invoice}`  | `CREDIT_NOTE#{note}`            | email-pending, sparse; by-client (`CREDITNOTES#{client}`, `{issue date}#{note}`) |
//! | its audit      | `INVOICE#{client}#{invoice}`  | `CREDIT_NOTE#{note}#AUDIT#{seq}`|                       |
//!
//! A note lives in its invoice's partition, so one query reads an invoice with its notes.
//! Issuing writes the series counter (n−1 → n), the request guard, the note, its audit record
//! and the invoice's running `credited_minor` in one transaction, conditioned on the credited
//! and paid amounts the note was decided on: numbers have no gaps and no repeats, a request
//! gives at most one note, a note never credits more than is still owed (the balance never
//! goes below zero), nor an invoice SUNAT has not accepted. Until SUNAT accepts the note and its
//! e-mail is recorded, the note sits on the pending index under `CREDIT_NOTE#PENDING`, which the
//! sweep reads (a failed send moves it behind to its retry time; spent attempts park it under
//! `CREDIT_NOTE#PARKED`); a rejected note leaves it. Its e-mail is sent under a lease
//! (`email_lease_until`) and recorded once (`email`), like an invoice's.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use backoffice_domain::audit::AuditRecord;
use backoffice_domain::credit_note::CreditNote;
use backoffice_domain::invoice::Invoice;
use backoffice_domain::money::Money;
use backoffice_domain::receivable::Account;

use super::StoreError;
use crate::dynamo::{
    Item, TransactFailure, corrupt, nanos, number_attr, page_size, s, sdk_error, string_attr, transact, unchanged,
    update_condition_failed,
};
use crate::invoices::{
    Closing, DynamoInvoiceStore, EMAIL_PENDING_INDEX, ElectronicRecord, ElectronicStatus, EmailClaim, EmailRecord,
    PdfRecord, Retry, SeriesStep, n,
};

const PENDING: &str = "CREDIT_NOTE#PENDING";
/// Notes whose e-mail spent its attempts: off the sweep's way, for a person.
const PARKED: &str = "CREDIT_NOTE#PARKED";

/// A credit note and where its electronic document stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCreditNote {
    pub note: CreditNote,
    pub request_id: String,
    pub requested_by: String,
    /// Absent until its XML is signed and stored.
    pub electronic: Option<ElectronicRecord>,
    /// Its representación impresa, once stored.
    #[serde(default)]
    pub pdf: Option<PdfRecord>,
    /// The e-mail that carried it; once recorded, never sent again.
    #[serde(default)]
    pub email: Option<EmailRecord>,
    #[serde(default)]
    pub email_attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditOutcome {
    Issued,
    /// The request has its note already (a redelivery): this one.
    AlreadyIssued {
        invoice_id: String,
        credit_note_id: String,
    },
    /// Another note took this number first: read the series again and retry.
    NumberTaken,
    /// The invoice cannot take this note: why, for a person.
    NotCreditable(String),
    /// A payment or another note changed the invoice's account meanwhile: read it again.
    Stale,
}

#[async_trait]
pub trait CreditNoteStore: Send + Sync {
    /// The note a request produced, if any: (invoice id, note id).
    async fn credit_note_for_request(
        &self,
        client_id: &str,
        request_id: &str,
    ) -> Result<Option<(String, String)>, StoreError>;
    /// How much of the invoice earlier notes credited, in minor units.
    async fn credited(&self, client_id: &str, invoice_id: &str) -> Result<i64, StoreError>;
    /// Write `note` as number `note.number` of its series (see the module's table), crediting
    /// `invoice`, for `request_id`, with its audit record.
    async fn issue_credit_note(
        &self,
        invoice: &Invoice,
        note: &CreditNote,
        request_id: &str,
        requested_by: &str,
        audit: &AuditRecord,
    ) -> Result<CreditOutcome, StoreError>;
    async fn load_credit_note(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
    ) -> Result<Option<StoredCreditNote>, StoreError>;
    /// Like [`crate::invoices::InvoiceStore::record_electronic`]: a final answer never changes.
    async fn record_credit_note_electronic(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
        record: &ElectronicRecord,
    ) -> Result<(), StoreError>;
    /// Notes due before `issued_before` with something still to do, oldest first: SUNAT has not
    /// answered for good, or it accepted the note and its e-mail has not gone out (due at its
    /// issue, or at the retry time of a failed send): (client, invoice, note).
    async fn pending_credit_notes(
        &self,
        issued_before: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Like [`crate::invoices::InvoiceStore::claim_email`], for the note's own e-mail.
    async fn claim_credit_note_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
        now: time::OffsetDateTime,
        lease_until: time::OffsetDateTime,
    ) -> Result<EmailClaim, StoreError>;
    /// Remember the accepted e-mail (the first record stands) and the PDF it carried when this
    /// attempt printed it; the note leaves the pending index.
    async fn record_credit_note_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
        email: &EmailRecord,
        pdf: Option<&PdfRecord>,
    ) -> Result<(), StoreError>;
    /// Give the lease back after a failed send: due again at the retry's time, or parked (off
    /// the pending index) when its attempts are spent.
    async fn release_credit_note_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
        error: &str,
        retry: Retry,
        pdf: Option<&PdfRecord>,
    ) -> Result<(), StoreError>;
}

/// A credit note item as the table holds it, read back.
pub(crate) fn stored_credit_note(mut item: Item) -> Result<StoredCreditNote, StoreError> {
    let electronic = match item.remove("electronic") {
        Some(value) => {
            Some(serde_dynamo::from_attribute_value(value).map_err(corrupt("reading credit note electronic record"))?)
        }
        None => None,
    };
    let pdf = match item.remove("pdf") {
        Some(value) => Some(serde_dynamo::from_attribute_value(value).map_err(corrupt("reading credit note pdf"))?),
        None => None,
    };
    let email = match item.remove("email") {
        Some(value) => Some(serde_dynamo::from_attribute_value(value).map_err(corrupt("reading credit note email"))?),
        None => None,
    };
    let email_attempts = item
        .get("email_attempts")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let request_id = string_attr(&item, "request_id").unwrap_or_default();
    let requested_by = string_attr(&item, "requested_by").unwrap_or_default();
    let note = serde_dynamo::from_item(item).map_err(corrupt("reading credit note"))?;
    Ok(StoredCreditNote {
        note,
        request_id,
        requested_by,
        electronic,
        pdf,
        email,
        email_attempts,
    })
}

fn note_sk(credit_note_id: &str) -> AttributeValue {
    s(format!("CREDIT_NOTE#{credit_note_id}"))
}

fn request_key(client_id: &str, request_id: &str) -> (AttributeValue, AttributeValue) {
    (s(format!("CREDITREQ#{client_id}#{request_id}")), s("CREDIT_NOTE"))
}

impl DynamoInvoiceStore {
    /// The invoice's account as the table holds it, with the attributes a note conditions on.
    async fn account_item(&self, invoice: &Invoice) -> Result<Option<(Item, Account)>, StoreError> {
        let (pk, sk) = Self::invoice_key(&invoice.client_id, &invoice.invoice_id);
        let Some(item) = self.get(pk, sk).await? else {
            return Ok(None);
        };
        let account = Account {
            credited_minor: number_attr(&item, "credited_minor")?,
            paid_minor: number_attr(&item, "paid_minor")?,
            ..Account::issued(&invoice.totals.total)
        };
        Ok(Some((item, account)))
    }

    /// Whether the invoice can take a note of `amount` now: the reason it cannot, or `Stale`
    /// when it can (the transaction lost a race with a payment or another note).
    async fn why_not_creditable(&self, invoice: &Invoice, amount: &Money) -> Result<CreditOutcome, StoreError> {
        let Some((item, account)) = self.account_item(invoice).await? else {
            return Ok(CreditOutcome::NotCreditable(format!(
                "invoice {} does not exist",
                invoice.invoice_id
            )));
        };
        if let Some(why) = not_creditable(&item, &account, amount) {
            return Ok(CreditOutcome::NotCreditable(why));
        }
        Ok(CreditOutcome::Stale)
    }
}

/// Why `account` (of the invoice `item`) cannot take a note of `amount`, if it cannot: SUNAT
/// has not accepted the invoice, or the note is more than what is still owed.
fn not_creditable(item: &Item, account: &Account, amount: &Money) -> Option<String> {
    let status = string_attr(item, "electronic_status").unwrap_or_else(|| "PENDING_SUBMISSION".into());
    let invoice_id = string_attr(item, "invoice_id").unwrap_or_default();
    if status != "ACCEPTED" && status != "OBSERVED" {
        return Some(format!(
            "invoice {invoice_id} is {status} at SUNAT: only an accepted invoice can be credited"
        ));
    }
    account.credit(amount).err().map(|e| {
        format!(
            "invoice {invoice_id} totals {}, {} credited and {} paid: {}",
            Money::from_minor(account.total_minor, account.currency),
            Money::from_minor(account.credited_minor, account.currency),
            Money::from_minor(account.paid_minor, account.currency),
            e.detail
        )
    })
}

#[async_trait]
impl CreditNoteStore for DynamoInvoiceStore {
    async fn credit_note_for_request(
        &self,
        client_id: &str,
        request_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let (pk, sk) = request_key(client_id, request_id);
        Ok(self
            .get(pk, sk)
            .await?
            .and_then(|item| Some((string_attr(&item, "invoice_id")?, string_attr(&item, "credit_note_id")?))))
    }

    async fn credited(&self, client_id: &str, invoice_id: &str) -> Result<i64, StoreError> {
        let (pk, sk) = Self::invoice_key(client_id, invoice_id);
        match self.get(pk, sk).await? {
            Some(item) => number_attr(&item, "credited_minor"),
            None => Ok(0),
        }
    }

    async fn issue_credit_note(
        &self,
        invoice: &Invoice,
        note: &CreditNote,
        request_id: &str,
        requested_by: &str,
        audit: &AuditRecord,
    ) -> Result<CreditOutcome, StoreError> {
        let amount = &note.totals.total;
        // The note is decided on the account as read, and written only if neither payments
        // nor other notes moved it since: credited + paid never exceed the total.
        let Some((current, seen)) = self.account_item(invoice).await? else {
            return self.why_not_creditable(invoice, amount).await;
        };
        if let Some(why) = not_creditable(&current, &seen, amount) {
            return Ok(CreditOutcome::NotCreditable(why));
        }
        let after = seen.credit(amount).map_err(|e| StoreError::Corrupt(e.detail))?;
        let counter = self.counter_step(&SeriesStep {
            client_id: &note.client_id,
            series: &note.series,
            number: note.number,
            document_id: &note.credit_note_id,
            issue_date: note.issue_date,
            issued_at: note.issued_at,
        })?;
        let (request_pk, request_sk) = request_key(&note.client_id, request_id);
        let guard: Item = HashMap::from([
            ("pk".into(), request_pk),
            ("sk".into(), request_sk),
            ("invoice_id".into(), s(invoice.invoice_id.clone())),
            ("credit_note_id".into(), s(note.credit_note_id.clone())),
            ("client_id".into(), s(note.client_id.clone())),
        ]);
        let (pk, invoice_sk) = Self::invoice_key(&invoice.client_id, &invoice.invoice_id);
        let mut item: Item = serde_dynamo::to_item(note).map_err(corrupt("serializing credit note"))?;
        item.insert("pk".into(), pk.clone());
        item.insert("sk".into(), note_sk(&note.credit_note_id));
        item.insert("entity".into(), s("CREDIT_NOTE"));
        item.insert("request_id".into(), s(request_id));
        item.insert("requested_by".into(), s(requested_by));
        item.insert("audit_head".into(), s(audit.hash.clone()));
        item.insert("gsi2pk".into(), s(PENDING));
        item.insert(
            "gsi2sk".into(),
            s(format!("{:020}#{}", nanos(note.issued_at), note.credit_note_id)),
        );
        // The sales register's month of notes (crate::register): by the note's own issue date,
        // apart from the invoices' `CLIENT#` partition so listings and ageing never read notes.
        item.insert("gsi1pk".into(), s(format!("CREDITNOTES#{}", note.client_id)));
        item.insert(
            "gsi1sk".into(),
            s(format!("{}#{}", note.issue_date, note.credit_note_id)),
        );
        let credit = Update::builder()
            .table_name(&self.table)
            .key("pk", pk.clone())
            .key("sk", invoice_sk)
            .update_expression(crate::payments::settling_update("credited_minor = :credited", &after)?)
            .condition_expression(format!(
                "attribute_exists(pk) AND electronic_status IN (:accepted, :observed) AND {} AND {}",
                unchanged("credited_minor", seen.credited_minor),
                unchanged("paid_minor", seen.paid_minor)
            ))
            .expression_attribute_values(":credited", n(after.credited_minor))
            .expression_attribute_values(":status", s(crate::payments::status_name(&after)?))
            .expression_attribute_values(":seen_credited_minor", n(seen.credited_minor))
            .expression_attribute_values(":seen_paid_minor", n(seen.paid_minor))
            .expression_attribute_values(":accepted", s("ACCEPTED"))
            .expression_attribute_values(":observed", s("OBSERVED"))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut audit_item: Item = serde_dynamo::to_item(audit).map_err(corrupt("serializing audit"))?;
        audit_item.insert("pk".into(), pk);
        audit_item.insert(
            "sk".into(),
            s(format!("CREDIT_NOTE#{}#AUDIT#{:010}", note.credit_note_id, audit.seq)),
        );
        // Order matters: the cancellation reasons come back in this order.
        let items = vec![
            counter,
            self.put_new(guard)?,
            self.put_new(item)?,
            TransactWriteItem::builder().update(credit).build(),
            self.put_new(audit_item)?,
        ];
        match transact(&self.client, items).await {
            Ok(()) => Ok(CreditOutcome::Issued),
            // Items: 0 counter, 1 request guard, 2 note, 3 the invoice's credit, 4 audit.
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(1) => {
                match self.credit_note_for_request(&note.client_id, request_id).await? {
                    Some((invoice_id, credit_note_id)) => Ok(CreditOutcome::AlreadyIssued {
                        invoice_id,
                        credit_note_id,
                    }),
                    None => Err(StoreError::Corrupt(format!("credit request {request_id} has no note"))),
                }
            }
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(0) || c.conflicted() => {
                Ok(CreditOutcome::NumberTaken)
            }
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(3) => {
                self.why_not_creditable(invoice, amount).await
            }
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(2) => Err(StoreError::Corrupt(format!(
                "credit note {} exists beyond its series' counter",
                note.credit_note_id
            ))),
            Err(TransactFailure::Cancelled(c)) => Err(c.into()),
            Err(TransactFailure::Failed(e)) => Err(e),
        }
    }

    async fn load_credit_note(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
    ) -> Result<Option<StoredCreditNote>, StoreError> {
        let (pk, _) = Self::invoice_key(client_id, invoice_id);
        match self.get(pk, note_sk(credit_note_id)).await? {
            Some(item) => stored_credit_note(item).map(Some),
            None => Ok(None),
        }
    }

    async fn record_credit_note_electronic(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
        record: &ElectronicRecord,
    ) -> Result<(), StoreError> {
        let (pk, _) = Self::invoice_key(client_id, invoice_id);
        // An accepted note stays on the pending index until its e-mail is recorded (a crash in
        // between leaves it for the sweep); a rejected one is void and leaves it.
        let leave_index = record.status == ElectronicStatus::Rejected;
        self.write_electronic(pk, note_sk(credit_note_id), record, leave_index)
            .await
    }

    async fn pending_credit_notes(
        &self,
        issued_before: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        // `{issued:020}#{id}` < `{before:020}` exactly when issued < before.
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(EMAIL_PENDING_INDEX)
            .key_condition_expression("gsi2pk = :pk AND gsi2sk < :bound")
            .expression_attribute_values(":pk", s(PENDING))
            .expression_attribute_values(":bound", s(format!("{:020}", nanos(issued_before))))
            .limit(page_size(limit))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output
            .items()
            .iter()
            .filter_map(|item| {
                Some((
                    string_attr(item, "client_id")?,
                    string_attr(item, "invoice_id")?,
                    string_attr(item, "credit_note_id")?,
                ))
            })
            .collect())
    }

    async fn claim_credit_note_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
        now: time::OffsetDateTime,
        lease_until: time::OffsetDateTime,
    ) -> Result<EmailClaim, StoreError> {
        let (pk, _) = Self::invoice_key(client_id, invoice_id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", note_sk(credit_note_id))
            .update_expression("SET email_lease_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(email) \
                 AND (attribute_not_exists(email_lease_until) OR email_lease_until < :now)",
            )
            .expression_attribute_values(":until", n(nanos(lease_until)))
            .expression_attribute_values(":now", n(nanos(now)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(EmailClaim::Claimed),
            Err(err) if update_condition_failed(&err) => {
                match self.load_credit_note(client_id, invoice_id, credit_note_id).await? {
                    Some(StoredCreditNote { email: Some(email), .. }) => Ok(EmailClaim::AlreadySent(email)),
                    Some(_) => Ok(EmailClaim::Busy),
                    None => Err(StoreError::Backend(format!(
                        "credit note {credit_note_id} does not exist"
                    ))),
                }
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn record_credit_note_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
        email: &EmailRecord,
        pdf: Option<&PdfRecord>,
    ) -> Result<(), StoreError> {
        let (pk, _) = Self::invoice_key(client_id, invoice_id);
        self.write_email_record(pk, note_sk(credit_note_id), email, Closing { pdf, electronic: None })
            .await
    }

    async fn release_credit_note_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        credit_note_id: &str,
        error: &str,
        retry: Retry,
        pdf: Option<&PdfRecord>,
    ) -> Result<(), StoreError> {
        let (pk, _) = Self::invoice_key(client_id, invoice_id);
        self.release_email_lease(
            (pk, note_sk(credit_note_id)),
            credit_note_id,
            error,
            retry,
            PARKED,
            Closing { pdf, electronic: None },
        )
        .await
    }
}
