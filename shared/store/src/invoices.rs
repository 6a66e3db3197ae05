//! Invoices: the port, its DynamoDB adapter (InvoicesTable) and an in-memory one.
//!
//! | item           | pk                          | sk                | index                      |
//! |----------------|-----------------------------|-------------------|----------------------------|
//! | series counter | `SERIES#{client}#{series}`  | `COUNTER`         |                            |
//! | sale guard     | `SALE#{sale id}`            | `INVOICE`         |                            |
//! | run guard      | `BILLINGRUN#{run id}`       | `INVOICE`         |                            |
//! | invoice        | `INVOICE#{client}#{number}` | `META`            | by-client; email-pending, open (sparse) |
//! | audit          | `INVOICE#{client}#{number}` | `AUDIT#{seq:010}` |                            |
//!
//! A guard is the sale's or, for the call center's invoice of a client company's month, the
//! billing run's (ADR 0028).
//!
//! A number is unique within its issuer's series: two clients both have a `B001-00000001`, so
//! an invoice is known by its client and its number together.
//!
//! Issuing writes the counter, the guard, the invoice and its audit record in one transaction:
//! the counter moves from n−1 to n only together with invoice n, and the guard makes a second
//! invoice for the same sale impossible. So numbers have no gaps and no repeats whatever
//! happens to the messages or the workers.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use backoffice_domain::audit::AuditRecord;
pub use backoffice_domain::electronic::ElectronicStatus;
use backoffice_domain::events::SaleId;
use backoffice_domain::invoice::Invoice;
pub use backoffice_domain::retry::Retry;

use super::StoreError;
use crate::dynamo::{
    Item, TransactFailure, corrupt, nanos, page_size, s, sdk_error, string_attr, transact, transact_put,
    update_condition_failed,
};
use crate::sdk::SdkClient;

/// The stored PDF of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdfRecord {
    pub key: String,
    pub sha256: String,
    pub size: u64,
}

/// The e-mail that carried an invoice, as the mail service accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailRecord {
    pub message_id: String,
    pub recipients: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

/// The invoice as an electronic document: its signed XML, and what SUNAT answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectronicRecord {
    pub status: ElectronicStatus,
    /// `{RUC}-{type}-{series}-{number}`: the XML's and the zip's name.
    pub file_stem: String,
    /// The signature's DigestValue (base64): the document's "hash" on the PDF and in its QR.
    pub digest_value: String,
    pub xml_key: String,
    pub xml_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdr_key: Option<String>,
    /// SUNAT's response code (0 accepted; 2000–3999 rejected) or the last fault's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Observations, `"4287 - text"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Submissions tried so far (answered or not).
    #[serde(default)]
    pub submissions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub answered_at: Option<OffsetDateTime>,
}

/// An invoice and how far its delivery got.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInvoice {
    pub invoice: Invoice,
    /// Absent until its XML is signed and stored.
    pub electronic: Option<ElectronicRecord>,
    pub pdf: Option<PdfRecord>,
    pub email: Option<EmailRecord>,
    pub email_attempts: u32,
    pub email_last_error: Option<String>,
}

impl StoredInvoice {
    /// An invoice as its issuing transaction wrote it: nothing signed, printed or sent yet.
    pub fn issued(invoice: impl Into<Box<Invoice>>) -> Self {
        Self {
            invoice: *invoice.into(),
            electronic: None,
            pdf: None,
            email: None,
            email_attempts: 0,
            email_last_error: None,
        }
    }
}

/// Where a series stands: its last number and that invoice's issue date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesHead {
    pub number: u64,
    pub issue_date: Option<time::Date>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueOutcome {
    Issued,
    /// The sale has an invoice already (a redelivered request); nothing was written.
    SaleAlreadyInvoiced,
    /// Another invoice took this number first (or carries a later date): read the series again
    /// and retry.
    NumberTaken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailClaim {
    /// Ours to send until the lease ends.
    Claimed,
    AlreadySent(EmailRecord),
    /// Another worker is sending it right now.
    Busy,
}

#[async_trait]
pub trait InvoiceStore: Send + Sync {
    /// The number of the sale's invoice, if it has one.
    async fn invoice_for_sale(&self, sale_id: &SaleId) -> Result<Option<String>, StoreError>;
    /// The number of a billing run's invoice (the call center's), if it has one.
    async fn invoice_for_run(&self, run_id: &str) -> Result<Option<String>, StoreError>;
    /// The last number issued in a client's series (0 before the first).
    /// The series' last number and its issue date (number 0 and no date for a new series).
    async fn series_head(&self, client_id: &str, series: &str) -> Result<SeriesHead, StoreError>;
    async fn last_number(&self, client_id: &str, series: &str) -> Result<u64, StoreError> {
        Ok(self.series_head(client_id, series).await?.number)
    }
    /// Write `invoice` as number `invoice.number` of its series, only if that series' last
    /// number is `invoice.number − 1`, dated no later than `invoice.issue_date`, and the sale has
    /// no invoice; with its audit record, in one transaction.
    async fn issue(&self, invoice: &Invoice, audit: &AuditRecord) -> Result<IssueOutcome, StoreError>;
    /// `issue`, with the e-mail's lease already taken by the issuing worker until
    /// `email_lease_until` (as `claim_email` takes it): one write instead of two.
    async fn issue_with_email_lease(
        &self,
        invoice: &Invoice,
        audit: &AuditRecord,
        email_lease_until: OffsetDateTime,
    ) -> Result<IssueOutcome, StoreError> {
        let outcome = self.issue(invoice, audit).await?;
        if outcome == IssueOutcome::Issued {
            self.claim_email(
                &invoice.client_id,
                &invoice.invoice_id,
                invoice.issued_at,
                email_lease_until,
            )
            .await?;
        }
        Ok(outcome)
    }
    async fn load(&self, client_id: &str, invoice_id: &str) -> Result<Option<StoredInvoice>, StoreError>;
    /// Record where the electronic document stands. Once SUNAT has answered for good
    /// (accepted, observed, rejected) the record never changes again: a late writer's
    /// `PENDING_SUBMISSION` cannot overwrite an answer.
    async fn record_electronic(
        &self,
        client_id: &str,
        invoice_id: &str,
        record: &ElectronicRecord,
    ) -> Result<(), StoreError>;
    /// Take the right to send the invoice's e-mail until `lease_until`, unless it was sent or
    /// another worker's lease is still running.
    async fn claim_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<EmailClaim, StoreError>;
    /// Remember the accepted e-mail, with what this attempt printed and received (`Closing`:
    /// its PDF, SUNAT's answer); the invoice leaves the pending-e-mail index.
    async fn record_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        email: &EmailRecord,
        closing: Closing<'_>,
    ) -> Result<(), StoreError>;
    /// Give the lease back after a failed send, keeping the reason and what the attempt printed
    /// and received (`Closing`); the e-mail is due again at the retry's time, or parked (off
    /// the pending index) when its attempts are spent.
    async fn release_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        error: &str,
        retry: Retry,
        closing: Closing<'_>,
    ) -> Result<(), StoreError>;
    /// Invoices whose e-mail is not sent yet and is due at `now`, soonest due first:
    /// (client, number).
    async fn pending_emails(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<(String, String)>, StoreError>;
}

pub(crate) const EMAIL_PENDING_INDEX: &str = "email-pending";
/// Sparse: the invoices something is still owed on, by client and due date (ageing, dunning).
pub(crate) const OPEN_INDEX: &str = "open";

/// An open invoice's key on [`OPEN_INDEX`]: `OPEN#{client}`, `{due date}#{invoice}`.
pub(crate) fn open_key(invoice: &Invoice) -> (AttributeValue, AttributeValue) {
    (
        s(format!("OPEN#{}", invoice.client_id)),
        s(format!("{}#{}", invoice.due_date, invoice.invoice_id)),
    )
}
const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");
const EMAIL_PENDING: &str = "EMAIL#PENDING";
const EMAIL_PARKED: &str = "EMAIL#PARKED";

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// What an e-mail attempt produced that the write closing it (sent or released) records, each
/// riding on that write instead of one of its own (issue 14): the PDF it printed (deterministic:
/// an attempt that stopped before prints the same bytes) and SUNAT's answer it received (kept
/// in the documents bucket as the CDR, which an attempt that stopped before finds again).
#[derive(Debug, Clone, Copy, Default)]
pub struct Closing<'a> {
    pub pdf: Option<&'a PdfRecord>,
    pub electronic: Option<&'a ElectronicRecord>,
}

/// What every write closing an e-mail attempt (sent or released) shares: `:one` for its
/// `ADD email_attempts`, and the `SET` clauses and values recording what it carries.
fn email_close_values(closing: Closing<'_>) -> Result<(String, Item), StoreError> {
    let mut values = Item::from([(":one".to_owned(), n(1))]);
    let mut set = String::new();
    if let Some(pdf) = closing.pdf {
        let value = serde_dynamo::to_attribute_value(pdf).map_err(corrupt("serializing pdf record"))?;
        values.insert(":pdf".to_owned(), value);
        set.push_str(", pdf = :pdf");
    }
    if let Some(record) = closing.electronic {
        let value = serde_dynamo::to_attribute_value(record).map_err(corrupt("serializing electronic record"))?;
        values.insert(":electronic".to_owned(), value);
        values.insert(":electronic_status".to_owned(), s(record.status.as_str()));
        set.push_str(", electronic = :electronic, electronic_status = :electronic_status");
    }
    Ok((set, values))
}

#[derive(Clone, Debug)]
pub struct DynamoInvoiceStore {
    pub(crate) client: SdkClient<Client>,
    pub(crate) table: String,
}

/// One document taking the next number of its series.
pub(crate) struct SeriesStep<'a> {
    pub client_id: &'a str,
    pub series: &'a str,
    pub number: u64,
    pub document_id: &'a str,
    pub issue_date: time::Date,
    pub issued_at: OffsetDateTime,
}

impl DynamoInvoiceStore {
    pub fn new(client: impl Into<SdkClient<Client>>, table: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
        }
    }

    /// Create only: the item must not exist yet.
    pub(crate) fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        transact_put(&self.table, item, Some("attribute_not_exists(pk)"))
    }

    /// One item, read consistently: numbering decisions must see the latest write.
    pub(crate) async fn get(&self, pk: AttributeValue, sk: AttributeValue) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.item)
    }

    /// The series counter moving from `number − 1` to `number` (dated no earlier than the
    /// last): the part of a numbering transaction that makes numbers gapless.
    pub(crate) fn counter_step(&self, step: &SeriesStep<'_>) -> Result<TransactWriteItem, StoreError> {
        let previous = step
            .number
            .checked_sub(1)
            .ok_or_else(|| StoreError::Backend("document numbers start at 1".into()))?;
        let at = step.issued_at.unix_timestamp().to_string();
        // ISO dates compare as text, so the condition keeps a series' dates in number order.
        let issue_date = step
            .issue_date
            .format(DATE)
            .map_err(|e| StoreError::Backend(format!("formatting the issue date: {e}")))?;
        let mut counter = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("SERIES#{}#{}", step.client_id, step.series)))
            .key("sk", s("COUNTER"))
            .update_expression(
                "SET last_number = :n, last_issue_date = :date, client_id = :client, series = :series, \
                 last_invoice_id = :id, updated_at = :at",
            )
            .expression_attribute_values(":date", s(issue_date))
            .expression_attribute_values(":n", n(step.number))
            .expression_attribute_values(":client", s(step.client_id))
            .expression_attribute_values(":series", s(step.series))
            .expression_attribute_values(":id", s(step.document_id))
            .expression_attribute_values(":at", AttributeValue::N(at));
        counter = if previous == 0 {
            counter.condition_expression("attribute_not_exists(last_number)")
        } else {
            counter
                .condition_expression(
                    "last_number = :prev AND (attribute_not_exists(last_issue_date) OR last_issue_date <= :date)",
                )
                .expression_attribute_values(":prev", n(previous))
        };
        Ok(TransactWriteItem::builder()
            .update(counter.build().map_err(|e| StoreError::Backend(e.to_string()))?)
            .build())
    }

    /// Record where a document (invoice or credit note, at `pk`/`sk`) stands at SUNAT, unless
    /// SUNAT's answer is recorded already: a final answer never changes (`Conflict`).
    /// `leave_index_when_final` takes the item off the pending index with a final answer.
    pub(crate) async fn write_electronic(
        &self,
        pk: AttributeValue,
        sk: AttributeValue,
        record: &ElectronicRecord,
        leave_index_when_final: bool,
    ) -> Result<(), StoreError> {
        let value = serde_dynamo::to_attribute_value(record).map_err(corrupt("serializing electronic record"))?;
        let mut remove = Vec::new();
        if leave_index_when_final && record.status.is_final() {
            remove.extend(["gsi2pk", "gsi2sk"]);
        }
        // A rejected document is void: nothing is owed on it, so it leaves the open index.
        if record.status == ElectronicStatus::Rejected {
            remove.extend(["gsi3pk", "gsi3sk"]);
        }
        let mut expression = String::from("SET electronic = :e, electronic_status = :status");
        if !remove.is_empty() {
            expression.push_str(" REMOVE ");
            expression.push_str(&remove.join(", "));
        }
        let written = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .update_expression(expression)
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(electronic_status) OR electronic_status = :pending)",
            )
            .expression_attribute_values(":e", value)
            .expression_attribute_values(":status", s(record.status.as_str()))
            .expression_attribute_values(":pending", s(ElectronicStatus::PendingSubmission.as_str()))
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(err) if update_condition_failed(&err) => Err(StoreError::Conflict(crate::ConflictKind::StaleVersion)),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Benchmarks only: write issued invoices as the issuing transaction writes them, 25 to a
    /// BatchWriteItem (no counter, guard or audit record); the settled ones (`false`) paid in
    /// full and off the open index, as their last payment leaves them.
    #[cfg(any(test, feature = "testing"))]
    pub async fn seed_issued(&self, invoices: &[(Invoice, bool)]) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in invoices.chunks(25) {
            let mut requests = Vec::with_capacity(chunk.len());
            for (invoice, open) in chunk {
                let mut item = invoice_item(invoice, "seed", None)?;
                // Long delivered: not waiting for the e-mail sweep.
                item.remove("gsi2pk");
                item.remove("gsi2sk");
                if !open {
                    item.remove("gsi3pk");
                    item.remove("gsi3sk");
                    item.insert("paid_minor".into(), n(invoice.totals.total.amount_minor()));
                    item.insert("collection_status".into(), s("PAID"));
                }
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            let mut pending = Some(requests);
            while let Some(batch) = pending.take() {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, batch)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&self.table))
                    .filter(|left| !left.is_empty());
            }
        }
        Ok(())
    }

    /// Remember the e-mail that carried a document (invoice or credit note, at `pk`/`sk`): it
    /// leaves the pending index, and the first record stands (a worker's retry changes nothing).
    pub(crate) async fn write_email_record(
        &self,
        pk: AttributeValue,
        sk: AttributeValue,
        email: &EmailRecord,
        closing: Closing<'_>,
    ) -> Result<(), StoreError> {
        let value = serde_dynamo::to_attribute_value(email).map_err(corrupt("serializing email record"))?;
        let (set_closing, mut values) = email_close_values(closing)?;
        values.insert(":email".into(), value);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .update_expression(format!(
                "SET email = :email{set_closing} ADD email_attempts :one REMOVE email_lease_until, email_last_error, gsi2pk, gsi2sk"
            ))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(email)")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if update_condition_failed(&err) => Ok(()),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Give back a document's e-mail lease after a failed send: due again at the retry's time
    /// (behind newer documents on the pending index, `{due:020}#{document_id}`), or moved to
    /// `parked` when its attempts are spent. Sent meanwhile: nothing to give back.
    pub(crate) async fn release_email_lease(
        &self,
        (pk, sk): (AttributeValue, AttributeValue),
        document_id: &str,
        error: &str,
        retry: Retry,
        parked: &str,
        closing: Closing<'_>,
    ) -> Result<(), StoreError> {
        let reason: String = error.chars().take(500).collect();
        let (set_closing, mut values) = email_close_values(closing)?;
        values.insert(":e".into(), s(reason));
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(email)")
            .set_expression_attribute_values(Some(values));
        let update = match retry {
            Retry::At(due) => update
                .update_expression(format!(
                    "SET email_last_error = :e, gsi2sk = :due{set_closing} ADD email_attempts :one REMOVE email_lease_until"
                ))
                .expression_attribute_values(":due", s(format!("{:020}#{document_id}", nanos(due)))),
            Retry::Park => update
                .update_expression(format!(
                    "SET email_last_error = :e, gsi2pk = :parked, email_parked = :yes{set_closing} \
                     ADD email_attempts :one REMOVE email_lease_until"
                ))
                .expression_attribute_values(":parked", s(parked))
                .expression_attribute_values(":yes", AttributeValue::Bool(true)),
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(err) if update_condition_failed(&err) => Ok(()),
            Err(err) => Err(sdk_error(err)),
        }
    }

    pub(crate) fn invoice_key(client_id: &str, invoice_id: &str) -> (AttributeValue, AttributeValue) {
        (s(format!("INVOICE#{client_id}#{invoice_id}")), s("META"))
    }
}

/// An invoice item as the table holds it (`META`), read back.
pub(crate) fn stored_invoice(mut item: Item) -> Result<StoredInvoice, StoreError> {
    let pdf = match item.remove("pdf") {
        Some(value) => Some(serde_dynamo::from_attribute_value(value).map_err(corrupt("reading invoice pdf"))?),
        None => None,
    };
    let electronic = match item.remove("electronic") {
        Some(value) => {
            Some(serde_dynamo::from_attribute_value(value).map_err(corrupt("reading invoice electronic record"))?)
        }
        None => None,
    };
    item.remove("electronic_status");
    let email = match item.remove("email") {
        Some(value) => Some(serde_dynamo::from_attribute_value(value).map_err(corrupt("reading invoice email"))?),
        None => None,
    };
    let email_attempts = item
        .get("email_attempts")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let email_last_error = string_attr(&item, "email_last_error");
    let invoice = serde_dynamo::from_item(item).map_err(corrupt("reading invoice"))?;
    Ok(StoredInvoice {
        invoice,
        electronic,
        pdf,
        email,
        email_attempts,
        email_last_error,
    })
}

/// The invoice item the issuing transaction writes (with the e-mail lease, if held).
fn invoice_item(
    invoice: &Invoice,
    audit_hash: &str,
    email_lease_until: Option<OffsetDateTime>,
) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(invoice).map_err(corrupt("serializing invoice"))?;
    let (pk, sk) = DynamoInvoiceStore::invoice_key(&invoice.client_id, &invoice.invoice_id);
    item.insert("pk".into(), pk);
    item.insert("sk".into(), sk);
    item.insert("entity".into(), s("INVOICE"));
    item.insert("audit_head".into(), s(audit_hash));
    item.insert("email_attempts".into(), n(0));
    if let Some(until) = email_lease_until {
        item.insert("email_lease_until".into(), n(nanos(until)));
    }
    item.insert("gsi1pk".into(), s(format!("CLIENT#{}", invoice.client_id)));
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}", invoice.issue_date, invoice.invoice_id)),
    );
    item.insert("gsi2pk".into(), s(EMAIL_PENDING));
    item.insert(
        "gsi2sk".into(),
        s(format!("{:020}#{}", nanos(invoice.issued_at), invoice.invoice_id)),
    );
    if invoice.totals.total.amount_minor() > 0 {
        item.insert("collection_status".into(), s("OPEN"));
        let (gsi3pk, gsi3sk) = open_key(invoice);
        item.insert("gsi3pk".into(), gsi3pk);
        item.insert("gsi3sk".into(), gsi3sk);
    }
    Ok(item)
}

/// The key of the item that makes a request one invoice: the sale's, or the billing run's.
pub(crate) fn request_guard(invoice: &Invoice) -> Result<String, StoreError> {
    match (&invoice.billing_run, &invoice.sale_id) {
        (Some(run), _) => Ok(format!("BILLINGRUN#{}", run.run_id)),
        (None, Some(sale)) => Ok(format!("SALE#{sale}")),
        (None, None) => Err(StoreError::Corrupt(format!(
            "invoice {} bills neither a sale nor a billing run",
            invoice.invoice_id
        ))),
    }
}

impl DynamoInvoiceStore {
    /// The issuing transaction; with `email_lease_until`, the issuing worker holds the e-mail's
    /// lease from the start (the invoice is new: nobody else can hold it).
    async fn issue_leased(
        &self,
        invoice: &Invoice,
        audit: &AuditRecord,
        email_lease_until: Option<OffsetDateTime>,
    ) -> Result<IssueOutcome, StoreError> {
        let counter = self.counter_step(&SeriesStep {
            client_id: &invoice.client_id,
            series: &invoice.series,
            number: invoice.number,
            document_id: &invoice.invoice_id,
            issue_date: invoice.issue_date,
            issued_at: invoice.issued_at,
        })?;

        let guard: Item = HashMap::from([
            ("pk".into(), s(request_guard(invoice)?)),
            ("sk".into(), s("INVOICE")),
            ("invoice_id".into(), s(invoice.invoice_id.clone())),
            ("client_id".into(), s(invoice.client_id.clone())),
        ]);

        let item = invoice_item(invoice, &audit.hash, email_lease_until)?;
        let (pk, _) = Self::invoice_key(&invoice.client_id, &invoice.invoice_id);

        let mut audit_item: Item = serde_dynamo::to_item(audit).map_err(corrupt("serializing audit"))?;
        audit_item.insert("pk".into(), pk);
        audit_item.insert("sk".into(), s(format!("AUDIT#{:010}", audit.seq)));

        // Order matters: the cancellation reasons come back in this order.
        let items = vec![
            counter,
            self.put_new(guard)?,
            self.put_new(item)?,
            self.put_new(audit_item)?,
        ];
        match transact(&self.client, items).await {
            Ok(()) => Ok(IssueOutcome::Issued),
            // Items: 0 the series counter, 1 the sale guard, 2 the invoice, 3 its audit record.
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(1) => Ok(IssueOutcome::SaleAlreadyInvoiced),
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(0) || c.conflicted() => {
                Ok(IssueOutcome::NumberTaken)
            }
            // Invoice n exists but the counter says n−1: only a manual edit does that.
            Err(TransactFailure::Cancelled(c)) if c.condition_failed(2) => Err(StoreError::Corrupt(format!(
                "invoice {} exists beyond its series' counter",
                invoice.invoice_id
            ))),
            Err(TransactFailure::Cancelled(c)) => Err(c.into()),
            Err(TransactFailure::Failed(e)) => Err(e),
        }
    }
}

#[async_trait]
impl InvoiceStore for DynamoInvoiceStore {
    async fn invoice_for_sale(&self, sale_id: &SaleId) -> Result<Option<String>, StoreError> {
        let guard = self.get(s(format!("SALE#{sale_id}")), s("INVOICE")).await?;
        Ok(guard.and_then(|item| string_attr(&item, "invoice_id")))
    }

    async fn invoice_for_run(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let guard = self.get(s(format!("BILLINGRUN#{run_id}")), s("INVOICE")).await?;
        Ok(guard.and_then(|item| string_attr(&item, "invoice_id")))
    }

    async fn series_head(&self, client_id: &str, series: &str) -> Result<SeriesHead, StoreError> {
        let counter = self
            .get(s(format!("SERIES#{client_id}#{series}")), s("COUNTER"))
            .await?;
        let Some(counter) = counter else {
            return Ok(SeriesHead::default());
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("series {client_id}/{series}: {what}"));
        let number = match counter.get("last_number") {
            None => 0,
            Some(value) => value
                .as_n()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| corrupt("last_number is not a number"))?,
        };
        // Counters written before dates were kept have none: no floor.
        let issue_date = match string_attr(&counter, "last_issue_date") {
            None => None,
            Some(raw) => Some(time::Date::parse(&raw, DATE).map_err(|_| corrupt("last_issue_date is not a date"))?),
        };
        Ok(SeriesHead { number, issue_date })
    }

    async fn issue(&self, invoice: &Invoice, audit: &AuditRecord) -> Result<IssueOutcome, StoreError> {
        self.issue_leased(invoice, audit, None).await
    }

    async fn issue_with_email_lease(
        &self,
        invoice: &Invoice,
        audit: &AuditRecord,
        email_lease_until: OffsetDateTime,
    ) -> Result<IssueOutcome, StoreError> {
        self.issue_leased(invoice, audit, Some(email_lease_until)).await
    }

    async fn load(&self, client_id: &str, invoice_id: &str) -> Result<Option<StoredInvoice>, StoreError> {
        let (pk, sk) = Self::invoice_key(client_id, invoice_id);
        match self.get(pk, sk).await? {
            Some(item) => stored_invoice(item).map(Some),
            None => Ok(None),
        }
    }

    async fn record_electronic(
        &self,
        client_id: &str,
        invoice_id: &str,
        record: &ElectronicRecord,
    ) -> Result<(), StoreError> {
        let (pk, sk) = Self::invoice_key(client_id, invoice_id);
        // The invoice stays on the e-mail index: its e-mail is still to go out.
        self.write_electronic(pk, sk, record, false).await
    }

    async fn claim_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<EmailClaim, StoreError> {
        let (pk, sk) = Self::invoice_key(client_id, invoice_id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .update_expression("SET email_lease_until = :until")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(email) AND (attribute_not_exists(email_lease_until) OR email_lease_until < :now)")
            .expression_attribute_values(":until", n(nanos(lease_until)))
            .expression_attribute_values(":now", n(nanos(now)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(EmailClaim::Claimed),
            Err(err) if update_condition_failed(&err) => match self.load(client_id, invoice_id).await? {
                Some(StoredInvoice { email: Some(email), .. }) => Ok(EmailClaim::AlreadySent(email)),
                Some(_) => Ok(EmailClaim::Busy),
                None => Err(StoreError::Backend(format!("invoice {invoice_id} does not exist"))),
            },
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn record_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        email: &EmailRecord,
        closing: Closing<'_>,
    ) -> Result<(), StoreError> {
        let (pk, sk) = Self::invoice_key(client_id, invoice_id);
        self.write_email_record(pk, sk, email, closing).await
    }

    async fn release_email(
        &self,
        client_id: &str,
        invoice_id: &str,
        error: &str,
        retry: Retry,
        closing: Closing<'_>,
    ) -> Result<(), StoreError> {
        self.release_email_lease(
            Self::invoice_key(client_id, invoice_id),
            invoice_id,
            error,
            retry,
            EMAIL_PARKED,
            closing,
        )
        .await
    }

    async fn pending_emails(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<(String, String)>, StoreError> {
        // `{due:020}#{id}` < `{now + 1ns:020}` exactly when due <= now.
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(EMAIL_PENDING_INDEX)
            .key_condition_expression("gsi2pk = :pk AND gsi2sk < :bound")
            .expression_attribute_values(":pk", s(EMAIL_PENDING))
            .expression_attribute_values(":bound", s(format!("{:020}", nanos(now) + 1)))
            .limit(page_size(limit))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output
            .items()
            .iter()
            .filter_map(|item| Some((string_attr(item, "client_id")?, string_attr(item, "invoice_id")?)))
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin: the same conditions, for handler tests.
// ---------------------------------------------------------------------------------------------

#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryInvoiceStore;

#[cfg(any(test, feature = "testing"))]
mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::Page;
    use crate::accounts::{AccountsView, InvoiceFile, OpenInvoice};
    use crate::credit_notes::{CreditNoteStore, CreditOutcome, StoredCreditNote};
    use crate::ledger::{InvoiceLedger, InvoiceQuery, InvoiceSummary, summarize};
    use backoffice_domain::credit_note::CreditNote;
    use backoffice_domain::receivable::Account;

    impl StoredInvoice {
        /// What a closing write records, as the table's `email_close_values` sets it.
        fn close(&mut self, closing: Closing<'_>) {
            if let Some(pdf) = closing.pdf {
                self.pdf = Some(pdf.clone());
            }
            if let Some(record) = closing.electronic {
                self.electronic = Some(record.clone());
            }
        }
    }

    /// In-memory [`InvoiceStore`] with the same conditions, for unit tests.
    #[derive(Default)]
    pub struct MemoryInvoiceStore {
        state: Mutex<MemoryInvoices>,
    }

    #[derive(Default)]
    struct MemoryInvoices {
        counters: HashMap<(String, String), SeriesHead>,
        /// Request guard (`SALE#…`, `BILLINGRUN#…`) → invoice id.
        sales: HashMap<String, String>,
        invoices: BTreeMap<(String, String), StoredInvoice>,
        leases: HashMap<(String, String), OffsetDateTime>,
        /// When a failed e-mail is due again (absent: due since issue); parked ones are gone.
        email_due: HashMap<(String, String), Option<OffsetDateTime>>,
        audits: Vec<AuditRecord>,
        /// (client, note id) → note; (client, request) → (invoice, note); (client, invoice) → credited.
        notes: BTreeMap<(String, String), StoredCreditNote>,
        /// (client, note id) → its e-mail's lease; when a failed send is due again (None: parked).
        note_leases: HashMap<(String, String), OffsetDateTime>,
        note_email_due: HashMap<(String, String), Option<OffsetDateTime>>,
        credit_requests: HashMap<(String, String), (String, String)>,
        credited: HashMap<(String, String), i64>,
        /// (client, invoice) → (payment key, payment), in key order.
        payments: HashMap<(String, String), BTreeMap<String, backoffice_domain::receivable::Payment>>,
        /// (client, invoice) → its e-mail's bounce or complaint.
        email_feedback: HashMap<(String, String), crate::email_feedback::EmailFeedback>,
    }

    fn key(client_id: &str, invoice_id: &str) -> (String, String) {
        (client_id.to_owned(), invoice_id.to_owned())
    }

    impl MemoryInvoiceStore {
        fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryInvoices>, StoreError> {
            self.state
                .lock()
                .map_err(|_| StoreError::Backend("memory store poisoned".into()))
        }

        /// Every invoice, by number.
        pub fn all(&self) -> Vec<StoredInvoice> {
            self.state
                .lock()
                .map(|s| s.invoices.values().cloned().collect())
                .unwrap_or_default()
        }

        pub fn audits(&self) -> Vec<AuditRecord> {
            self.state.lock().map(|s| s.audits.clone()).unwrap_or_default()
        }

        /// Every credit note, by client and number.
        pub fn credit_notes(&self) -> Vec<StoredCreditNote> {
            self.state
                .lock()
                .map(|s| s.notes.values().cloned().collect())
                .unwrap_or_default()
        }
    }

    #[async_trait]
    impl InvoiceLedger for MemoryInvoiceStore {
        async fn invoices(&self, query: &InvoiceQuery) -> Result<Page<InvoiceSummary>, StoreError> {
            let state = self.lock()?;
            let mut matching: Vec<InvoiceSummary> = state
                .invoices
                .values()
                .filter(|i| i.invoice.client_id == query.client_id)
                .filter(|i| query.issued_from.is_none_or(|d| i.invoice.issue_date >= d))
                .filter(|i| query.issued_to.is_none_or(|d| i.invoice.issue_date <= d))
                .filter(|i| query.series.as_ref().is_none_or(|s| &i.invoice.series == s))
                .filter(|i| {
                    query
                        .buyer_document
                        .as_ref()
                        .is_none_or(|d| i.invoice.buyer.document.number() == d)
                })
                .map(|i| {
                    let k = key(&i.invoice.client_id, &i.invoice.invoice_id);
                    let parked = matches!(state.email_due.get(&k), Some(None));
                    let credited = state.credited.get(&k).copied().unwrap_or(0);
                    crate::ledger::with_feedback(
                        summarize(&i.invoice, i.electronic.as_ref(), i.email.is_some(), parked, credited),
                        state.email_feedback.get(&k).map(|f| f.status),
                    )
                })
                .filter(|s| query.electronic_status.is_none_or(|e| s.electronic_status == e))
                .filter(|s| query.email_status.is_none_or(|e| s.email_status == e))
                .collect();
            // Newest first, as the index reads backwards.
            matching.sort_by(|a, b| (b.issue_date, &b.invoice_id).cmp(&(a.issue_date, &a.invoice_id)));
            let start = match &query.cursor {
                None => 0,
                Some(cursor) => cursor.parse::<usize>().map_err(|_| StoreError::InvalidCursor)?,
            };
            let limit = query.limit.clamp(1, 100) as usize;
            let next = start + limit;
            Ok(Page {
                next_cursor: (next < matching.len()).then(|| next.to_string()),
                items: matching.into_iter().skip(start).take(limit).collect(),
            })
        }
    }

    #[async_trait]
    impl CreditNoteStore for MemoryInvoiceStore {
        async fn credit_note_for_request(
            &self,
            client_id: &str,
            request_id: &str,
        ) -> Result<Option<(String, String)>, StoreError> {
            Ok(self.lock()?.credit_requests.get(&key(client_id, request_id)).cloned())
        }

        async fn credited(&self, client_id: &str, invoice_id: &str) -> Result<i64, StoreError> {
            Ok(self
                .lock()?
                .credited
                .get(&key(client_id, invoice_id))
                .copied()
                .unwrap_or(0))
        }

        async fn issue_credit_note(
            &self,
            invoice: &Invoice,
            note: &CreditNote,
            request_id: &str,
            requested_by: &str,
            audit: &AuditRecord,
        ) -> Result<CreditOutcome, StoreError> {
            let mut state = self.lock()?;
            if let Some((invoice_id, credit_note_id)) = state.credit_requests.get(&key(&note.client_id, request_id)) {
                return Ok(CreditOutcome::AlreadyIssued {
                    invoice_id: invoice_id.clone(),
                    credit_note_id: credit_note_id.clone(),
                });
            }
            let series = (note.client_id.clone(), note.series.clone());
            let head = state.counters.get(&series).copied().unwrap_or_default();
            if head.number + 1 != note.number || head.issue_date.is_some_and(|d| d > note.issue_date) {
                return Ok(CreditOutcome::NumberTaken);
            }
            let invoice_key = key(&invoice.client_id, &invoice.invoice_id);
            let valid = state
                .invoices
                .get(&invoice_key)
                .and_then(|i| i.electronic.as_ref())
                .is_some_and(|e| e.status.is_valid());
            if !valid {
                return Ok(CreditOutcome::NotCreditable(format!(
                    "invoice {} is not accepted by SUNAT",
                    invoice.invoice_id
                )));
            }
            let credited = state.credited.get(&invoice_key).copied().unwrap_or(0);
            let paid: i64 = state
                .payments
                .get(&invoice_key)
                .map(|p| p.values().map(|p| p.amount.amount_minor()).sum())
                .unwrap_or(0);
            let amount = note.totals.total.amount_minor();
            if amount <= 0 || credited + paid + amount > invoice.totals.total.amount_minor() {
                return Ok(CreditOutcome::NotCreditable(format!(
                    "invoice {}: {amount} more would exceed what is still owed",
                    invoice.invoice_id
                )));
            }
            state.counters.insert(
                series,
                SeriesHead {
                    number: note.number,
                    issue_date: Some(note.issue_date),
                },
            );
            state.credit_requests.insert(
                key(&note.client_id, request_id),
                (invoice.invoice_id.clone(), note.credit_note_id.clone()),
            );
            state.credited.insert(invoice_key, credited + amount);
            state.notes.insert(
                key(&note.client_id, &note.credit_note_id),
                StoredCreditNote {
                    note: note.clone(),
                    request_id: request_id.to_owned(),
                    requested_by: requested_by.to_owned(),
                    electronic: None,
                    pdf: None,
                    email: None,
                    email_attempts: 0,
                },
            );
            state.audits.push(audit.clone());
            Ok(CreditOutcome::Issued)
        }

        async fn load_credit_note(
            &self,
            client_id: &str,
            invoice_id: &str,
            credit_note_id: &str,
        ) -> Result<Option<StoredCreditNote>, StoreError> {
            Ok(self
                .lock()?
                .notes
                .get(&key(client_id, credit_note_id))
                .filter(|n| n.note.invoice_id == invoice_id)
                .cloned())
        }

        async fn record_credit_note_electronic(
            &self,
            client_id: &str,
            _invoice_id: &str,
            credit_note_id: &str,
            record: &ElectronicRecord,
        ) -> Result<(), StoreError> {
            let mut state = self.lock()?;
            let stored = state
                .notes
                .get_mut(&key(client_id, credit_note_id))
                .ok_or_else(|| StoreError::Backend(format!("no credit note {credit_note_id}")))?;
            if stored.electronic.as_ref().is_some_and(|e| e.status.is_final()) {
                return Err(StoreError::Conflict(crate::ConflictKind::StaleVersion));
            }
            stored.electronic = Some(record.clone());
            Ok(())
        }

        async fn pending_credit_notes(
            &self,
            issued_before: OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<(String, String, String)>, StoreError> {
            let state = self.lock()?;
            // As the index: off it once e-mailed, rejected or parked; a failed send is due later.
            let mut pending: Vec<(OffsetDateTime, &StoredCreditNote)> = state
                .notes
                .values()
                .filter(|n| n.email.is_none())
                .filter(|n| {
                    !n.electronic
                        .as_ref()
                        .is_some_and(|e| e.status == ElectronicStatus::Rejected)
                })
                .filter_map(|n| {
                    match state
                        .note_email_due
                        .get(&key(&n.note.client_id, &n.note.credit_note_id))
                    {
                        None => Some((n.note.issued_at, n)),
                        Some(Some(due)) => Some((*due, n)),
                        Some(None) => None,
                    }
                })
                .filter(|(due, _)| *due < issued_before)
                .collect();
            pending.sort_by_key(|(due, n)| (*due, n.note.credit_note_id.clone()));
            Ok(pending
                .into_iter()
                .take(limit as usize)
                .map(|(_, n)| {
                    (
                        n.note.client_id.clone(),
                        n.note.invoice_id.clone(),
                        n.note.credit_note_id.clone(),
                    )
                })
                .collect())
        }

        async fn claim_credit_note_email(
            &self,
            client_id: &str,
            _invoice_id: &str,
            credit_note_id: &str,
            now: OffsetDateTime,
            lease_until: OffsetDateTime,
        ) -> Result<EmailClaim, StoreError> {
            let mut state = self.lock()?;
            let k = key(client_id, credit_note_id);
            let stored = state
                .notes
                .get(&k)
                .ok_or_else(|| StoreError::Backend(format!("no credit note {credit_note_id}")))?;
            if let Some(email) = &stored.email {
                return Ok(EmailClaim::AlreadySent(email.clone()));
            }
            if state.note_leases.get(&k).is_some_and(|until| *until >= now) {
                return Ok(EmailClaim::Busy);
            }
            state.note_leases.insert(k, lease_until);
            Ok(EmailClaim::Claimed)
        }

        async fn record_credit_note_email(
            &self,
            client_id: &str,
            _invoice_id: &str,
            credit_note_id: &str,
            email: &EmailRecord,
            pdf: Option<&PdfRecord>,
        ) -> Result<(), StoreError> {
            let mut state = self.lock()?;
            let k = key(client_id, credit_note_id);
            state.note_leases.remove(&k);
            let stored = state
                .notes
                .get_mut(&k)
                .ok_or_else(|| StoreError::Backend(format!("no credit note {credit_note_id}")))?;
            if stored.email.is_none() {
                stored.email = Some(email.clone());
                stored.email_attempts += 1;
                if let Some(pdf) = pdf {
                    stored.pdf = Some(pdf.clone());
                }
            }
            Ok(())
        }

        async fn release_credit_note_email(
            &self,
            client_id: &str,
            _invoice_id: &str,
            credit_note_id: &str,
            _error: &str,
            retry: Retry,
            pdf: Option<&PdfRecord>,
        ) -> Result<(), StoreError> {
            let mut state = self.lock()?;
            let k = key(client_id, credit_note_id);
            state.note_leases.remove(&k);
            let stored = state
                .notes
                .get_mut(&k)
                .ok_or_else(|| StoreError::Backend(format!("no credit note {credit_note_id}")))?;
            if stored.email.is_some() {
                return Ok(());
            }
            if let Some(pdf) = pdf {
                stored.pdf = Some(pdf.clone());
            }
            stored.email_attempts += 1;
            let due = match retry {
                Retry::At(due) => Some(due),
                Retry::Park => None,
            };
            state.note_email_due.insert(k, due);
            Ok(())
        }
    }

    #[async_trait]
    impl InvoiceStore for MemoryInvoiceStore {
        async fn invoice_for_sale(&self, sale_id: &SaleId) -> Result<Option<String>, StoreError> {
            Ok(self.lock()?.sales.get(&format!("SALE#{sale_id}")).cloned())
        }

        async fn invoice_for_run(&self, run_id: &str) -> Result<Option<String>, StoreError> {
            Ok(self.lock()?.sales.get(&format!("BILLINGRUN#{run_id}")).cloned())
        }

        async fn series_head(&self, client_id: &str, series: &str) -> Result<SeriesHead, StoreError> {
            Ok(self
                .lock()?
                .counters
                .get(&(client_id.to_owned(), series.to_owned()))
                .copied()
                .unwrap_or_default())
        }

        async fn issue(&self, invoice: &Invoice, audit: &AuditRecord) -> Result<IssueOutcome, StoreError> {
            let mut state = self.lock()?;
            let guard = request_guard(invoice)?;
            if state.sales.contains_key(&guard) {
                return Ok(IssueOutcome::SaleAlreadyInvoiced);
            }
            let key = (invoice.client_id.clone(), invoice.series.clone());
            let head = state.counters.get(&key).copied().unwrap_or_default();
            if head.number + 1 != invoice.number || head.issue_date.is_some_and(|d| d > invoice.issue_date) {
                return Ok(IssueOutcome::NumberTaken);
            }
            state.counters.insert(
                key,
                SeriesHead {
                    number: invoice.number,
                    issue_date: Some(invoice.issue_date),
                },
            );
            state.sales.insert(guard, invoice.invoice_id.clone());
            state.invoices.insert(
                (invoice.client_id.clone(), invoice.invoice_id.clone()),
                StoredInvoice {
                    invoice: invoice.clone(),
                    electronic: None,
                    pdf: None,
                    email: None,
                    email_attempts: 0,
                    email_last_error: None,
                },
            );
            state.audits.push(audit.clone());
            Ok(IssueOutcome::Issued)
        }

        async fn load(&self, client_id: &str, invoice_id: &str) -> Result<Option<StoredInvoice>, StoreError> {
            Ok(self.lock()?.invoices.get(&key(client_id, invoice_id)).cloned())
        }

        async fn record_electronic(
            &self,
            client_id: &str,
            invoice_id: &str,
            record: &ElectronicRecord,
        ) -> Result<(), StoreError> {
            let mut state = self.lock()?;
            let stored = state
                .invoices
                .get_mut(&key(client_id, invoice_id))
                .ok_or_else(|| StoreError::Backend(format!("no invoice {invoice_id}")))?;
            if stored.electronic.as_ref().is_some_and(|e| e.status.is_final()) {
                return Err(StoreError::Conflict(crate::ConflictKind::StaleVersion));
            }
            stored.electronic = Some(record.clone());
            Ok(())
        }

        async fn claim_email(
            &self,
            client_id: &str,
            invoice_id: &str,
            now: OffsetDateTime,
            lease_until: OffsetDateTime,
        ) -> Result<EmailClaim, StoreError> {
            let mut state = self.lock()?;
            let stored = state
                .invoices
                .get(&key(client_id, invoice_id))
                .ok_or_else(|| StoreError::Backend(format!("no invoice {invoice_id}")))?;
            if let Some(email) = &stored.email {
                return Ok(EmailClaim::AlreadySent(email.clone()));
            }
            if state
                .leases
                .get(&key(client_id, invoice_id))
                .is_some_and(|until| *until >= now)
            {
                return Ok(EmailClaim::Busy);
            }
            state.leases.insert(key(client_id, invoice_id), lease_until);
            Ok(EmailClaim::Claimed)
        }

        async fn record_email(
            &self,
            client_id: &str,
            invoice_id: &str,
            email: &EmailRecord,
            closing: Closing<'_>,
        ) -> Result<(), StoreError> {
            let mut state = self.lock()?;
            state.leases.remove(&key(client_id, invoice_id));
            let stored = state
                .invoices
                .get_mut(&key(client_id, invoice_id))
                .ok_or_else(|| StoreError::Backend(format!("no invoice {invoice_id}")))?;
            if stored.email.is_none() {
                stored.email = Some(email.clone());
                stored.email_attempts += 1;
                stored.email_last_error = None;
                stored.close(closing);
            }
            Ok(())
        }

        async fn release_email(
            &self,
            client_id: &str,
            invoice_id: &str,
            error: &str,
            retry: Retry,
            closing: Closing<'_>,
        ) -> Result<(), StoreError> {
            let mut state = self.lock()?;
            state.leases.remove(&key(client_id, invoice_id));
            let stored = state
                .invoices
                .get_mut(&key(client_id, invoice_id))
                .ok_or_else(|| StoreError::Backend(format!("no invoice {invoice_id}")))?;
            if stored.email.is_some() {
                return Ok(());
            }
            stored.close(closing);
            stored.email_attempts += 1;
            stored.email_last_error = Some(error.to_owned());
            let due = match retry {
                Retry::At(due) => Some(due),
                Retry::Park => None,
            };
            state.email_due.insert(key(client_id, invoice_id), due);
            Ok(())
        }

        async fn pending_emails(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<(String, String)>, StoreError> {
            let state = self.lock()?;
            let mut pending: Vec<(OffsetDateTime, &StoredInvoice)> = state
                .invoices
                .values()
                .filter(|i| i.email.is_none())
                .filter_map(
                    |i| match state.email_due.get(&key(&i.invoice.client_id, &i.invoice.invoice_id)) {
                        None => Some((i.invoice.issued_at, i)),
                        Some(Some(due)) => Some((*due, i)),
                        Some(None) => None,
                    },
                )
                .filter(|(due, _)| *due <= now)
                .collect();
            pending.sort_by_key(|(due, i)| (*due, i.invoice.invoice_id.clone()));
            Ok(pending
                .into_iter()
                .take(limit as usize)
                .map(|(_, i)| (i.invoice.client_id.clone(), i.invoice.invoice_id.clone()))
                .collect())
        }
    }

    impl MemoryInvoiceStore {
        /// The bounce or complaint recorded on an invoice's e-mail.
        pub fn email_feedback(
            &self,
            client_id: &str,
            invoice_id: &str,
        ) -> Option<crate::email_feedback::EmailFeedback> {
            self.lock()
                .ok()?
                .email_feedback
                .get(&key(client_id, invoice_id))
                .cloned()
        }
    }

    #[async_trait]
    impl crate::email_feedback::EmailFeedbackStore for MemoryInvoiceStore {
        async fn mark_email(
            &self,
            client_id: &str,
            invoice_id: &str,
            feedback: &crate::email_feedback::EmailFeedback,
        ) -> Result<crate::email_feedback::FeedbackOutcome, StoreError> {
            use crate::email_feedback::{FeedbackOutcome, may_mark};
            let mut state = self.lock()?;
            let k = key(client_id, invoice_id);
            let Some(stored) = state.invoices.get(&k) else {
                return Ok(FeedbackOutcome::UnknownInvoice);
            };
            let sent_message_id = stored.email.as_ref().map(|e| e.message_id.clone());
            let current = state.email_feedback.get(&k).map(|f| f.status);
            if let Some(current) = current.filter(|_| !may_mark(current, feedback.status)) {
                return Ok(FeedbackOutcome::AlreadyMarked(current));
            }
            state.email_feedback.insert(k, feedback.clone());
            Ok(FeedbackOutcome::Marked { sent_message_id })
        }
    }

    #[async_trait]
    impl crate::payments::PaymentLedger for MemoryInvoiceStore {
        async fn account(
            &self,
            client_id: &str,
            invoice_id: &str,
        ) -> Result<Option<crate::payments::InvoiceAccount>, StoreError> {
            let state = self.lock()?;
            let k = key(client_id, invoice_id);
            let Some(stored) = state.invoices.get(&k) else {
                return Ok(None);
            };
            let paid_minor = state
                .payments
                .get(&k)
                .map(|p| p.values().map(|p| p.amount.amount_minor()).sum())
                .unwrap_or(0);
            let account = backoffice_domain::receivable::Account {
                credited_minor: state.credited.get(&k).copied().unwrap_or(0),
                paid_minor,
                ..backoffice_domain::receivable::Account::issued(&stored.invoice.totals.total)
            };
            Ok(Some(crate::payments::InvoiceAccount {
                invoice: stored.invoice.clone(),
                account,
            }))
        }

        async fn record_payment(
            &self,
            client_id: &str,
            invoice_id: &str,
            payment: &backoffice_domain::receivable::Payment,
            seen: &backoffice_domain::receivable::Account,
            _after: &backoffice_domain::receivable::Account,
        ) -> Result<crate::payments::PaymentOutcome, StoreError> {
            let current = self.account(client_id, invoice_id).await?;
            let mut state = self.lock()?;
            let payment_key = format!("{:?}#{}", payment.method, payment.reference);
            let payments = state.payments.entry(key(client_id, invoice_id)).or_default();
            if let Some(existing) = payments.get(&payment_key) {
                return Ok(crate::payments::PaymentOutcome::AlreadyRecorded(Box::new(
                    existing.clone(),
                )));
            }
            match current {
                Some(c) if c.account == *seen => {
                    payments.insert(payment_key, payment.clone());
                    Ok(crate::payments::PaymentOutcome::Recorded)
                }
                Some(_) => Ok(crate::payments::PaymentOutcome::Stale),
                None => Err(StoreError::Corrupt(format!("no invoice {invoice_id}"))),
            }
        }

        async fn payments(
            &self,
            client_id: &str,
            invoice_id: &str,
        ) -> Result<Vec<backoffice_domain::receivable::Payment>, StoreError> {
            Ok(self
                .lock()?
                .payments
                .get(&key(client_id, invoice_id))
                .map(|p| p.values().cloned().collect())
                .unwrap_or_default())
        }
    }

    impl MemoryInvoiceStore {
        fn account_of(state: &MemoryInvoices, k: &(String, String), stored: &StoredInvoice) -> Account {
            Account {
                credited_minor: state.credited.get(k).copied().unwrap_or(0),
                paid_minor: state
                    .payments
                    .get(k)
                    .map(|p| p.values().map(|p| p.amount.amount_minor()).sum())
                    .unwrap_or(0),
                ..Account::issued(&stored.invoice.totals.total)
            }
        }

        /// The client's invoices something is owed on (what the open index holds).
        fn open(&self, client_id: &str) -> Result<Vec<(StoredInvoice, Account)>, StoreError> {
            let state = self.lock()?;
            Ok(state
                .invoices
                .iter()
                .filter(|((c, _), _)| c == client_id)
                .map(|(k, i)| (i.clone(), Self::account_of(&state, k, i)))
                .filter(|(i, a)| {
                    a.outstanding_minor() > 0
                        && i.electronic
                            .as_ref()
                            .is_none_or(|e| e.status != ElectronicStatus::Rejected)
                })
                .collect())
        }
    }

    fn open_invoice(stored: &StoredInvoice, account: Account) -> OpenInvoice {
        let i = &stored.invoice;
        OpenInvoice {
            invoice_id: i.invoice_id.clone(),
            series: i.series.clone(),
            number: i.number,
            issue_date: i.issue_date,
            due_date: i.due_date,
            buyer: i.buyer.clone(),
            account,
        }
    }

    #[async_trait]
    impl AccountsView for MemoryInvoiceStore {
        async fn invoice_file(&self, client_id: &str, invoice_id: &str) -> Result<Option<InvoiceFile>, StoreError> {
            let state = self.lock()?;
            let k = key(client_id, invoice_id);
            let Some(stored) = state.invoices.get(&k) else {
                return Ok(None);
            };
            let account = Self::account_of(&state, &k, stored);
            let parked = matches!(state.email_due.get(&k), Some(None));
            let summary = summarize(
                &stored.invoice,
                stored.electronic.as_ref(),
                stored.email.is_some(),
                parked,
                account.credited_minor,
            );
            let mut payments: Vec<_> = state
                .payments
                .get(&k)
                .map(|p| p.values().cloned().collect())
                .unwrap_or_default();
            payments.sort_by_key(|p: &backoffice_domain::receivable::Payment| p.paid_at);
            let credit_notes = state
                .notes
                .iter()
                .filter(|((c, _), n)| c == client_id && n.note.invoice_id == invoice_id)
                .map(|(_, n)| n.clone())
                .collect();
            Ok(Some(InvoiceFile {
                stored: stored.clone(),
                summary,
                account,
                payments,
                credit_notes,
                // Reminders live in the reminder store's twin.
                reminders: Vec::new(),
            }))
        }

        async fn open_invoices(&self, client_id: &str, issued_by: time::Date) -> Result<Vec<OpenInvoice>, StoreError> {
            Ok(self
                .open(client_id)?
                .into_iter()
                .filter(|(i, _)| i.invoice.issue_date <= issued_by)
                .map(|(i, a)| open_invoice(&i, a))
                .collect())
        }

        async fn open_invoices_due(
            &self,
            client_id: &str,
            due_date: time::Date,
        ) -> Result<Vec<OpenInvoice>, StoreError> {
            Ok(self
                .open(client_id)?
                .into_iter()
                .filter(|(i, _)| i.invoice.due_date == due_date)
                .map(|(i, a)| open_invoice(&i, a))
                .collect())
        }

        async fn overdue(
            &self,
            client_id: &str,
            today: time::Date,
            limit: u32,
            _cursor: Option<&str>,
        ) -> Result<Page<InvoiceSummary>, StoreError> {
            let state_parked: Vec<_> = self.open(client_id)?;
            let mut items: Vec<InvoiceSummary> = state_parked
                .into_iter()
                .filter(|(i, _)| i.invoice.due_date < today)
                .map(|(i, a)| {
                    summarize(
                        &i.invoice,
                        i.electronic.as_ref(),
                        i.email.is_some(),
                        false,
                        a.credited_minor,
                    )
                })
                .collect();
            items.sort_by(|a, b| (a.due_date, &a.invoice_id).cmp(&(b.due_date, &b.invoice_id)));
            items.truncate(limit as usize);
            Ok(Page {
                items,
                next_cursor: None,
            })
        }
    }
}
