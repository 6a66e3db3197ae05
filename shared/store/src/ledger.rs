//! What finance reads of the invoices: a client's invoices, newest first, filtered, a page at
//! a time. From the invoices table's `by-client` index (`CLIENT#{client}`, `{issue date}#{id}`):
//! the issue-date range is the key condition, the other filters are applied by DynamoDB to
//! that range (never a scan of the table). The index projects only what the filters read
//! (`FILTERED`): the page's invoices are then read whole (`read_whole`, one `BatchGetItem`; issue 14: an
//! entry of the whole ~4 KB invoice was rewritten by every payment and every e-mail).

use async_trait::async_trait;
use serde::Serialize;
use time::Date;

use backoffice_domain::electronic::ElectronicStatus;
use backoffice_domain::invoice::{DocumentKind, Party, Totals};
use backoffice_domain::money::{Currency, Money};

use super::{Page, StoreError};
use crate::dynamo::{Item, corrupt, decode_cursor, encode_cursor, read_whole, s, sdk_error, string_attr};
use crate::email_feedback::FeedbackStatus;
use crate::invoices::{DynamoInvoiceStore, ElectronicRecord, EmailRecord};

const BY_CLIENT_INDEX: &str = "by-client";
/// DynamoDB pages one listing may read before it answers with a cursor (filters can leave
/// pages short).
const MAX_READS: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceQuery {
    pub client_id: String,
    pub issued_from: Option<Date>,
    pub issued_to: Option<Date>,
    pub series: Option<String>,
    pub electronic_status: Option<ElectronicStatus>,
    pub email_status: Option<EmailStatus>,
    /// The buyer's document number, normalized.
    pub buyer_document: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// Where an invoice's e-mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailStatus {
    /// Not sent yet (waiting for SUNAT, or for a retry).
    Pending,
    Sent,
    /// Its attempts are spent, or SUNAT rejected the invoice: nobody will send it.
    Parked,
    /// Sent, and a recipient's server refused it for good (a permanent bounce).
    Bounced,
    /// Sent, and a recipient marked it as spam.
    Complained,
}

impl EmailStatus {
    pub fn parse(raw: &str) -> Option<EmailStatus> {
        match raw {
            "PENDING" => Some(EmailStatus::Pending),
            "SENT" => Some(EmailStatus::Sent),
            "PARKED" => Some(EmailStatus::Parked),
            "BOUNCED" => Some(EmailStatus::Bounced),
            "COMPLAINED" => Some(EmailStatus::Complained),
            _ => None,
        }
    }
}

/// One line of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoiceSummary {
    pub invoice_id: String,
    pub kind: DocumentKind,
    pub series: String,
    pub number: u64,
    #[serde(with = "backoffice_domain::wire::date")]
    pub issue_date: Date,
    #[serde(with = "backoffice_domain::wire::date")]
    pub due_date: Date,
    pub buyer: Party,
    pub currency: Currency,
    pub totals: Totals,
    /// What credit notes took off the total.
    pub credited: Money,
    pub electronic_status: ElectronicStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sunat_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sunat_description: Option<String>,
    pub email_status: EmailStatus,
}

#[async_trait]
pub trait InvoiceLedger: Send + Sync {
    async fn invoices(&self, query: &InvoiceQuery) -> Result<Page<InvoiceSummary>, StoreError>;
}

/// The summary of a stored invoice item (as the table holds it).
pub(crate) fn summary(mut item: Item) -> Result<InvoiceSummary, StoreError> {
    let electronic: Option<ElectronicRecord> = match item.remove("electronic") {
        Some(value) => Some(serde_dynamo::from_attribute_value(value).map_err(corrupt("reading electronic record"))?),
        None => None,
    };
    let email: Option<EmailRecord> = match item.remove("email") {
        Some(value) => Some(serde_dynamo::from_attribute_value(value).map_err(corrupt("reading invoice email"))?),
        None => None,
    };
    let feedback = string_attr(&item, "email_feedback_status");
    let feedback = match feedback.as_deref() {
        None => None,
        Some(raw) => Some(
            FeedbackStatus::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("email_feedback_status {raw:?}")))?,
        ),
    };
    item.remove("email_feedback");
    let parked = item.get("email_parked").and_then(|v| v.as_bool().ok()).copied() == Some(true)
        || string_attr(&item, "gsi2pk").as_deref() == Some("EMAIL#PARKED");
    let credited_minor = match item.get("credited_minor") {
        None => 0,
        Some(v) => v
            .as_n()
            .ok()
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(|| StoreError::Corrupt("credited_minor is not a number".into()))?,
    };
    let invoice: backoffice_domain::invoice::Invoice =
        serde_dynamo::from_item(item).map_err(corrupt("reading invoice"))?;
    Ok(with_feedback(
        summarize(&invoice, electronic.as_ref(), email.is_some(), parked, credited_minor),
        feedback,
    ))
}

/// A bounce or a complaint outranks whatever the sending side says (the e-mail went out).
pub(crate) fn with_feedback(mut summary: InvoiceSummary, feedback: Option<FeedbackStatus>) -> InvoiceSummary {
    match feedback {
        Some(FeedbackStatus::Bounced) => summary.email_status = EmailStatus::Bounced,
        Some(FeedbackStatus::Complained) => summary.email_status = EmailStatus::Complained,
        None => {}
    }
    summary
}

pub(crate) fn summarize(
    invoice: &backoffice_domain::invoice::Invoice,
    electronic: Option<&ElectronicRecord>,
    sent: bool,
    parked: bool,
    credited_minor: i64,
) -> InvoiceSummary {
    InvoiceSummary {
        invoice_id: invoice.invoice_id.clone(),
        kind: invoice.kind,
        series: invoice.series.clone(),
        number: invoice.number,
        issue_date: invoice.issue_date,
        due_date: invoice.due_date,
        buyer: invoice.buyer.clone(),
        currency: invoice.currency,
        totals: invoice.totals,
        credited: Money::from_minor(credited_minor, invoice.currency),
        electronic_status: electronic.map_or(ElectronicStatus::PendingSubmission, |e| e.status),
        sunat_code: electronic.and_then(|e| e.response_code),
        sunat_description: electronic.and_then(|e| e.description.clone()),
        email_status: if sent {
            EmailStatus::Sent
        } else if parked {
            EmailStatus::Parked
        } else {
            EmailStatus::Pending
        },
    }
}

/// The index's sort-key range for an issue-date range: `{date}#{id}` sorts by date.
fn sk_range(query: &InvoiceQuery) -> (String, String) {
    let from = query.issued_from.map_or_else(|| "0000".to_owned(), |d| format!("{d}#"));
    let to = query.issued_to.map_or_else(|| "9999".to_owned(), |d| format!("{d}#~"));
    (from, to)
}

#[async_trait]
impl InvoiceLedger for DynamoInvoiceStore {
    async fn invoices(&self, query: &InvoiceQuery) -> Result<Page<InvoiceSummary>, StoreError> {
        let pk = format!("CLIENT#{}", query.client_id);
        let (from, to) = sk_range(query);
        let mut start = match &query.cursor {
            Some(raw) => Some(decode_cursor(raw, "gsi1pk", &pk, "gsi1sk", Some(&to))?),
            None => None,
        };
        let mut filters = vec!["#entity = :invoice"];
        if query.series.is_some() {
            filters.push("#series = :series");
        }
        if let Some(status) = query.electronic_status {
            filters.push(if status == ElectronicStatus::PendingSubmission {
                "(attribute_not_exists(electronic_status) OR electronic_status = :electronic)"
            } else {
                "electronic_status = :electronic"
            });
        }
        match query.email_status {
            None => {}
            // Each invoice is in exactly one: a bounce or complaint takes it out of the others.
            Some(EmailStatus::Sent) => {
                filters.push("attribute_exists(email) AND attribute_not_exists(email_feedback_status)")
            }
            Some(EmailStatus::Parked) => filters.push(
                "attribute_not_exists(email) AND attribute_not_exists(email_feedback_status) AND gsi2pk = :parked",
            ),
            Some(EmailStatus::Pending) => filters.push(
                "attribute_not_exists(email) AND attribute_not_exists(email_feedback_status) \
                 AND (attribute_not_exists(gsi2pk) OR gsi2pk <> :parked)",
            ),
            Some(EmailStatus::Bounced | EmailStatus::Complained) => filters.push("email_feedback_status = :feedback"),
        }
        if query.buyer_document.is_some() {
            filters.push("#buyer.#document.#number = :document");
        }
        let limit = query.limit.clamp(1, 100) as usize;
        let mut items = Vec::new();
        let mut next = None;
        for _ in 0..MAX_READS {
            let mut call = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_CLIENT_INDEX)
                .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to")
                .filter_expression(filters.join(" AND "))
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":from", s(&from))
                .expression_attribute_values(":to", s(&to))
                .expression_attribute_names("#entity", "entity")
                .expression_attribute_values(":invoice", s("INVOICE"))
                .scan_index_forward(false)
                .limit(i32::try_from(limit - items.len()).unwrap_or(1))
                .set_exclusive_start_key(start.take());
            if let Some(series) = &query.series {
                call = call
                    .expression_attribute_names("#series", "series")
                    .expression_attribute_values(":series", s(series));
            }
            if let Some(status) = query.electronic_status {
                call = call.expression_attribute_values(":electronic", s(status.as_str()));
            }
            if matches!(query.email_status, Some(EmailStatus::Parked | EmailStatus::Pending)) {
                call = call.expression_attribute_values(":parked", s("EMAIL#PARKED"));
            }
            match query.email_status {
                Some(EmailStatus::Bounced) => {
                    call = call.expression_attribute_values(":feedback", s(FeedbackStatus::Bounced.as_str()));
                }
                Some(EmailStatus::Complained) => {
                    call = call.expression_attribute_values(":feedback", s(FeedbackStatus::Complained.as_str()));
                }
                _ => {}
            }
            if let Some(document) = &query.buyer_document {
                call = call
                    .expression_attribute_names("#buyer", "buyer")
                    .expression_attribute_names("#document", "document")
                    .expression_attribute_names("#number", "number")
                    .expression_attribute_values(":document", s(document));
            }
            let output = call.send().await.map_err(sdk_error)?;
            items.extend(output.items.unwrap_or_default());
            next = output.last_evaluated_key;
            if next.is_none() || items.len() >= limit {
                break;
            }
            start = next.clone();
        }
        let items = read_whole(&self.client, &self.table, &items)
            .await?
            .into_iter()
            .map(summary)
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next_cursor: next.as_ref().and_then(encode_cursor),
        })
    }
}
