//! What finance reads of one invoice's account, and of a client's open invoices (issue 15).
//!
//! An invoice's partition (`INVOICE#{client}#{invoice}`) holds the invoice (`META`), its audit
//! records, credit notes and payments: one query reads its whole file. The sparse `open` index
//! (`OPEN#{client}`, `{due date}#{invoice}`) holds the invoices something is still owed on:
//! an invoice enters it when issued, and leaves it in the write that settles it (the last
//! payment or credit note) or when SUNAT rejects it. The ageing and the dunning read only it,
//! so their cost follows the open invoices, not the client's history.

use async_trait::async_trait;
use serde::Serialize;
use time::Date;

use backoffice_domain::invoice::Party;
use backoffice_domain::money::{Currency, Money};
use backoffice_domain::receivable::{Account, Payment};

use crate::credit_notes::{StoredCreditNote, stored_credit_note};
use crate::dynamo::{
    Item, corrupt, decode_cursor, encode_cursor, number_attr, page_size, query_all, read_whole, s, sdk_error,
    string_attr,
};
use crate::invoices::{DynamoInvoiceStore, OPEN_INDEX, StoredInvoice, stored_invoice};
use crate::ledger::{InvoiceSummary, summary};
use crate::reminders::{ReminderRecord, reminder_record};
use crate::{Page, StoreError};

/// The attributes the open index carries (its INCLUDE projection in the template).
const OPEN_ATTRIBUTES: &str =
    "client_id, invoice_id, series, #number, issue_date, due_date, buyer, currency, totals, credited_minor, paid_minor";

/// One invoice something is owed on, as the open index holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenInvoice {
    pub invoice_id: String,
    pub series: String,
    pub number: u64,
    #[serde(with = "backoffice_domain::wire::date")]
    pub issue_date: Date,
    #[serde(with = "backoffice_domain::wire::date")]
    pub due_date: Date,
    pub buyer: Party,
    #[serde(skip)]
    pub account: Account,
}

/// An invoice with everything that happened to it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceFile {
    pub stored: StoredInvoice,
    /// How the listing shows it (statuses of its electronic document and its e-mail).
    pub summary: InvoiceSummary,
    pub account: Account,
    pub payments: Vec<Payment>,
    pub credit_notes: Vec<StoredCreditNote>,
    /// The payment reminders the dunning sent (or is sending), by offset.
    pub reminders: Vec<ReminderRecord>,
}

#[async_trait]
pub trait AccountsView: Send + Sync {
    /// The invoice's file, or `None` if the client has no such invoice.
    async fn invoice_file(&self, client_id: &str, invoice_id: &str) -> Result<Option<InvoiceFile>, StoreError>;

    /// Every open invoice of the client issued on or before `issued_by`, by due date.
    async fn open_invoices(&self, client_id: &str, issued_by: Date) -> Result<Vec<OpenInvoice>, StoreError>;

    /// Open invoices of the client due on `due_date` exactly (the dunning's daily question).
    async fn open_invoices_due(&self, client_id: &str, due_date: Date) -> Result<Vec<OpenInvoice>, StoreError>;

    /// A page of the client's invoices past due on `today` (due before it, still owed),
    /// oldest due first.
    async fn overdue(
        &self,
        client_id: &str,
        today: Date,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<InvoiceSummary>, StoreError>;
}

fn open_invoice(item: &Item) -> Result<OpenInvoice, StoreError> {
    #[derive(serde::Deserialize)]
    struct Projected {
        invoice_id: String,
        series: String,
        number: u64,
        #[serde(with = "backoffice_domain::wire::date")]
        issue_date: Date,
        #[serde(with = "backoffice_domain::wire::date")]
        due_date: Date,
        buyer: Party,
        currency: Currency,
        totals: backoffice_domain::invoice::Totals,
    }
    let projected: Projected = serde_dynamo::from_item(item.clone()).map_err(corrupt("reading open invoice"))?;
    let account = Account {
        credited_minor: number_attr(item, "credited_minor")?,
        paid_minor: number_attr(item, "paid_minor")?,
        ..Account::issued(&Money::from_minor(
            projected.totals.total.amount_minor(),
            projected.currency,
        ))
    };
    Ok(OpenInvoice {
        invoice_id: projected.invoice_id,
        series: projected.series,
        number: projected.number,
        issue_date: projected.issue_date,
        due_date: projected.due_date,
        buyer: projected.buyer,
        account,
    })
}

impl DynamoInvoiceStore {
    async fn open_between(&self, client_id: &str, from: String, to: String) -> Result<Vec<Item>, StoreError> {
        query_all(
            self.client
                .query()
                .table_name(&self.table)
                .index_name(OPEN_INDEX)
                .key_condition_expression("gsi3pk = :pk AND gsi3sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(format!("OPEN#{client_id}")))
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to))
                .projection_expression(OPEN_ATTRIBUTES)
                .expression_attribute_names("#number", "number"),
        )
        .await
    }
}

#[async_trait]
impl AccountsView for DynamoInvoiceStore {
    async fn invoice_file(&self, client_id: &str, invoice_id: &str) -> Result<Option<InvoiceFile>, StoreError> {
        let (pk, _) = Self::invoice_key(client_id, invoice_id);
        let items = query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", pk)
                .consistent_read(true),
        )
        .await?;
        let mut meta = None;
        let mut payments = Vec::new();
        let mut credit_notes = Vec::new();
        let mut reminders = Vec::new();
        for item in items {
            let Some(sk) = string_attr(&item, "sk") else { continue };
            if sk == "META" {
                meta = Some(item);
            } else if sk.starts_with("PAYMENT#") {
                payments.push(serde_dynamo::from_item(item).map_err(corrupt("reading payment"))?);
            } else if sk.starts_with("CREDIT_NOTE#") && !sk.contains("#AUDIT#") {
                credit_notes.push(stored_credit_note(item)?);
            } else if sk.starts_with("REMINDER#") {
                reminders.push(reminder_record(item)?);
            }
        }
        let Some(meta) = meta else { return Ok(None) };
        let (credited_minor, paid_minor) = (number_attr(&meta, "credited_minor")?, number_attr(&meta, "paid_minor")?);
        let summary = summary(meta.clone())?;
        let stored = stored_invoice(meta)?;
        let account = Account {
            credited_minor,
            paid_minor,
            ..Account::issued(&stored.invoice.totals.total)
        };
        payments.sort_by_key(|p: &Payment| p.paid_at);
        credit_notes.sort_by_key(|n| n.note.issued_at);
        Ok(Some(InvoiceFile {
            stored,
            summary,
            account,
            payments,
            credit_notes,
            reminders,
        }))
    }

    async fn open_invoices(&self, client_id: &str, issued_by: Date) -> Result<Vec<OpenInvoice>, StoreError> {
        // Every due date: the issue date is not on the key, so later invoices are dropped here
        // (they are few: an as-of date is usually today or a recent month end).
        let items = self.open_between(client_id, "0000".into(), "9999".into()).await?;
        let mut open = Vec::with_capacity(items.len());
        for item in &items {
            let invoice = open_invoice(item)?;
            if invoice.issue_date <= issued_by {
                open.push(invoice);
            }
        }
        Ok(open)
    }

    async fn open_invoices_due(&self, client_id: &str, due_date: Date) -> Result<Vec<OpenInvoice>, StoreError> {
        let items = self
            .open_between(client_id, format!("{due_date}#"), format!("{due_date}#~"))
            .await?;
        items.iter().map(open_invoice).collect()
    }

    async fn overdue(
        &self,
        client_id: &str,
        today: Date,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<InvoiceSummary>, StoreError> {
        let pk = format!("OPEN#{client_id}");
        let bound = format!("{today}#");
        let start = match cursor {
            Some(raw) => Some(decode_cursor(raw, "gsi3pk", &pk, "gsi3sk", Some(&bound))?),
            None => None,
        };
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OPEN_INDEX)
            .key_condition_expression("gsi3pk = :pk AND gsi3sk < :bound")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":bound", s(&bound))
            .limit(page_size(limit))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        let mut summaries = Vec::with_capacity(output.items().len());
        for item in read_whole(&self.client, &self.table, output.items()).await? {
            summaries.push(summary(item)?);
        }
        summaries.sort_by(|a, b| (a.due_date, &a.invoice_id).cmp(&(b.due_date, &b.invoice_id)));
        Ok(Page {
            items: summaries,
            next_cursor: output.last_evaluated_key.as_ref().and_then(encode_cursor),
        })
    }
}
